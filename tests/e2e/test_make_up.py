"""`make up` on this checkout starts the cloud and prints AWS CLI settings that work."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest


ROOT = Path(__file__).resolve().parents[2]
AWS = str(Path(sys.executable).parent / "aws")


def _read_banner(process: subprocess.Popen, deadline: float
                 ) -> tuple[dict[str, str], dict[str, str], str | None]:
    """The URL of each service started (in order), the exports and the sample image id that
    `make up` prints once the cloud is up."""
    urls: dict[str, str] = {}
    exports: dict[str, str] = {}
    image_id = None
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        started = re.match(r"✓ (\w+) +(\S+)$", line.strip())
        if started:
            urls[started.group(1)] = started.group(2)
        match = re.match(r"export (\w+)=(\S+)", line.strip())
        if match:
            exports[match.group(1)] = match.group(2)
        image = re.search(r"run-instances --image-id (emi-[0-9a-f]+)", line)
        if image:
            image_id = image.group(1)
        if "Ctrl-C stops everything" in line:
            return urls, exports, image_id
    raise AssertionError("make up did not finish its banner:\n" + "".join(seen))


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
def test_make_up_prints_settings_the_aws_cli_can_use_and_ctrl_c_stops_it(tmp_path: Path, https: bool):
    # Every port 0: `eucasim up` binds them all before it starts a service, and prints them.
    ports = {name: "0" for name in ("CLC_PORT", "WALRUS_PORT", "SC_PORT", "CC_PORT", "NC_PORT")}
    env = {**os.environ, "EUCASIM_HOME": str(tmp_path / "state"), **ports,
           "NC_POLLING_FREQUENCY": "1", "PUBLIC_HTTPS": "true" if https else "false"}
    for inherited in ("SSL_CERT_FILE", "AWS_CA_BUNDLE"):
        env.pop(inherited, None)
    process = subprocess.Popen(["make", "--no-print-directory", "up"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        urls, exports, image_id = _read_banner(process, time.monotonic() + 240)
        # All five services, the storage controller among them.
        assert list(urls) == ["clc", "walrus", "sc", "nc", "cc"]
        scheme = "https" if https else "http"
        assert all(re.fullmatch(r"https?://127\.0\.0\.1:[1-9]\d*", url) for url in urls.values())
        assert len({urlsplit(url).port for url in urls.values()}) == len(urls)
        assert exports["AWS_ENDPOINT_URL_EC2"] == urls["clc"] and urls["clc"].startswith(f"{scheme}:")
        assert exports["AWS_ENDPOINT_URL_S3"] == urls["walrus"] and urls["walrus"].startswith(f"{scheme}:")
        assert ("AWS_CA_BUNDLE" in exports) == https
        cli_env = {**os.environ, **exports, "AWS_CONFIG_FILE": EMPTY_AWS_FILE,
                   "AWS_SHARED_CREDENTIALS_FILE": EMPTY_AWS_FILE}
        result = subprocess.run([AWS, "ec2", "describe-availability-zones", "--output", "json"],
                                env=cli_env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["AvailabilityZones"][0]["ZoneName"] == "zone-1"
        assert (tmp_path / "state" / "credentials" / "eucarc").is_file()
        # The sample image it printed is registered, public and available.
        assert image_id, "make up printed no sample image"
        result = subprocess.run([AWS, "ec2", "describe-images", "--image-ids", image_id,
                                 "--output", "json"], env=cli_env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        image = json.loads(result.stdout)["Images"][0]
        assert (image["State"], image["Public"]) == ("available", True)
        # And S3: a bucket, an upload and a byte-exact download through the printed endpoint.
        upload = tmp_path / "hello.txt"
        upload.write_bytes(b"hello from make up\n" * 1000)
        for command in (["s3", "mb", "s3://make-up-check"],
                        ["s3", "cp", str(upload), "s3://make-up-check/hello.txt"],
                        ["s3", "cp", "s3://make-up-check/hello.txt", str(tmp_path / "back.txt")]):
            result = subprocess.run([AWS, *command], env=cli_env, capture_output=True, text=True,
                                    timeout=60)
            assert result.returncode == 0, result.stderr
        assert (tmp_path / "back.txt").read_bytes() == upload.read_bytes()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        process.wait(timeout=60)
    # Every service stopped with it: nothing answers on their ports any more.
    deadline = time.monotonic() + 20
    for url in urls.values():
        port = urlsplit(url).port
        while _answers(port):
            assert time.monotonic() < deadline, f"port {port} still answers after Ctrl-C"
            time.sleep(0.2)


def _answers(port: int | None) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
