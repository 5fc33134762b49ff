"""MANAGED-mode addressing: one private network per security group, lowest free addresses,
public addresses from VNET_PUBLICIPS, freed when an instance terminates."""

from __future__ import annotations

from pathlib import Path

import pytest

from clc.addressing import AddressPlan
from services.vnet import public_pool
from clc.models.instances import Instance, InstanceGroup
from services.errors import EC2Error
from tests.instances.conftest import ClcState, make_state


def _store(state: ClcState, group: str, addresses: dict, status: str = "running") -> None:
    with state.db.session() as session:
        for instance_id, a in addresses.items():
            session.add(Instance(id=instance_id, reservation_id="r-00000001", account_id=state.account_id,
                                 image_id="emi-00000001", instance_type="m1.small", zone="zone-1",
                                 state=status, mac=a.mac, private_ip=a.private_ip,
                                 public_ip=a.public_ip, vlan=a.vlan))
            session.add(InstanceGroup(instance_id=instance_id, group_id=group, group_name=group))


def _allocate(state: ClcState, group: str, ids: list[str]) -> dict:
    with state.db.session() as session:
        return AddressPlan(state.config).allocate(session, state.account_id, group, ids)


def test_a_group_gets_one_network_and_its_instances_consecutive_addresses(state: ClcState):
    first = _allocate(state, "sg-aaaaaaaa", ["i-00000001", "i-00000002"])
    assert [a.private_ip for a in first.values()] == ["172.31.0.66", "172.31.0.67"]
    assert {a.vlan for a in first.values()} == {2}
    assert [a.public_ip for a in first.values()] == ["10.111.200.1", "10.111.200.2"]
    assert first["i-00000001"].mac == "d0:0d:00:00:00:01"
    assert first["i-00000001"].network().bridge == "eucabr2"
    _store(state, "sg-aaaaaaaa", first)
    same_group = _allocate(state, "sg-aaaaaaaa", ["i-00000003"])["i-00000003"]
    assert (same_group.vlan, same_group.private_ip, same_group.public_ip) == (2, "172.31.0.68", "10.111.200.3")
    other_group = _allocate(state, "sg-bbbbbbbb", ["i-00000004"])["i-00000004"]
    assert (other_group.vlan, other_group.private_ip) == (3, "172.31.0.98")


def test_terminated_instances_give_their_addresses_back(state: ClcState):
    _store(state, "sg-aaaaaaaa", _allocate(state, "sg-aaaaaaaa", ["i-00000001"]), status="terminated")
    again = _allocate(state, "sg-aaaaaaaa", ["i-00000002"])["i-00000002"]
    assert (again.private_ip, again.public_ip) == ("172.31.0.66", "10.111.200.1")


def test_a_full_network_refuses_more(tmp_path: Path):
    state = make_state(tmp_path, VNET_ADDRSPERNET=8)  # hosts .2 … .6: five addresses
    with pytest.raises(EC2Error) as error:
        _allocate(state, "sg-aaaaaaaa", [f"i-0000000{n}" for n in range(1, 7)])
    assert error.value.code == "InsufficientFreeAddressesInSubnet"
    assert len(_allocate(state, "sg-aaaaaaaa", [f"i-0000000{n}" for n in range(1, 6)])) == 5


def test_public_addresses_run_out_quietly(tmp_path: Path):
    state = make_state(tmp_path, VNET_PUBLICIPS="10.0.0.1")
    got = _allocate(state, "sg-aaaaaaaa", ["i-00000001", "i-00000002"])
    assert [a.public_ip for a in got.values()] == ["10.0.0.1", None]


def test_other_modes(tmp_path: Path):
    novlan = make_state(tmp_path / "a", VNET_MODE="MANAGED-NOVLAN")
    a = _allocate(novlan, "sg-aaaaaaaa", ["i-00000001"])["i-00000001"]
    assert a.private_ip == "172.31.0.66" and a.network().vlan is None and a.network().bridge == "br0"
    system = make_state(tmp_path / "b", VNET_MODE="SYSTEM")
    s = _allocate(system, "sg-aaaaaaaa", ["i-00000001"])["i-00000001"]
    assert (s.private_ip, s.public_ip, s.mac) == (None, None, "d0:0d:00:00:00:01")


def test_public_pool_reads_ranges_and_lists():
    assert public_pool("10.0.0.1-10.0.0.3, 10.0.1.9") == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.1.9"]
