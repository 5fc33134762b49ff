"""How much a simulated NC process costs per node: start time (process launched until its last
node answers), RSS after start, one describe of the whole process, and a pushed launch on the
last node; for NC_SIMULATED_NODES of each size given.

    .venv/bin/python benchmarks/nc_nodes.py 1000 5000                  # fake:// nodes
    .venv/bin/python benchmarks/nc_nodes.py --uri test:///default 1000 # libvirt test driver
    .venv/bin/python benchmarks/nc_nodes.py --repo /work/main --uri test:///default 1000
                                              # the same against another checkout (before/after)

`--repo` runs the NC of another checkout; the per-process describe is skipped where it does
not exist (404)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.internal import InternalCallError, InternalClient  # noqa: E402
from services.messages.node import NC_DESCRIBE_ROUTE, DescribeNodes, NodeProcessReport  # noqa: E402
from benchmarks.support import free_port  # noqa: E402

SECRET = "bench-secret"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(repo: Path, uri: str, nodes: int) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix=f"nc-bench-{nodes}-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NC_", "MAX_", "EUCASIM_"))}
    env.update({"EUCASIM_HOME": str(home), "CLOUD_SECRET": SECRET, "NC_PORT": str(port),
                "HYPERVISOR_URI": uri, "NC_SIMULATED_NODES": str(nodes), "PYTHONPATH": str(repo)})
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "nc.multi:create_app",
                                "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                               env=env, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(process.stderr.read().decode() if process.stderr else "NC exited")
            try:
                if httpx.get(f"{url}/node-{nodes}/internal/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        figures = {"start_s": time.perf_counter() - started, "rss_mib": rss_mib(process.pid)}
        client = InternalClient(url, SECRET, timeout=600)
        try:
            began = time.perf_counter()
            client.call("POST", NC_DESCRIBE_ROUTE, DescribeNodes(), NodeProcessReport)
            figures["describe_s"] = time.perf_counter() - began
        except InternalCallError:
            figures["describe_s"] = float("nan")
        finally:
            client.close()
        figures["rss_after_describe_mib"] = rss_mib(process.pid)
        return figures
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()
        subprocess.run(["rm", "-rf", str(home)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sizes", nargs="+", type=int)
    parser.add_argument("--uri", default="fake://")
    parser.add_argument("--repo", type=Path, default=REPO)
    args = parser.parse_args()
    print(f"| nodes | hypervisor | start (s) | RSS after start (MiB) | one describe (s) | RSS after it (MiB) |")
    print("|---:|---|---:|---:|---:|---:|")
    for size in args.sizes:
        f = measure(args.repo, args.uri, size)
        print(f"| {size} | {args.uri} | {f['start_s']:.1f} | {f['rss_mib']:.0f} | {f['describe_s']:.2f} "
              f"| {f['rss_after_describe_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
