"""`eucasim nc --nodes N` serves N simulated nodes; `eucasim node register|list|deregister`
adds them to a zone's cluster controller and takes them out again."""

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import httpx
from typer.testing import CliRunner

from services.cli import app
from tests.cc.cc_process import start_cc, wait_for

SECRET = "node-cli-secret"
runner = CliRunner()


def test_nc_command_and_node_registration(tmp_path: Path):
    # NC_PORT=0: the NC binds a free port itself and names it in its log.
    env = {**os.environ, "EUCASIM_HOME": str(tmp_path / "nc"), "CLOUD_SECRET": SECRET,
           "EUCASIM_CONF": str(tmp_path / "none.conf"), "MAX_CORES": "4", "NC_PORT": "0"}
    log = tmp_path / "nc.log"
    with log.open("wb") as output:
        nc = subprocess.Popen([sys.executable, "-m", "services.cli", "nc", "--nodes", "2"],
                              env=env, stdout=output, stderr=subprocess.STDOUT)
    cc = start_cc(tmp_path / "cc", SECRET, NODES="", NC_POLLING_FREQUENCY="0.5")
    try:
        def reported() -> str | None:
            assert nc.poll() is None, f"eucasim nc exited: {log.read_text()}"
            found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", log.read_text())
            return found.group(1) if found else None
        base = wait_for(reported, 30, "eucasim nc to report its port")

        def answers() -> bool:
            assert nc.poll() is None, "eucasim nc exited"
            try:
                return httpx.get(f"{base}/node-2/internal/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        wait_for(answers, 30, "both simulated nodes to answer")

        cli_env = {"CLOUD_SECRET": SECRET, "CC_PORT": str(urlparse(cc.url).port),
                   "EUCASIM_HOME": str(tmp_path / "cc"), "COLUMNS": "200"}

        def eucasim(*args: str) -> str:
            result = runner.invoke(app, list(args), env=cli_env)
            assert result.exit_code == 0, result.output
            return result.output

        assert "registered" in eucasim("node", "register", f"{base}/node-1")
        eucasim("node", "register", f"{base}/node-2")
        wait_for(lambda: eucasim("node", "list").count(" up ") == 2, 20, "both nodes up")
        listing = eucasim("node", "list")
        assert "node-1" in listing and "node-2" in listing and "4/4" in listing
        again = runner.invoke(app, ["node", "register", f"{base}/node-1"], env=cli_env)
        assert again.exit_code == 1
        assert "deregistered node-2" in eucasim("node", "deregister", "node-2")
        assert "node-2" not in eucasim("node", "list")
    finally:
        cc.stop()
        nc.terminate()
        nc.wait(timeout=20)
