"""`eucasim up` as a real process, as a user starts it: its banner read from its output, its
process tree from /proc, and a check that nothing of it is left once it has stopped."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

EUCASIM = str(Path(sys.executable).parent / "eucasim")
SERVICES = ("CLC", "WALRUS", "SC", "CC", "NC")


def up_env(home: Path, settings: dict[str, str] | None = None, **ports: int) -> dict[str, str]:
    """The environment of an `eucasim up` on `home`: every port 0 (any free one) unless given."""
    env = {**os.environ, "EUCASIM_HOME": str(home), "NC_POLLING_FREQUENCY": "1",
           "PUBLIC_HTTPS": "false", "PUBLIC_HOST": "127.0.0.1", "BIND_ADDRESS": "127.0.0.1",
           "HYPERVISOR_URI": "test:///default", "COLUMNS": "200", **(settings or {})}
    for name in SERVICES:
        env[f"{name}_PORT"] = str(ports.get(name.lower(), 0))
    for inherited in ("SSL_CERT_FILE", "AWS_CA_BUNDLE", "CLOUD_SECRET", "NODES"):
        env.pop(inherited, None)
    return env


@dataclass
class Up:
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    exports: dict[str, str] = field(default_factory=dict)
    image_id: str | None = None

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def read_until(self, marker: str, timeout: float = 180) -> bool:
        """Read lines until one contains `marker` (True) or the process ends (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline() if self.process.stdout else ""
            if not line:
                if self.process.poll() is not None:
                    return False
                continue
            self.lines.append(line)
            started = re.match(r"✓ (\w+) +(\S+)$", line.strip())
            if started:
                self.urls[started.group(1)] = started.group(2)
            export = re.match(r"export (\w+)=(\S+)", line.strip())
            if export:
                self.exports[export.group(1)] = export.group(2)
            image = re.search(r"run-instances --image-id (emi-[0-9a-f]+)", line)
            if image:
                self.image_id = image.group(1)
            if marker in line:
                return True
        raise AssertionError(f"no line with {marker!r} within {timeout} s:\n{self.output}")

    def banner(self) -> Up:
        assert self.read_until("Ctrl-C stops everything"), f"eucasim up ended:\n{self.output}"
        return self

    def finish(self, timeout: float = 60) -> int:
        """Read the rest of the output until the process ends; its exit code."""
        out, _ = self.process.communicate(timeout=timeout)
        self.lines.append(out or "")
        return self.process.returncode

    def ec2(self):  # noqa: ANN201 (a boto3 client)
        return boto3.client("ec2", endpoint_url=self.exports["AWS_ENDPOINT_URL_EC2"],
                            region_name=self.exports.get("AWS_DEFAULT_REGION", "eucalyptus"),
                            aws_access_key_id=self.exports["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=self.exports["AWS_SECRET_ACCESS_KEY"],
                            config=Config(retries={"max_attempts": 1}))

    def s3(self):  # noqa: ANN201
        return boto3.client("s3", endpoint_url=self.exports["AWS_ENDPOINT_URL_S3"],
                            region_name=self.exports.get("AWS_DEFAULT_REGION", "eucalyptus"),
                            aws_access_key_id=self.exports["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=self.exports["AWS_SECRET_ACCESS_KEY"],
                            config=Config(retries={"max_attempts": 1}))

    def ports(self) -> list[int]:
        return [int(urlsplit(url).port or 0) for url in self.urls.values()]


def start_up(home: Path, nodes: int = 2, settings: dict[str, str] | None = None, **ports: int) -> Up:
    """`eucasim up` on `home`; `settings` are eucalyptus.conf keys for every service."""
    process = subprocess.Popen([EUCASIM, "up", "--nodes", str(nodes)],
                               env=up_env(home, settings, **ports),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    return Up(process)


def descendants(root: int) -> set[int]:
    """Every live process below `root`, from the parent links in /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def kill_leftovers(pids: set[int]) -> None:
    """Clean-up for a failed test: the processes a run left behind (each by its own id)."""
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def stop_and_check_nothing_left(up: Up, signum: int) -> None:
    """Send `signum` to `eucasim up` alone (as `kill` does) and check that it exits, that every
    process it had started is gone and that none of its ports still answers."""
    pids = descendants(up.process.pid)
    assert pids, "eucasim up had no child processes"
    try:
        up.process.send_signal(signum)
        code = up.finish(timeout=60)
        assert code == 0, up.output
        left = {pid for pid in pids if alive(pid)}
        assert not left, f"still running after {signal.Signals(signum).name}: {sorted(left)}"
        busy = [port for port in up.ports() if answers(port)]
        assert not busy, f"ports still answer: {busy}"
    finally:
        kill_leftovers(pids)
