"""Walrus against moto_server, same run: boto3 put/get of 1 KiB objects (ops/s) and of 64 MiB
objects (MB/s), plus Walrus's peak resident memory (VmHWM) after the small and after the large
objects, to show that memory does not grow with object size; then 32 concurrent clients
(issue 12's aim: Walrus >= 5x moto_server) putting and getting 1 KiB and 1 MiB objects, every
object read back and checked, with each server's CPU per operation.

    .venv/bin/python benchmarks/walrus_s3.py [--small N] [--large N] [--threads N]
        [--clients N] [--concurrent-small N] [--concurrent-large N] [--concurrent-only]
        [--readme]

Both servers run as their own processes on 127.0.0.1 over plain HTTP. The boto3 client is
path-style, SigV4, with its default CRC32 checksums: one caller, then N threads sharing one
client for the 1 KiB round. The concurrent clients are raw HTTP (benchmarks/s3_concurrent.py);
the servers, clients and the boto3 workloads are benchmarks/s3_bench.py."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.s3_bench import (MIB, client, large_ops, peak_rss_mib, small_ops,  # noqa: E402
                                 walrus_and_moto)
from benchmarks.s3_concurrent import concurrent_round  # noqa: E402


def run(args: argparse.Namespace) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="walrus-bench-"))
    large = work / "large.bin"
    with open(large, "wb") as handle:
        block = os.urandom(MIB)
        for _ in range(64):
            handle.write(block)
    results: dict[str, object] = {}
    try:
        with walrus_and_moto(work) as servers:
            for name, url, pid in (("walrus", servers.walrus_url, servers.walrus_pid),
                                   ("moto", servers.moto_url, servers.moto_pid)):
                s3 = client(url, max(10, args.threads))
                s3.create_bucket(Bucket="bench")
                if not args.concurrent_only:
                    puts, gets, put_cpu, get_cpu = small_ops(s3, "bench", args.small, 1, pid)
                    puts_n, gets_n, _, _ = small_ops(s3, "bench", args.small, args.threads)
                    if name == "walrus":
                        results["walrus_rss_after_small_mib"] = peak_rss_mib(pid)
                    up, down = large_ops(s3, "bench", args.large, large)
                    if name == "walrus":
                        results["walrus_rss_after_large_mib"] = peak_rss_mib(pid)
                    results[name] = {"put_1k_ops": puts, "get_1k_ops": gets,
                                     "put_1k_ops_n": puts_n, "get_1k_ops_n": gets_n,
                                     "put_1k_cpu_ms": put_cpu, "get_1k_cpu_ms": get_cpu,
                                     "put_64m_mbps": up, "get_64m_mbps": down}
                # Last, so the memory figures above keep their meaning (one caller's objects).
                results[f"{name}_concurrent"] = concurrent_round(
                    url, "bench", args.clients, args.concurrent_small, args.concurrent_large, pid)
                if name == "walrus":
                    results["walrus_rss_after_concurrent_mib"] = peak_rss_mib(pid)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def concurrent_table(results: dict[str, object], args: argparse.Namespace) -> str:
    w, m = results["walrus_concurrent"], results["moto_concurrent"]  # type: ignore[index]
    n = args.clients
    rows = [(f"PUT 1 KiB, {n} clients (ops/s)", "put_1k_ops"),
            (f"GET 1 KiB, {n} clients (ops/s)", "get_1k_ops"),
            (f"PUT 1 MiB, {n} clients (ops/s = MiB/s)", "put_1m_ops"),
            (f"GET 1 MiB, {n} clients (ops/s = MiB/s)", "get_1m_ops")]
    lines = ["| measure | Walrus | moto_server | Walrus / moto |", "|---|---:|---:|---:|"]
    for label, key in rows:
        lines.append(f"| {label} | {w[key]:.1f} | {m[key]:.1f} | {w[key] / m[key]:.2f}× |")  # type: ignore[index]
    for label, key in ((f"server CPU per 1 KiB PUT, {n} clients (ms)", "put_1k_cpu_ms"),
                       (f"server CPU per 1 KiB GET, {n} clients (ms)", "get_1k_cpu_ms"),
                       (f"server CPU per 1 MiB PUT, {n} clients (ms)", "put_1m_cpu_ms"),
                       (f"server CPU per 1 MiB GET, {n} clients (ms)", "get_1m_cpu_ms")):
        lines.append(f"| {label} | {w[key]:.2f} | {m[key]:.2f} | "  # type: ignore[index]
                     f"{m[key] / w[key]:.2f}× less |")  # type: ignore[index]
    lines.append(f"| errors (non-200, or a body read back with another CRC-32) | {w['errors']:.0f} | "  # type: ignore[index]
                 f"{m['errors']:.0f} | |")  # type: ignore[index]
    lines.append("")
    lines.append(f"({args.concurrent_small} objects of 1 KiB and {args.concurrent_large} of 1 MiB, "
                 f"each PUT then read back by GET; raw HTTP/1.1 keep-alive, presigned SigV4; "
                 f"Walrus peak RSS after this round "
                 f"{results['walrus_rss_after_concurrent_mib']:.1f} MiB; load average "
                 f"{os.getloadavg()[0]:.1f} at the end.)")
    return "\n".join(lines)


def table(results: dict[str, object], args: argparse.Namespace) -> str:
    text = concurrent_table(results, args)
    if args.concurrent_only:
        return text
    return text + "\n\n" + sequential_table(results, args)


def sequential_table(results: dict[str, object], args: argparse.Namespace) -> str:
    w, m = results["walrus"], results["moto"]  # type: ignore[index]
    n = args.threads
    rows = [("PUT 1 KiB, 1 caller (ops/s)", "put_1k_ops"),
            ("GET 1 KiB, 1 caller (ops/s)", "get_1k_ops"),
            (f"PUT 1 KiB, {n} callers (ops/s)", "put_1k_ops_n"),
            (f"GET 1 KiB, {n} callers (ops/s)", "get_1k_ops_n"),
            ("PUT 64 MiB (MiB/s)", "put_64m_mbps"), ("GET 64 MiB (MiB/s)", "get_64m_mbps")]
    lines = ["| measure | Walrus | moto_server | Walrus / moto |", "|---|---:|---:|---:|"]
    for label, key in rows:
        lines.append(f"| {label} | {w[key]:.1f} | {m[key]:.1f} | {w[key] / m[key]:.2f}× |")  # type: ignore[index]
    for label, key in (("server CPU per 1 KiB PUT (ms)", "put_1k_cpu_ms"),
                       ("server CPU per 1 KiB GET (ms)", "get_1k_cpu_ms")):
        lines.append(f"| {label} | {w[key]:.2f} | {m[key]:.2f} | "  # type: ignore[index]
                     f"{m[key] / w[key]:.2f}× less |")  # type: ignore[index]
    lines.append("")
    lines.append(f"Walrus peak RSS (VmHWM): {results['walrus_rss_after_small_mib']:.1f} MiB after "
                 f"the 1 KiB objects, {results['walrus_rss_after_large_mib']:.1f} MiB after the "
                 f"64 MiB objects.")
    lines.append(f"({args.small} small and {args.large} large objects each way; "
                 f"{platform.python_implementation()} {platform.python_version()}, "
                 f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end.)")
    return "\n".join(lines)


NOTES = """How to read it: client and servers share one small machine, so the ops/s rows measure
boto3 (signing, CRC32, parsing: several ms of CPU per call) as much as the server, and on a busy
machine they move by half from one run to the next (moto's sequential 1 KiB PUT has measured
30 to 62 ops/s here, Walrus's 37 to 85); the "server CPU per operation" rows, read from
/proc/<pid>/stat around the timed loop, compare the servers themselves and hold steadier.
moto keeps objects in memory; Walrus streams each body to a file, fsyncs it and renames it
into place before it answers (a crash never shows half an object), which is most of what a
sequential 1 KiB PUT waits for; with 8 callers those fsyncs overlap in worker threads.
Peak RSS stays flat from 1 KiB to 64 MiB objects: bodies are streamed in chunks both ways."""


def write_readme(text: str) -> None:
    readme = Path(__file__).resolve().parent / "README.md"
    current = readme.read_text() if readme.exists() else "# Benchmarks\n"
    start, end = "<!-- walrus:start -->", "<!-- walrus:end -->"
    section = (f"{start}\n## Walrus\n\nCommand: `.venv/bin/python benchmarks/walrus_s3.py --readme`"
               f"\n\n{text}\n\n{NOTES}\n{end}")
    if start in current and end in current:
        before, rest = current.split(start, 1)
        after = rest.split(end, 1)[1]
        current = before + section + after
    else:
        current = current.rstrip("\n") + "\n\n" + section + "\n"
    readme.write_text(current)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=500, help="1 KiB objects put and got")
    parser.add_argument("--threads", type=int, default=8, help="callers for the concurrent "
                        "1 KiB round")
    parser.add_argument("--large", type=int, default=3, help="64 MiB objects put and got")
    parser.add_argument("--clients", type=int, default=32, help="concurrent raw-HTTP clients")
    parser.add_argument("--concurrent-small", type=int, default=2000,
                        help="1 KiB objects put and got by the concurrent clients")
    parser.add_argument("--concurrent-large", type=int, default=256,
                        help="1 MiB objects put and got by the concurrent clients")
    parser.add_argument("--concurrent-only", action="store_true",
                        help="only the concurrent round (skip the boto3 measures)")
    parser.add_argument("--readme", action="store_true", help="write the Walrus section of "
                        "benchmarks/README.md")
    args = parser.parse_args()
    results = run(args)
    text = table(results, args)
    print(text)
    if args.readme:
        write_readme(text)


if __name__ == "__main__":
    main()
