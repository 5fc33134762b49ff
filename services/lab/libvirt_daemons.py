"""libvirtd and virtlogd for a lab node, started inside its network namespace with nsenter
(network only: `ip netns exec` would remount /sys and leave QEMU without cgroups, REAL-LAB.md
gotcha 3). There is one libvirtd per machine (its socket is /run/libvirt/libvirt-sock), so the
lab refuses to start beside one it did not start.

Where /dev/kvm exists but cannot run a guest (this kind of VM), libvirtd gets a mount namespace
of its own in which /dev/kvm is an empty file. Without that, libvirt 9.0 probes QEMU as root
and finds KVM, then checks /dev/kvm as the QEMU user and finds it unusable, so it judges its
capabilities cache stale on every lookup and probes QEMU again (about 5 s idle): every define
and every start took 40 s to minutes ("KVM was enabled when probing ..., but it is not
available now" in its debug log). Hidden, both answers agree (no KVM) and a define takes 0.1 s."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

SOCKET = Path("/run/libvirt/libvirt-sock")


class LibvirtDaemons:
    def __init__(self, enter: list[str], state: Path) -> None:
        self.enter = enter
        self.state = state

    def _pid_file(self, daemon: str) -> Path:
        return self.state / f"{daemon}.pid"

    def _pid(self, daemon: str) -> int | None:
        try:
            pid = int(self._pid_file(daemon).read_text().strip())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid

    def running(self) -> bool:
        return self._pid("libvirtd") is not None

    def start(self, timeout: float = 30, hide_kvm: bool = False) -> None:
        if self.running():
            return
        if SOCKET.exists() and subprocess.run(["virsh", "-c", "qemu:///system", "version"],
                                              capture_output=True).returncode == 0:
            raise RuntimeError("a libvirtd not started by this lab is running (one per machine): "
                               "stop it first")
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "libvirtd.conf").write_text(
            f'log_outputs="3:file:{self.state}/libvirtd.log"\n')
        (self.state / "virtlogd.conf").write_text(
            f'log_outputs="3:file:{self.state}/virtlogd.log"\n')
        subprocess.run([*self.enter, "virtlogd", "-d", "-f", str(self.state / "virtlogd.conf"),
                        "-p", str(self._pid_file("virtlogd"))], check=True, capture_output=True)
        libvirtd = ["libvirtd", "-d", "-f", str(self.state / "libvirtd.conf"), "-p", str(self._pid_file("libvirtd"))]
        if hide_kvm and Path("/dev/kvm").exists():
            empty = self.state / "no-kvm"
            empty.touch()
            # libvirt copies every mount under /dev into each domain's own /dev, and fails on
            # this one ("Unable to move ... mount to /dev/kvm"): the domains go without that
            # private /dev (qemu.conf `namespaces = []`), in this libvirtd's view only.
            conf = self.state / "qemu.conf"
            system = Path("/etc/libvirt/qemu.conf")
            conf.write_text((system.read_text() if system.is_file() else "")
                            + "\n# eucasim lab: /dev/kvm is hidden from this libvirtd\nnamespaces = []\n")
            libvirtd = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        'mount --bind "$1" /dev/kvm && mount --bind "$2" "$3" && shift 3 && exec "$@"',
                        "sh", str(empty), str(conf), str(system), *libvirtd]
        subprocess.run([*self.enter, *libvirtd], check=True, capture_output=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if subprocess.run(["virsh", "-c", "qemu:///system", "version"],
                              capture_output=True).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"libvirtd did not answer within {timeout:.0f} s; see {self.state}/libvirtd.log")

    def stop(self) -> None:
        for daemon in ("libvirtd", "virtlogd"):
            pid = self._pid(daemon)
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    try:
                        os.kill(pid, 0)
                    except ProcessLookupError:
                        break
                    time.sleep(0.1)
            self._pid_file(daemon).unlink(missing_ok=True)


def kvm_usable(kernel: Path, wait: float = 6.0) -> bool:
    """Whether QEMU can really run a guest with KVM here: /dev/kvm may exist, initialise, and
    still never run a guest (as on this kind of machine). Probed by booting `kernel` with KVM
    and waiting for its first console line."""
    if not Path("/dev/kvm").exists():
        return False
    try:
        probe = subprocess.run(
            ["qemu-system-x86_64", "-machine", "pc", "-accel", "kvm", "-m", "128", "-kernel", str(kernel),
             "-append", "console=ttyS0 earlyprintk=ttyS0", "-display", "none", "-serial", "stdio",
             "-no-reboot", "-nodefaults", "-no-user-config"],
            capture_output=True, timeout=wait)
        output = probe.stdout
    except subprocess.TimeoutExpired as stopped:
        output = stopped.stdout or b""
    return b"Linux version" in output


def domain_type(kernel: Path) -> str:
    """`kvm` where KVM runs a guest, `qemu` (software emulation) otherwise."""
    return "kvm" if kvm_usable(kernel) else "qemu"
