"""A throwaway single-host Ceph cluster for the tests (../shared/CEPH-LAB.md): one mon, one
OSD on memstore, and radosgw, from Debian's Ceph 16 packages, all on a loopback address of its
own so that two test workers (or two test runs) never meet.

    with ceph_cluster() as ceph:
        ceph.conf            # a ceph.conf any librados/librbd/qemu client can read
        ceph.key("admin")    # the cephx secret of client.admin (for a libvirt secret)
        ceph.rgw_endpoint    # http://127.x.y.z:7480, S3 with ceph.access_key/secret_key
        ceph.pool            # "rbd", initialised for RBD images

No manager daemon: RBD and RGW work without one, and it costs memory and a core's worth of
start-up. Every daemon is started by this module and ended by its pid in a `finally`; the
cluster's directory goes with it. Start it once per test session, not per test."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("/usr/bin/ceph-mon", "/usr/bin/ceph-osd", "/usr/bin/radosgw", "/usr/bin/rbd")
RGW_PORT = 7480
ACCESS_KEY = "EUCASIMCEPHTESTKEY01"
SECRET_KEY = "eucasim-ceph-test-secret-0000000000000000"
START_TIMEOUT = 90.0


def available() -> bool:
    return all(Path(binary).is_file() for binary in PACKAGES)


def loopback_address(pid: int | None = None) -> str:
    """An address of 127/8 that only this process uses: Ceph daemons bind fixed ports, so two
    clusters need two addresses."""
    pid = os.getpid() if pid is None else pid
    return f"127.{128 + ((pid >> 16) & 0x3F)}.{(pid >> 8) & 0xFF}.{(pid & 0xFF) or 254}"


@dataclass
class CephCluster:
    root: Path
    address: str
    conf: Path
    pool: str = "rbd"
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    pids: list[int] = field(default_factory=list)
    enter: list[str] = field(default_factory=list)

    @property
    def rgw_endpoint(self) -> str:
        return f"http://{self.address}:{RGW_PORT}"

    def run(self, *argv: str, timeout: float = 60.0) -> str:
        """A Ceph command-line tool (ceph, rbd, radosgw-admin, …) against this cluster."""
        done = subprocess.run([argv[0], "--conf", str(self.conf), *argv[1:]], capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()[-2000:]}")
        return done.stdout

    def key(self, user: str = "admin") -> str:
        """The base64 cephx secret of client.`user`."""
        return self.run("ceph", "auth", "get-key", f"client.{user}").strip()

    def images(self, pool: str | None = None) -> list[str]:
        return sorted(json.loads(self.run("rbd", "ls", "--format", "json", pool or self.pool)))


def _conf_text(root: Path, fsid: str, address: str) -> str:
    # Off loopback (a lab node's wire address), the daemons' network is that address alone.
    network = "127.0.0.0/8" if address.startswith("127.") else f"{address}/32"
    return f"""[global]
fsid = {fsid}
mon host = v2:{address}:3300,v1:{address}:6789
mon initial members = a
public addr = {address}
public network = {network}
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = {root}/keyring
run dir = {root}/run
admin socket = {root}/run/$name.asok
log file = {root}/log/$name.log
pid file = {root}/run/$name.pid
crash dir = {root}/crash
mon cluster log file = {root}/log/cluster.log
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
ms bind port min = 6800
ms bind port max = 7100

[mon]
mon data = {root}/mon/$cluster-$id
mon memory target = 268435456
# With the default 1 s an RBD snapshot (a map change) waits about a second; with these, tens of ms.
paxos propose interval = 0.05
paxos min wait = 0.01

[osd]
osd data = {root}/osd/$cluster-$id
keyring = {root}/osd/$cluster-$id/keyring
osd objectstore = memstore
memstore device bytes = 17179869184
osd memory target = 939524096

