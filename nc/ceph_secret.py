"""The Ceph key a node gives libvirt for RBD volumes (the SC's `rbd` export driver).

The key stays on the node: it reads it from its own keyring (NC_CEPH_KEYRING, or the keyring
the node's ceph.conf names for `client.<user>`), as Eucalyptus 4's NC read CEPH_KEYRING_PATH
and as Nova's compute hosts hold theirs, rather than have it travel in every attach message
(which is signed, not encrypted, and recorded in traces). The attach names only the user.

libvirt keeps the key as a secret of usage type `ceph`; a disk names it by UUID. The UUID is
derived from the user's name, so the domain XML (nc/domain_xml.py, a pure function) and the
hypervisor that defines the secret (nc/libvirt_hypervisor.py) agree without asking each
other, and defining it again after a restart is the same secret."""

from __future__ import annotations

import configparser
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

_NAMESPACE = uuid.UUID("6b1f3c52-8a8e-4b54-9d0e-2f6a8e0c7a11")  # eucasim's, for Ceph secrets

KeySource = Callable[[str], str]    # Ceph user -> its base64 cephx key


class NoCephKey(Exception):
    """The node holds no key for the Ceph user an RBD volume names."""


def secret_uuid(user: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"client.{user}"))


def secret_usage(user: str) -> str:
    return f"client.{user} secret"


def secret_xml(user: str) -> str:
    return (f"<secret ephemeral='no' private='yes'><uuid>{secret_uuid(user)}</uuid>"
            f"<usage type='ceph'><name>{secret_usage(user)}</name></usage></secret>")


def key_in(keyring: Path, user: str) -> str | None:
    """The `key` of `[client.<user>]` in a keyring file (INI), or None."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(keyring.read_text())
    except (OSError, configparser.Error):
        return None
    section = f"client.{user}"
    if parser.has_section(section) and parser.has_option(section, "key"):
        return parser.get(section, "key").strip()
    return None


def keyrings_of(conf: Path, user: str) -> list[Path]:
    """Where `ceph.conf` says client.<user>'s keyring is (ceph-conf expands $cluster, $name)."""
    done = subprocess.run(["ceph-conf", "--conf", str(conf), "--name", f"client.{user}", "--lookup",
                           "keyring"], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        return []
    return [Path(p.strip()) for p in done.stdout.replace(";", ",").split(",") if p.strip()]


def key_source(keyring: Path | None, conf: Path | None) -> KeySource:
    def lookup(user: str) -> str:
        places = [keyring] if keyring is not None else (keyrings_of(conf, user) if conf else [])
        for place in places:
            key = key_in(place, user)
            if key:
                return key
        raise NoCephKey(f"no key for client.{user} in {', '.join(map(str, places)) or 'no keyring'} "
                        "(set NC_CEPH_KEYRING, or SC_CEPH_CONF to a ceph.conf naming the keyring)")
    return lookup
