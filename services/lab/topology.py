"""The seed's two machines and the internet, as network namespaces on one host:

    host (root ns) ── lab0 10.254.0.1 ═ 10.254.0.2 host0 ── fe (CLC, Walrus, SC, CC)
    internet (inet) 192.0.2.100 ── 192.0.2.1 pub0 ── fe
    fe wire 10.255.0.1 ═══ (veth "wire", MTU 1550 for VXLAN's 50 bytes) ═══ 10.255.0.2 wire ── node (NC)

Every name carries a tag (the lab's, or a test's process id), so two labs never meet, and
`close()` removes every namespace it made (with every device and address inside) and kills
every process still living in them. REAL-LAB.md's gotchas shaped it: wire MTU 1550, the CLC's
metadata address on fe's loopback rather than 127.0.0.1, processes started with nsenter
(--net only) so libvirtd keeps its cgroups."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

FE_WIRE, NODE_WIRE = "10.255.0.1", "10.255.0.2"
FE_PUBLIC, INET_ADDRESS = "192.0.2.1", "192.0.2.100"
HOST_SIDE, FE_HOST_SIDE = "10.254.0.1", "10.254.0.2"
CLC_ADDRESS = "172.16.0.1"  # where the metadata DNAT sends 169.254.169.254 (on fe's lo)
PUBLIC_POOL = "192.0.2.10-192.0.2.60"


def sh(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, text=True, capture_output=True, check=check, timeout=timeout)


@dataclass
class Topology:
    tag: str
    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)   # devices made in the root namespace

    def ns(self, role: str) -> str:
        return f"{self.tag}-{role}"

    def run(self, role: str, *argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.ns(role), *argv, check=check, timeout=timeout)

    def enter(self, role: str) -> list[str]:
        """The prefix that runs a command in `role`'s network namespace only."""
        return ["nsenter", f"--net=/run/netns/{self.ns(role)}"]

    def add_namespace(self, role: str) -> None:
        name = self.ns(role)
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        self.run(role, "ip", "link", "set", "lo", "up")

    def _pair(self, left: str, left_ns: str | None, left_name: str,
              right_ns: str, right_name: str, mtu: int = 1500) -> None:
        a, b = f"{self.tag}{left}a"[:15], f"{self.tag}{left}b"[:15]
        left_args = ["netns", left_ns] if left_ns else []
        sh("ip", "link", "add", a, "mtu", str(mtu), *left_args, "type", "veth",
           "peer", "name", b, "mtu", str(mtu), "netns", right_ns)
        if left_ns:
            sh("ip", "-n", left_ns, "link", "set", a, "name", left_name, "up")
        else:
            sh("ip", "link", "set", a, "name", left_name, "up")
            self.links.append(left_name)
        sh("ip", "-n", right_ns, "link", "set", b, "name", right_name, "up")

    def build(self, host_link: bool = False) -> Topology:
        for role in ("fe", "node", "inet"):
            self.add_namespace(role)
        fe, node, inet = self.ns("fe"), self.ns("node"), self.ns("inet")
        self._pair("w", fe, "wire", node, "wire", mtu=1550)
        self.run("fe", "ip", "addr", "add", f"{FE_WIRE}/30", "dev", "wire")
        self.run("node", "ip", "addr", "add", f"{NODE_WIRE}/30", "dev", "wire")
        self._pair("p", fe, "pub0", inet, "eth0")
        self.run("fe", "ip", "addr", "add", f"{FE_PUBLIC}/24", "dev", "pub0")
        self.run("inet", "ip", "addr", "add", f"{INET_ADDRESS}/24", "dev", "eth0")
        self.run("inet", "ip", "route", "add", "default", "via", FE_PUBLIC)
        self.run("fe", "ip", "addr", "add", f"{CLC_ADDRESS}/32", "dev", "lo")
        self.run("fe", "sysctl", "-qw", "net.ipv4.ip_forward=1")
        if host_link:  # the user's shell (root ns) reaches the front end's endpoints
            self._pair("h", None, f"{self.tag}h"[:15], fe, "host0")
            sh("ip", "addr", "add", f"{HOST_SIDE}/30", "dev", f"{self.tag}h"[:15])
            self.run("fe", "ip", "addr", "add", f"{FE_HOST_SIDE}/30", "dev", "host0")
        return self

    def exists(self) -> bool:
        listed = sh("ip", "netns", "list", check=False).stdout
        return any(line.split()[0] == self.ns("fe") for line in listed.splitlines() if line.strip())

    def close(self) -> None:
        for name in reversed(self.namespaces or [self.ns(r) for r in ("inet", "node", "fe")]):
            for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", name, check=False)
        for link in self.links or [f"{self.tag}h"[:15]]:
            sh("ip", "link", "del", link, check=False)
        self.namespaces.clear()
        self.links.clear()