[client.rgw.test]
keyring = {root}/rgw/keyring
rgw frontends = beast endpoint={address}:{RGW_PORT} tcp_nodelay=1
rgw data = {root}/rgw
rgw dns name = {address}
"""


def _spawn(argv: list[str], log: Path) -> int:
    # nsenter execs the daemon (no --fork): the pid recorded is the daemon's own.
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    return process.pid


def _wait(what: str, check, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"Ceph: {what} not ready after {timeout:.0f} s ({last})")


def _kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in pids:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)
                os.kill(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                break
            time.sleep(0.05)


@contextmanager
def ceph_cluster(address: str | None = None, enter: Sequence[str] = ()) -> Iterator[CephCluster]:
    """`enter` runs the daemons in another network namespace (`nsenter --net=…`, a lab node's),
    listening on `address` there; the command-line tools run here and reach it by route."""
    address = address or loopback_address()
    root = Path(tempfile.mkdtemp(prefix="eucasim-ceph-", dir="/tmp"))
    fsid = str(uuid.uuid4())
    conf = root / "ceph.conf"
    for folder in ("run", "log", "crash", "mon", "osd", "rgw"):
        (root / folder).mkdir()
    conf.write_text(_conf_text(root, fsid, address))
    cluster = CephCluster(root=root, address=address, conf=conf, enter=list(enter))
    try:
        _bring_up(cluster, fsid)
        yield cluster
    finally:
        _kill(cluster.pids)
        shutil.rmtree(root, ignore_errors=True)


def _bring_up(cluster: CephCluster, fsid: str) -> None:
    root, conf, address = cluster.root, str(cluster.conf), cluster.address
    keyring, monmap = root / "keyring", root / "monmap"

    def tool(*argv: str) -> None:
        subprocess.run(list(argv), check=True, capture_output=True, timeout=60)

    tool("ceph-authtool", "--create-keyring", str(keyring), "--gen-key", "-n", "mon.", "--cap", "mon", "allow *")
    tool("ceph-authtool", str(keyring), "--gen-key", "-n", "client.admin", "--cap", "mon", "allow *",
         "--cap", "osd", "allow *", "--cap", "mds", "allow *", "--cap", "mgr", "allow *")
    tool("monmaptool", "--create", "--fsid", fsid, "--addv", "a", f"[v2:{address}:3300,v1:{address}:6789]",
         str(monmap))
    tool("ceph-mon", "--conf", conf, "--mkfs", "-i", "a", "--monmap", str(monmap), "--keyring", str(keyring))
    cluster.pids.append(_spawn([*cluster.enter, "ceph-mon", "--conf", conf, "-i", "a", "-f"], root / "log" / "mon.out"))
    _wait("mon", lambda: bool(cluster.run("ceph", "mon", "stat", timeout=10)))

    osd_uuid = str(uuid.uuid4())
    osd_id = cluster.run("ceph", "osd", "new", osd_uuid).strip()
    (root / "osd" / f"ceph-{osd_id}").mkdir()
    tool("ceph-osd", "--conf", conf, "-i", osd_id, "--mkfs", "--mkkey", "--no-mon-config",
         "--osd-uuid", osd_uuid)
    cluster.run("ceph", "auth", "add", f"osd.{osd_id}", "osd", "allow *", "mon", "allow profile osd",
                "mgr", "allow profile osd", "-i", str(root / "osd" / f"ceph-{osd_id}" / "keyring"))
    cluster.pids.append(_spawn([*cluster.enter, "ceph-osd", "--conf", conf, "-i", osd_id, "-f"], root / "log" / "osd.out"))

    def osd_up() -> bool:
        stat = json.loads(cluster.run("ceph", "osd", "stat", "-f", "json", timeout=10))
        return int(stat.get("num_up_osds", 0)) >= 1 and int(stat.get("num_in_osds", 0)) >= 1

    _wait("osd", osd_up)
    cluster.run("ceph", "osd", "pool", "create", cluster.pool, "8", "8", "replicated", "--size", "1")
    cluster.run("rbd", "pool", "init", cluster.pool)

    rgw_keyring = root / "rgw" / "keyring"
    cluster.run("ceph", "auth", "get-or-create", "client.rgw.test", "mon", "allow rw", "osd", "allow rwx",
                "mgr", "allow rw", "-o", str(rgw_keyring))
    cluster.pids.append(_spawn([*cluster.enter, "radosgw", "--conf", conf, "-n", "client.rgw.test", "-f"], root / "log" / "rgw.out"))
    cluster.run("radosgw-admin", "user", "create", "--uid", "eucasim", "--display-name", "eucasim tests",
                "--access-key", cluster.access_key, "--secret", cluster.secret_key, timeout=90)
    _wait("radosgw", lambda: _answers(address, RGW_PORT))


def _answers(address: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False
