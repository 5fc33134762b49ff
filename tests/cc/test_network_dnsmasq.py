"""The linux driver's bookkeeping of its dnsmasq processes, without root: which process a pid
file really names, and which leases stand between a freed address and the next instance."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cc.network.drivers import _alive, _stale_leases


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    conf = tmp_path / "dnsmasq-eucabr2.conf"
    # The child says when it runs: Popen can return before exec has laid out the new command
    # line (the kernel wakes the parent mid-exec), when /proc/PID/cmdline still reads empty.
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)", f"--conf-file={conf}"],
        stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stdout.readline() == b"up\n"
        yield process, conf
    finally:
        process.kill()
        process.wait()


def test_a_pid_file_counts_only_for_the_process_started_with_our_conf(
        tmp_path: Path, sleeper: tuple[subprocess.Popen[bytes], Path]) -> None:
    process, conf = sleeper
    pid_file = tmp_path / "dnsmasq-eucabr2.pid"
    pid_file.write_text(f"{process.pid}\n")
    assert _alive(pid_file, conf) == process.pid
    # The same number after a reboot belongs to someone else: never signal it.
    assert _alive(pid_file, tmp_path / "dnsmasq-eucabr3.conf") is None
    process.kill()
    process.wait()
    assert _alive(pid_file, conf) is None
    assert _alive(tmp_path / "missing.pid", conf) is None


def test_stale_leases_are_those_of_an_address_now_planned_for_another_mac(tmp_path: Path) -> None:
    leases = tmp_path / "dnsmasq-eucabr2.leases"
    leases.write_text("1796104206 d0:0d:2d:67:fc:7a 172.31.0.67 i-2d67fc7a 01:d0:0d:2d:67:fc:7a\n"
                      "1796104204 d0:0d:36:4b:89:41 172.31.0.66 i-364b8941 01:d0:0d:36:4b:89:41\n"
                      "1796104209 d0:0d:00:00:00:09 172.31.0.69 i-00000009 *\n")
    hosts = "D0:0D:36:4B:89:41,172.31.0.66,i-364b8941\nd0:0d:7e:a8:72:98,172.31.0.67,i-7ea87298\n"
    # .66 is still its instance's (MACs compare without case); .69's instance is gone but its
    # address is nobody's yet, so its lease harms no one and runs out by itself.
    assert _stale_leases(leases, hosts) == ["172.31.0.67"]
    assert _stale_leases(tmp_path / "none.leases", hosts) == []
