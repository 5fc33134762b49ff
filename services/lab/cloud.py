"""The whole cloud in real mode on one host: the seed's topology (topology.py), libvirtd in the
node (libvirt_daemons.py), CLC, Walrus, SC and CC in the front end and the NC in the node, each
started by the launcher under `nsenter --net=…` so it binds its own socket in its own namespace,
and the tiny guest (guest.py) registered as EKI/ERI/EMI through `eucasim image upload`, as a
user would.

Everything it makes lives in the lab directory, in the namespaces, or in libvirt's domains named
i-…; `down()` removes all of it. The guest's build is cached apart (`guest_cache`): it is a
download from Debian, not state of one lab."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_interface
from pathlib import Path

from services import credentials, launcher
from services.config import load_config, read_conf_file
from services.lab import guest
from services.lab.libvirt_daemons import LibvirtDaemons, domain_type
from services.lab.topology import (CLC_ADDRESS, FE_HOST_SIDE, FE_WIRE, HOST_SIDE, NODE_WIRE,
                                   PUBLIC_POOL, Topology, sh)

TAG = "eucalab"
DEFAULT_DIR = Path("/var/lib/eucasim-lab")
DEFAULT_GUEST_CACHE = Path("/var/cache/eucasim/guest")
STATE = "lab.json"
NC_PORT = 8775
BUCKET = "eucasim-lab"


@dataclass(frozen=True)
class LabImages:
    kernel_id: str
    ramdisk_id: str
    image_id: str


def home_of(root: Path) -> Path:
    return root / "home"


def _conf(kind: str, extra: dict[str, str] | None = None) -> str:
    """eucalyptus.conf shared by every service of the lab (the NC overrides its own address)."""
    public_first, public_last = PUBLIC_POOL.split("-")
    values = {
        # 0.0.0.0 inside fe: the CLC must answer on fe's lo (CLC_ADDRESS, where the metadata
        # DNAT sends guests) and on host0 (the user's shell) alike.
        "BIND_ADDRESS": "0.0.0.0",
        "PUBLIC_HOST": FE_HOST_SIDE,
        "NC_URL": f"http://{NODE_WIRE}:{NC_PORT}",
        "NODES": f"http://{NODE_WIRE}:{NC_PORT}",
        "HYPERVISOR_URI": "qemu:///system",
        "HYPERVISOR_DOMAIN_TYPE": kind,
        "VNET_MODE": "MANAGED",
        "VNET_DRIVER": "linux",
        "VNET_LOCALIP": FE_WIRE,
        "VNET_PRIVINTERFACE": "wire",
        "VNET_PUBINTERFACE": "pub0",
        "VNET_PUBLICIPS": f"{public_first}-{public_last}",
        "VNET_METADATA": f"{CLC_ADDRESS}:8773",
        "SC_EXPORT": "nbd",
        # Polling slower than a TCG guest boots only delays `running`; keep it short.
        "NC_POLLING_FREQUENCY": "2",
        **(extra or {}),
    }
    return "".join(f'{k}="{v}"\n' for k, v in values.items())


class Lab:
    def __init__(self, root: Path = DEFAULT_DIR, guest_cache: Path = DEFAULT_GUEST_CACHE,
                 tag: str = TAG, conf: dict[str, str] | None = None) -> None:
        """`conf`: eucalyptus.conf keys over the lab's own (e.g. SC_BACKEND=rbd)."""
        self.root = root.absolute()
        self.extra_conf = dict(conf or {})
        self.guest_cache = guest_cache
        self.topology = Topology(tag)
        self.daemons = LibvirtDaemons(self.topology.enter("node"), self.root / "libvirt")

    @property
    def home(self) -> Path:
        return home_of(self.root)

    def _state(self) -> dict[str, object]:
        path = self.root / STATE
        return json.loads(path.read_text()) if path.is_file() else {}

    def _save(self, **values: object) -> None:
        state = {**self._state(), **values}
        (self.root / STATE).write_text(json.dumps(state, indent=1))

    def up(self, say: Callable[[str], None] = print) -> LabImages:
        if os.geteuid() != 0:
            raise PermissionError("the lab builds namespaces and runs libvirtd: run it as root")
        if self.topology.exists():
            raise RuntimeError(f"a lab tagged {self.topology.tag} is up: `eucasim lab down` first")
        # Gotcha: qemu:///system runs QEMU as libvirt-qemu, which must traverse every directory
        # above the instance disks and console log; a 0700 parent (pytest's tmp_path) gives
        # "Permission denied" on the console file at create(). Hence 0755 here and on the cache.
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        self._save(tag=self.topology.tag, pids=[], started=time.time())
        try:
            return self._up(say)
        except BaseException:
            self.down()
            raise

    def _up(self, say: Callable[[str], None]) -> LabImages:
        say("building the topology (fe, node, inet)")
        self.topology.build(host_link=True)
        # The user's shell and the node reach each other through fe (routing only, no NAT): the
        # image URLs the CLC hands out and the CC's event URL name fe's host0 address, and the
        # launcher's health check reaches the NC on the wire.
        sh("ip", "route", "add", f"{NODE_WIRE}/32", "via", FE_HOST_SIDE)
        self.topology.run("node", "ip", "route", "add", str(ip_interface(f"{HOST_SIDE}/30").network),
                          "via", FE_WIRE)
        say(f"building the tiny guest in {self.guest_cache} (first time only)")
        self.guest_cache.mkdir(parents=True, exist_ok=True)
        files = guest.build(self.guest_cache)
        kind = domain_type(files.kernel)
        say(f"domain type: {kind}")
        say("starting libvirtd and virtlogd in node")
        self.daemons.start(hide_kvm=kind == "qemu")
        home = self.home
        home.mkdir(parents=True, exist_ok=True)
        home.chmod(0o755)
        conf = home / "eucalyptus.conf"
        conf.write_text(_conf(kind, self.extra_conf))
        # The children find the file through EUCASIM_HOME; this process, whose environment
        # names no lab, reads it explicitly.
        config = launcher.ensure_home(load_config(EUCASIM_HOME=home, **read_conf_file(conf)))
        fe, node = self.topology.enter("fe"), self.topology.enter("node")
        specs = [
            launcher.ServiceSpec("clc", "clc.app:create_app", config.CLC_PORT, public=True, prefix=fe),
            launcher.ServiceSpec("walrus", "walrus.app:create_app", config.WALRUS_PORT, public=True, prefix=fe),
            launcher.ServiceSpec("sc", "sc.app:create_app", config.SC_PORT, prefix=fe),
            launcher.ServiceSpec("nc", "nc.app:create_app", NC_PORT, prefix=node,
                                 env={"PUBLIC_HOST": NODE_WIRE, "VNET_LOCALIP": NODE_WIRE}),
            launcher.ServiceSpec("cc", "cc.app:create_app", config.CC_PORT, prefix=fe),
        ]
        services = launcher.start(config, specs, on_started=lambda s: say(f"  started {s.spec.name} {s.url}"))
        self._save(pids=[s.process.pid for s in services])
        images = self.register(files)
        self._save(images=images.__dict__)
        return images

    def register(self, files: guest.GuestFiles) -> LabImages:
        """EKI, ERI and EMI through `eucasim image upload`: bundle → Walrus → RegisterImage."""
        eucasim = Path(sys.executable).parent / "eucasim"

        def upload(path: Path, *args: str) -> str:
            done = subprocess.run([str(eucasim), "image", "upload", str(path), "--bucket", BUCKET,
                                   "--home", str(self.home), *args], capture_output=True, text=True,
                                  timeout=300)
            if done.returncode != 0:
                raise RuntimeError(f"eucasim image upload {path.name} failed: {done.stderr.strip()}")
            return done.stdout.strip().splitlines()[-1]

        kernel = upload(files.kernel, "--kind", "kernel", "--name", "eucasim-lab-kernel")
        ramdisk = upload(files.ramdisk, "--kind", "ramdisk", "--name", "eucasim-lab-ramdisk")
        image = upload(files.root, "--kernel", kernel, "--ramdisk", ramdisk, "--name", "eucasim-lab")
        return LabImages(kernel, ramdisk, image)

    def banner(self) -> str:
        creds = credentials.read(self.home)
        images = self._state().get("images") or {}
        lines = ["The lab is up. Point the AWS CLI at it with:", "",
                 credentials.env_exports(creds).rstrip(), ""]
        if images:
            lines.append(f"then: aws ec2 run-instances --image-id {images['image_id']} "
                         "--instance-type m1.small")
        lines.append("a guest's elastic IP answers from the internet namespace: "
                     f"ip netns exec {self.topology.ns('inet')} wget -qO- http://<ip>/")
        lines.append("`eucasim lab down` removes it all.")
        return "\n".join(lines)

    def _stop_services(self) -> None:
        pids = [int(p) for p in self._state().get("pids", [])]  # type: ignore[union-attr]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        for pid in pids:
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _remove_domains(self) -> None:
        """The guests the NC started: libvirt keeps them beyond the NC's life, and the logs of
        every domain it ran outside the lab directory (/var/log/libvirt/qemu/<name>.log)."""
        if self.daemons.running():
            listed = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
                                    capture_output=True, text=True, timeout=30).stdout.split()
            for name in listed:
                if not name.startswith("i-"):
                    continue
                for verb in ("destroy", "undefine"):
                    subprocess.run(["virsh", "-c", "qemu:///system", verb, name], capture_output=True,
                                   timeout=30)
        # There is one libvirtd per machine, the lab's while it is up: every domain log written
        # since the lab started is of a guest that ran in it (terminated ones included).
        started = float(self._state().get("started", time.time()))  # type: ignore[arg-type]
        for log in Path("/var/log/libvirt/qemu").glob("*.log"):
            try:
                if log.stat().st_mtime >= started:
                    log.unlink()
            except FileNotFoundError:
                pass

    def down(self) -> None:
        """Every process, domain, namespace, device and file the lab made; safe to repeat."""
        self._stop_services()
        self._remove_domains()
        self.daemons.stop()
        # The namespaces take with them the CC's dnsmasq (killed first), its iptables rules,
        # the bridges, VXLAN ends and taps, and qemu-nbd.
        self.topology.close()
        sh("ip", "route", "del", f"{NODE_WIRE}/32", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


__all__ = ["DEFAULT_DIR", "DEFAULT_GUEST_CACHE", "Lab", "LabImages", "home_of"]
