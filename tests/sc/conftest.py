"""One Walrus for the SC tests and one SC per module (a real process each); volume and
snapshot ids are fresh per test, so tests share a zone without seeing each other's volumes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sc.process import ScProcess, Walrus, sc_process, walrus_for_sc


@pytest.fixture(scope="session")
def walrus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walrus]:
    with walrus_for_sc(tmp_path_factory.mktemp("sc-walrus")) as running:
        yield running


@pytest.fixture(scope="module")
def sc(walrus: Walrus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScProcess]:
    with sc_process(tmp_path_factory.mktemp("sc-zone-1"), walrus, SC_MAX_STORAGE="64",
                    SC_SNAPSHOT_PART_MIB="1") as running:
        yield running


def host_address() -> str:
    """An address of this host other than loopback (what a node on another host would
    reach), or loopback on a machine that has none."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        words = line.split()
        if "inet" in words:
            return words[words.index("inet") + 1].split("/")[0]
    return "127.0.0.1"


@pytest.fixture(scope="module")
def nbd_sc(walrus: Walrus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScProcess]:
    with sc_process(tmp_path_factory.mktemp("sc-nbd"), walrus, SC_EXPORT="nbd",
                    SC_NBD_ADDRESS=host_address(), SC_NBD_PORTS="10850-10869",
                    SC_MAX_STORAGE="16") as running:
        yield running


def volume_file(sc: ScProcess, volume_id: str) -> Path:
    return sc.volumes / f"{volume_id}.img"
