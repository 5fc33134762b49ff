"""A two-host MANAGED-mode lab in network namespaces, for tests that need real packets:

    internet (inet) ── pub0 ── front end (fe: the CC, its dnsmasq, a stand-in CLC)
                                   └─ wire (veth, MTU 1550 for VXLAN's 50 bytes) ─ node

"Instances" are namespaces plugged into the node's bridges where a guest's tap would go, each
with its instance's MAC, asking the CC's dnsmasq for its address over the VXLAN.

Every name carries this process's id, so parallel runs never meet; `close()` removes every
namespace (and with it every device and address inside) and kills what it started."""

from __future__ import annotations

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
__all__ = ["CLC_ADDRESS", "CLC_PORT", "FE_PUBLIC", "FE_WIRE", "INET_ADDRESS", "NODE_WIRE", "NetLab"]


@dataclass
class NetLab(Topology):
    """The lab topology plus what tests do in it: plug "instances", serve and connect."""
    root: Path = Path("/tmp")
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

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
        super().close()
