"""A two-host MANAGED-mode lab in network namespaces, for tests that need real packets:

    internet (inet) ── pub0 ── front end (fe: the CC, its dnsmasq, a stand-in CLC)
                                   └─ wire (veth, MTU 1550 for VXLAN's 50 bytes) ─ node

"Instances" are namespaces plugged into the node's bridges where a guest's tap would go, each
with its instance's MAC, asking the CC's dnsmasq for its address over the VXLAN.

Every name carries this process's id, so parallel runs never meet; `close()` removes every
namespace (and with it every device and address inside) and kills what it started."""

from __future__ import annotations

import os
import subprocess
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

FE_WIRE, NODE_WIRE = "10.255.0.1", "10.255.0.2"
FE_PUBLIC, INET_ADDRESS = "192.0.2.1", "192.0.2.100"
CLC_ADDRESS, CLC_PORT = "172.16.0.1", 8773
UDHCPC_SCRIPT = textwrap.dedent("""\
    #!/bin/sh
    [ "$1" = bound ] || [ "$1" = renew ] || exit 0
    busybox ip addr flush dev "$interface"
    busybox ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && busybox ip route replace default via "$router" dev "$interface"
    echo "$ip" > "/tmp/$interface-$$.lease"
    exit 0
    """)


def sh(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, text=True, capture_output=True, check=check, timeout=timeout)


@dataclass
class NetLab:
    root: Path
    tag: str = field(default_factory=lambda: f"e{os.getpid() % 100000}")
    namespaces: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def ns(self, role: str) -> str:
        return f"{self.tag}-{role}"

    def run(self, role: str, *argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.ns(role), *argv, check=check, timeout=timeout)

    def spawn(self, role: str, *argv: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(["ip", "netns", "exec", self.ns(role), *argv],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def _add_ns(self, role: str) -> None:
        name = self.ns(role)
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        self.run(role, "ip", "link", "set", "lo", "up")

    def build(self) -> NetLab:
        for role in ("fe", "node", "inet"):
            self._add_ns(role)
        fe, node, inet = self.ns("fe"), self.ns("node"), self.ns("inet")
        sh("ip", "link", "add", f"{self.tag}w0", "mtu", "1550", "netns", fe, "type", "veth",
           "peer", "name", f"{self.tag}w1", "mtu", "1550", "netns", node)
        self.run("fe", "ip", "link", "set", f"{self.tag}w0", "name", "wire")
        self.run("node", "ip", "link", "set", f"{self.tag}w1", "name", "wire")
        self.run("fe", "ip", "addr", "add", f"{FE_WIRE}/30", "dev", "wire")
        self.run("node", "ip", "addr", "add", f"{NODE_WIRE}/30", "dev", "wire")
        sh("ip", "link", "add", f"{self.tag}p0", "netns", fe, "type", "veth",
           "peer", "name", f"{self.tag}p1", "netns", inet)
        self.run("fe", "ip", "link", "set", f"{self.tag}p0", "name", "pub0")
        self.run("inet", "ip", "link", "set", f"{self.tag}p1", "name", "eth0")
        self.run("fe", "ip", "addr", "add", f"{FE_PUBLIC}/24", "dev", "pub0")
        self.run("inet", "ip", "addr", "add", f"{INET_ADDRESS}/24", "dev", "eth0")
        self.run("fe", "ip", "addr", "add", f"{CLC_ADDRESS}/32", "dev", "lo")
        for role, devices in (("fe", ("wire", "pub0")), ("node", ("wire",)), ("inet", ("eth0",))):
            for device in devices:
                self.run(role, "ip", "link", "set", device, "up")
        self.run("inet", "ip", "route", "add", "default", "via", FE_PUBLIC)
        self.run("fe", "sysctl", "-qw", "net.ipv4.ip_forward=1")
        return self

    def plug_instance(self, name: str, mac: str, bridge: str) -> str:
        """A namespace standing in for a guest: its eth0 (with the instance's MAC) in `bridge`
        on the node. Returns the address dnsmasq gave it."""
        self._add_ns(name)
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

    def ping(self, role: str, address: str) -> bool:
        return self.run(role, "busybox", "ping", "-c", "1", "-W", "1", address,
                        check=False).returncode == 0

    def close(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait(timeout=5)
        for name in reversed(self.namespaces):
            pids = sh("ip", "netns", "pids", name, check=False).stdout.split()
            for pid in pids:  # dnsmasq and anything else still living in it
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", name, check=False)
        self.namespaces.clear()
