"""`eucasim network show`: the zone's MANAGED-mode network as its CC planned it — networks,
addresses, then the exact iptables rules and dnsmasq host lines — narrowed to one group or
one instance when asked."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.cli_calls import HomeOption, call_service, config_for
from services.messages.network import CC_NETWORK_ROUTE, NetworkPlanView

network_app = typer.Typer(help="The zone's network, as the cluster controller planned it.",
                          no_args_is_help=True)
out = Console()


def narrowed(plan: NetworkPlanView, group: str | None, instance: str | None) -> NetworkPlanView:
    """Only what concerns one group (by id or name) or one instance."""
    networks = plan.networks
    if group:
        networks = [n for n in networks if group in (n.group_id, n.group_name)]
    if instance:
        networks = [n for n in networks if instance in n.instances]
    vlans = {n.vlan for n in networks}
    leases = [lease for lease in plan.leases if lease.vlan in vlans
              and (instance is None or lease.instance_id == instance)]
    if not (group or instance):
        return plan
    keys = {n.group_id for n in networks} | {n.cidr for n in networks}
    keys |= {lease.private_ip for lease in leases}
    rules = "\n".join(line for line in plan.iptables.splitlines()
                      if line.startswith(("*", ":", "COMMIT")) or any(k in line for k in keys))
    bridges = {n.bridge for n in networks}
    return plan.model_copy(update={
        "networks": networks, "leases": leases, "iptables": rules + "\n",
        "dnsmasq": {b: t for b, t in plan.dnsmasq.items() if b in bridges},
        "dhcp_hosts": {b: t for b, t in plan.dhcp_hosts.items() if b in bridges}})


def render(plan: NetworkPlanView, console: Console) -> None:
    networks = Table("vlan", "group", "account", "subnet", "gateway", "bridge", "device",
                     "instances", title=f"networks ({plan.mode}, plan version {plan.version})")
    for net in plan.networks:
        networks.add_row(str(net.vlan), f"{net.group_name} ({net.group_id})", net.account_id,
                         net.cidr, net.gateway, net.bridge, net.device or "-", str(len(net.instances)))
    console.print(networks)
    leases = Table("instance", "mac", "private", "public", "vlan", "node", title="addresses")
    for lease in plan.leases:
        leases.add_row(lease.instance_id, lease.mac, lease.private_ip, lease.public_ip or "-",
                       str(lease.vlan), lease.node or "-")
    console.print(leases)
    console.rule("iptables-restore (eucasim's chains only)")
    console.print(plan.iptables, markup=False, highlight=False)
    for bridge, hosts in plan.dhcp_hosts.items():
        console.rule(f"dnsmasq hosts on {bridge}")
        console.print(hosts, markup=False, highlight=False)
    if plan.diff:
        console.rule("last change")
        console.print("\n".join(plan.diff), markup=False, highlight=False)


@network_app.command("show")
def show(group: Annotated[str | None, typer.Option(help="Only this security group (id or name).")] = None,
         instance: Annotated[str | None, typer.Option(help="Only this instance.")] = None,
         zone: Annotated[str | None, typer.Option(help="The zone (its CC); the first by default.")] = None,
         home: HomeOption = None) -> None:
    """Print the plan readably: networks, addresses, then the exact rules."""
    config = config_for(home)
    if zone is not None and zone not in config.zones:
        raise typer.BadParameter(f"no zone {zone!r}; this cloud has {', '.join(config.zones)}")
    plan: NetworkPlanView = call_service(config, "cc", "GET", CC_NETWORK_ROUTE, None,
                                         NetworkPlanView)  # type: ignore[assignment]
    render(narrowed(plan, group, instance), out)
