"""How a plan reaches the host: `plan` records it and touches nothing (simulated mode, no
root), `linux` builds it with pyroute2, iptables-restore and one dnsmasq per bridge.

Both answer `apply(plan, peers)` with the lines of what they did, which the CC records in the
request's trace. The linux driver remembers what it made (devices, addresses, dnsmasq
processes) in its state directory, so a restarted CC removes exactly what a new plan no
longer has — and nothing it did not make."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from cc.network.rules import HOOKS
from services.hostnet import HostNetwork
from services.messages.network import NetworkPlanView, NetworkSettings

log = logging.getLogger("eucasim.cc.network")


class NetworkDriver(Protocol):
    name: str

    def apply(self, plan: NetworkPlanView, settings: NetworkSettings,
              peers: Mapping[str, str]) -> list[str]:
        """Make the host match `plan`; peers: node id -> its underlay address."""
        ...

    def teardown(self) -> list[str]: ...


class RecordingDriver:
    """`plan`: the plan is the product; nothing is applied."""

    name = "plan"

    def __init__(self) -> None:
        self.applied: NetworkPlanView | None = None

    def apply(self, plan: NetworkPlanView, settings: NetworkSettings,
              peers: Mapping[str, str]) -> list[str]:
        self.applied = plan
        return []

    def teardown(self) -> list[str]:
        self.applied = None
        return []


@dataclass
class _Made:
    """What the linux driver has made on this host, kept across restarts."""
    devices: list[str] = field(default_factory=list)
    addresses: dict[str, list[str]] = field(default_factory=dict)   # device -> a.b.c.d/len
    dnsmasq: list[str] = field(default_factory=list)                # bridges served


def _run(*argv: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=stdin, text=True, capture_output=True, check=check)


class LinuxDriver:
    name = "linux"

    def __init__(self, state_dir: Path, underlay_address: str,
                 settings: NetworkSettings | None = None) -> None:
        self.settings = settings or NetworkSettings()
        self.state_dir = state_dir
        self.underlay_address = underlay_address
        state_dir.mkdir(parents=True, exist_ok=True)

    # -- memory of what was made --------------------------------------------------------------

    @property
    def _state_file(self) -> Path:
        return self.state_dir / "made.json"

    def _made(self) -> _Made:
        try:
            return _Made(**json.loads(self._state_file.read_text()))
        except FileNotFoundError:
            return _Made()

    def _remember(self, made: _Made) -> None:
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(made)))
        os.replace(tmp, self._state_file)

    # -- applying -----------------------------------------------------------------------------

    def apply(self, plan: NetworkPlanView, settings: NetworkSettings,
              peers: Mapping[str, str]) -> list[str]:
        self.settings = settings  # the CLC's settings arrive with each intent
        done: list[str] = []
        before = self._made()
        Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
        with HostNetwork() as host:
            now = self._devices(host, plan, peers, before, done)
            self._public(host, plan, before, now)
        self._rules(plan, done)
        now.dnsmasq = self._dhcp(plan, before, done)
        self._remember(now)
        return done

    def _devices(self, host: HostNetwork, plan: NetworkPlanView, peers: Mapping[str, str],
                 before: _Made, done: list[str]) -> _Made:
        now = _Made()
        gateways: dict[str, list[str]] = {}
        for net in plan.networks:
            host.bridge(net.bridge)
            if net.bridge.startswith("eucabr") and net.bridge not in now.devices:
                now.devices.append(net.bridge)
            if net.device is not None:
                remotes = [peers[node] for node, vlans in plan.node_networks.items()
                           if net.vlan in vlans and node in peers]
                if self.settings.transport == "vxlan":
                    host.vxlan(net.device, net.vlan, self.underlay_address,
                               self.settings.private_interface, net.bridge, remotes)
                else:
                    host.vlan(net.device, net.vlan, self.settings.private_interface, net.bridge)
                now.devices.append(net.device)
            prefix = net.cidr.split("/")[1]
            gateways.setdefault(net.bridge, []).append(f"{net.gateway}/{prefix}")
        for bridge, wanted in gateways.items():
            host.keep_addresses(bridge, wanted, before.addresses.get(bridge, []))
            now.addresses[bridge] = wanted
        for bridge, owned in before.addresses.items():
            if bridge not in gateways and bridge != self.settings.public_interface and host.index(bridge):
                host.keep_addresses(bridge, [], owned)
        for device in before.devices:
            if device not in now.devices:
                host.remove(device)
                done.append(f"removed {device}")
        for device in now.devices:
            if device not in before.devices:
                done.append(f"made {device}")
        return now

    def _public(self, host: HostNetwork, plan: NetworkPlanView, before: _Made, now: _Made) -> None:
        iface = self.settings.public_interface
        wanted = [f"{lease.public_ip}/32" for lease in plan.leases if lease.public_ip]
        if host.index(iface) is None:
            if wanted:
                raise LookupError(f"VNET_PUBINTERFACE={iface}: no such device for the public addresses")
            return
        host.keep_addresses(iface, wanted, before.addresses.get(iface, []))
        now.addresses[iface] = wanted

    def _rules(self, plan: NetworkPlanView, done: list[str]) -> None:
        """Our chains, rebuilt whole in one iptables-restore (atomic per table), then the one
        jump into each from its built-in chain, then chains of groups that are gone."""
        _run("iptables-restore", "--noflush", stdin=plan.iptables)
        for table, builtin, ours in HOOKS:
            if _run("iptables", "-t", table, "-C", builtin, "-j", ours, check=False).returncode != 0:
                _run("iptables", "-t", table, "-I", builtin, "1", "-j", ours)
                done.append(f"hooked {table}/{builtin} -> {ours}")
        declared = {line[1:].split()[0] for line in plan.iptables.splitlines() if line.startswith(":")}
        for chain in _chains("filter"):
            if chain.startswith("EU-") and chain not in declared:
                _run("iptables", "-F", chain)
                _run("iptables", "-X", chain)
                done.append(f"removed chain {chain}")

    def _dhcp(self, plan: NetworkPlanView, before: _Made, done: list[str]) -> list[str]:
        for bridge in before.dnsmasq:
            if bridge not in plan.dnsmasq:
                self._stop_dnsmasq(bridge)
                done.append(f"stopped dnsmasq on {bridge}")
        for bridge, options in plan.dnsmasq.items():
            paths = self._dnsmasq_paths(bridge)
            # user=root: dnsmasq re-reads the hosts file on SIGHUP after dropping privileges,
            # and the CC's state directory may be private to root.
            conf = options + (f"user=root\ndhcp-hostsfile={paths['hosts']}\ndhcp-leasefile={paths['leases']}\n"
                              f"pid-file={paths['pid']}\nlog-facility={paths['log']}\nlog-dhcp\n")
            hosts = plan.dhcp_hosts.get(bridge, "")
            paths["hosts"].write_text(hosts)
            running = _alive(paths["pid"])
            stale = _stale_leases(paths["leases"], hosts)
            if (running is not None and not stale and paths["conf"].is_file()
                    and paths["conf"].read_text() == conf):
                os.kill(running, signal.SIGHUP)  # re-reads the hosts file
                continue
            if running is not None:
                self._stop_dnsmasq(bridge)
            if stale:
                # dnsmasq keeps a gone instance's lease until it expires and will not give its
                # address to the instance that has it now ("not using configured address …
                # because it is leased to <old MAC>"), as when a terminated instance's address
                # goes to the next launch; a SIGHUP does not drop leases, so it restarts without.
                _drop_leases(paths["leases"], stale)
                done.append(f"dropped the DHCP leases of {', '.join(sorted(stale))} on {bridge}")
            paths["conf"].write_text(conf)
            _run("dnsmasq", f"--conf-file={paths['conf']}")
            done.append(f"started dnsmasq on {bridge}")
        return sorted(plan.dnsmasq)

    def _dnsmasq_paths(self, bridge: str) -> dict[str, Path]:
        base = self.state_dir / f"dnsmasq-{bridge}"
        return {kind: base.with_suffix(f".{kind}") for kind in ("conf", "hosts", "leases", "pid", "log")}

    def _stop_dnsmasq(self, bridge: str) -> None:
        """SIGTERM, and wait for it to end: a new dnsmasq on the bridge cannot bind while the
        old one holds the port."""
        pid = _alive(self._dnsmasq_paths(bridge)["pid"])
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _running(pid):
            os.kill(pid, signal.SIGKILL)

    # -- removing everything ------------------------------------------------------------------

    def teardown(self) -> list[str]:
        made = self._made()
        done: list[str] = []
        for bridge in made.dnsmasq:
            self._stop_dnsmasq(bridge)
        for table, builtin, ours in HOOKS:
            while _run("iptables", "-t", table, "-D", builtin, "-j", ours, check=False).returncode == 0:
                pass
        for table in ("filter", "nat"):
            for chain in _chains(table):
                if chain.startswith(("EU-", "EUCA-")):
                    _run("iptables", "-t", table, "-F", chain)
            for chain in _chains(table):
                if chain.startswith(("EU-", "EUCA-")):
                    _run("iptables", "-t", table, "-X", chain)
                    done.append(f"removed chain {chain}")
        with HostNetwork() as host:
            for device, owned in made.addresses.items():
                if host.index(device) is not None:
                    host.keep_addresses(device, [], owned)
            for device in made.devices:
                host.remove(device)
                done.append(f"removed {device}")
        self._state_file.unlink(missing_ok=True)
        return done


def _chains(table: str) -> list[str]:
    listing = _run("iptables", "-t", table, "-S").stdout
    return [line.split()[1] for line in listing.splitlines() if line.startswith("-N ")]


def _running(pid: int) -> bool:
    """Alive and not a zombie (a daemon's orphan may stay one where nobody reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _stale_leases(leases: Path, hosts: str) -> set[str]:
    """MACs with a lease in dnsmasq's lease file ("expiry mac ip name client-id") and no
    line in the hosts file ("mac,ip,name") any more."""
    try:
        leased = {line.split()[1].lower() for line in leases.read_text().splitlines() if len(line.split()) > 2}
    except FileNotFoundError:
        return set()
    wanted = {line.split(",")[0].strip().lower() for line in hosts.splitlines() if line.strip()}
    return leased - wanted


def _drop_leases(leases: Path, macs: set[str]) -> None:
    kept = [line for line in leases.read_text().splitlines()
            if len(line.split()) < 2 or line.split()[1].lower() not in macs]
    leases.write_text("".join(f"{line}\n" for line in kept))


def _alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _running(pid) else None
