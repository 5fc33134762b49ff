"""A two-host MANAGED-mode lab in network namespaces, for tests that need real packets:

    internet (inet) ── pub0 ── front end (fe: the CC, its dnsmasq, a stand-in CLC)
                                   └─ wire (veth, MTU 1550 for VXLAN's 50 bytes) ─ node

"Instances" are namespaces plugged into the node's bridges where a guest's tap would go, each
with its instance's MAC, asking the CC's dnsmasq for its address over the VXLAN.

Every name carries this process's id (`for_this_process`), so parallel runs never meet, and a
lab left by a run that died (its process id gone) is swept before a new one is built;
`close()` removes every namespace (and with it every device, address, rule and process inside,
dnsmasq included) and kills what it started.

`step_into("fe")` moves the test's own thread into the front end, as an operator's shell on
that host: services it starts bind their sockets there and boto3 reaches them there, with no
link from the root namespace (whose addresses and routes every lab on this machine would share)."""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from services.lab.topology import (CLC_ADDRESS, FE_PUBLIC, FE_WIRE, INET_ADDRESS, NODE_WIRE,
                                   Topology, sh)

UDHCPC_SCRIPT = textwrap.dedent("""\
    #!/bin/sh
    [ "$1" = bound ] || [ "$1" = renew ] || exit 0
    busybox ip addr flush dev "$interface"
    busybox ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && busybox ip route replace default via "$router" dev "$interface"
    exit 0
    """)


CLC_PORT = 8773
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns {path}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
__all__ = ["CLC_ADDRESS", "CLC_PORT", "FE_PUBLIC", "FE_WIRE", "INET_ADDRESS", "NODE_WIRE", "NetLab"]


@dataclass
class NetLab(Topology):
    """The lab topology plus what tests do in it: plug "instances", serve and connect."""
    root: Path = Path("/tmp")
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _home_ns: int | None = None     # this thread's own namespace while it is stepped into one

    @classmethod
    def for_this_process(cls, prefix: str, root: Path) -> NetLab:
        """A lab tagged `prefix` + this process's id, after sweeping the labs of `prefix` whose
        process is gone (a run killed before its finalizers ran)."""
        cls.sweep(prefix)
        return cls(tag=f"{prefix}{os.getpid()}", root=root)

    @staticmethod
    def sweep(prefix: str) -> list[str]:
        pattern = re.compile(rf"^{re.escape(prefix)}(\d+)-")
        swept = []
        for line in sh("ip", "netns", "list", check=False).stdout.splitlines():
            name = line.split()[0] if line.strip() else ""
            found = pattern.match(name)
            if not found or _alive(int(found.group(1))):
                continue
            for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
                if int(pid) != os.getpid():
                    sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", name, check=False)
            swept.append(name)
        return swept

    def step_into(self, role: str) -> None:
        """This thread (and the threads and processes it starts from now) in `role`'s network
        namespace, until step_out()."""
        if self._home_ns is None:
            self._home_ns = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        _setns(f"/run/netns/{self.ns(role)}")

    def step_out(self) -> None:
        if self._home_ns is None:
            return
        if _libc.setns(self._home_ns, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back to the test's own namespace")
        os.close(self._home_ns)
        self._home_ns = None

    def spawn(self, role: str, *argv: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(["ip", "netns", "exec", self.ns(role), *argv],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def plug_instance(self, name: str, mac: str, bridge: str) -> str:
        """A namespace standing in for a guest: its eth0 (with the instance's MAC) in `bridge`
        on the node. Returns the address dnsmasq gave it."""
        self.add_namespace(name)
        host_end = f"{self.tag}{name}"[:15]
        sh("ip", "link", "add", host_end, "netns", self.ns("node"), "type", "veth",
           "peer", "name", f"{host_end}g"[:15], "netns", self.ns(name))
        self.run(name, "ip", "link", "set", f"{host_end}g"[:15], "name", "eth0")
        self.run(name, "ip", "link", "set", "eth0", "address", mac, "up")
        self.run("node", "ip", "link", "set", host_end, "master", bridge, "up")
        script = self.root / "udhcpc.sh"
        if not script.exists():
            script.write_text(UDHCPC_SCRIPT)
            script.chmod(0o755)
        self.run(name, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-t", "10", "-T", "1",
                 "-A", "1", "-s", str(script), timeout=60)
        shown = self.run(name, "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout.split()
        return shown[shown.index("inet") + 1].split("/")[0]

    def unplug(self, name: str) -> None:
        """The stand-in gone, as a destroyed guest's tap goes (its veth dies with it)."""
        ns = self.ns(name)
        for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
            sh("kill", "-9", pid, check=False)
        sh("ip", "netns", "del", ns)
        self.namespaces.remove(ns)

    def serve_tcp(self, role: str, address: str, port: int, reply: str) -> None:
        """A TCP server that answers every connection with `reply` and the peer's address."""
        code = textwrap.dedent(f"""\
            import socket
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(({address!r}, {port})); s.listen(16)
            while True:
                c, peer = s.accept()
                c.sendall(({reply!r} + " " + peer[0] + "\\n").encode()); c.close()
            """)
        self.spawn(role, "python3", "-c", code)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            listening = self.run(role, "ss", "-ltn", check=False).stdout
            if f"{address}:{port}" in listening:
                return
            time.sleep(0.05)
        raise RuntimeError(f"no server on {address}:{port} in {role}")

    def connect(self, role: str, address: str, port: int) -> str | None:
        """What the server at address:port says to `role`, or None when it cannot be reached."""
        code = textwrap.dedent(f"""\
            import socket, sys
            try:
                c = socket.create_connection(({address!r}, {port}), timeout=1.5)
                print(c.recv(200).decode().strip())
            except OSError:
                sys.exit(3)
            """)
        answer = self.run(role, "python3", "-c", code, check=False)
        return answer.stdout.strip() if answer.returncode == 0 else None

    def http_get(self, role: str, url: str, headers: dict[str, str] | None = None) -> tuple[int, str] | None:
        """(status, body) of GET `url` from `role`, or None when nothing answers."""
        code = textwrap.dedent(f"""\
            import sys, urllib.error, urllib.request
            request = urllib.request.Request({url!r}, headers={headers or {}!r})
            try:
                with urllib.request.urlopen(request, timeout=3) as answer:
                    print(answer.status); print(answer.read().decode(), end="")
            except urllib.error.HTTPError as error:
                print(error.code); print(error.read().decode(), end="")
            except OSError:
                sys.exit(3)
            """)
        answer = self.run(role, "python3", "-c", code, check=False)
        if answer.returncode != 0:
            return None
        status, _, body = answer.stdout.partition("\n")
        return int(status), body

    def ping(self, role: str, address: str) -> bool:
        return self.run(role, "busybox", "ping", "-c", "1", "-W", "1", address,
                        check=False).returncode == 0

    def close(self) -> None:
        # First out of the lab: closing kills every process in its namespaces, and this one
        # would otherwise be among them.
        self.step_out()
        for process in self.processes:
            process.kill()
            process.wait(timeout=5)
        super().close()
