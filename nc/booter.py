"""The steps that turn a RunInstance into a running domain, and back: images from the cache,
disks in the instance store, the domain defined and started on the hypervisor; torn down in
reverse. (The CLC and the CC each have a `Launcher`; this is the node's part: it boots.)

Each step raises an error whose message is fit for a StateReason; the instance manager decides
what the failure means for the instance's state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nc.domain_xml import KERNEL_CMDLINE, DomainSpec, VolumeDisk, instance_disks
from nc.hypervisor import Hypervisor, HypervisorError, tail_of
from nc.node_network import NodeNetwork
from nc.image_cache import ImageCache, image_key
from nc.instance_store import InstanceDisks, InstanceStore
from nc.journal import ConsoleJournal
from services.clock import utcnow
from services.messages.node import BootVolume, RunInstance, instance_mac
from services.tracing import TraceRecorder


class LaunchCancelled(Exception):
    """The instance was terminated while it was being prepared."""


@dataclass(frozen=True)
class ImagePaths:
    image: Path | None      # None: the instance boots from its EBS root volume
    kernel: Path | None
    ramdisk: Path | None


def ebs_root(request: RunInstance) -> BootVolume | None:
    return next((v for v in request.volumes if v.root), None)


def image_keys(request: RunInstance) -> set[str]:
    machine = None if ebs_root(request) is not None else request.image
    return {image_key(ref) for ref in (machine, request.kernel, request.ramdisk) if ref is not None}


def _now() -> str:
    return utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")


class InstanceBooter:
    def __init__(self, node_id: str, hypervisor: Hypervisor, store: InstanceStore, cache: ImageCache,
                 journal: ConsoleJournal, recorder: TraceRecorder, in_use: Callable[[], set[str]],
                 network: NodeNetwork | None = None,
                 volumes: Callable[[str], tuple[VolumeDisk, ...]] = lambda _instance_id: ()) -> None:
        self.node_id = node_id
        self.network = network
        self.hypervisor = hypervisor
        self.store = store
        self.cache = cache
        self.journal = journal
        self.recorder = recorder
        self._in_use = in_use
        # The EBS volumes attached to an instance, put back when its domain is defined again.
        self._volumes = volumes

    def _console(self, request: RunInstance) -> Path:
        return self.store.console_log(request.account_id, request.instance_id)

    def note(self, request: RunInstance, *lines: str) -> None:
        self.journal.note(self._console(request), *lines)

    def console(self, request: RunInstance, limit: int) -> bytes:
        """The end of the instance's console: the domain's, or, with no domain (failed,
        terminated, not defined yet), the file, which may still tell why."""
        try:
            return self.hypervisor.console_tail(request.instance_id, limit)
        except HypervisorError:
            return tail_of(self._console(request), limit)

    def remove_files(self, account_id: str, instance_id: str) -> None:
        self.store.remove(account_id, instance_id)

    def fetch_images(self, request: RunInstance) -> ImagePaths:
        in_use = self._in_use       # asked only if a fetch must make room
        root = ebs_root(request)
        image = self.cache.ensure(request.image, in_use) if root is None else None
        kernel = self.cache.ensure(request.kernel, in_use) if request.kernel else None
        ramdisk = self.cache.ensure(request.ramdisk, in_use) if request.ramdisk else None
        fetched = ", ".join(ref.image_id for ref in (None if root else request.image, request.kernel,
                                                        request.ramdisk) if ref) or "none"
        if root is not None:
            self.note(request, f"root device {root.device} is EBS volume {root.volume_id} "
                               f"({root.source.uri}); no image to fetch for it")
        self.note(request, f"images ready in the node's cache: {fetched}")
        return ImagePaths(image, kernel, ramdisk)

    def make_disks(self, request: RunInstance, images: ImagePaths) -> InstanceDisks:
        disks = self.store.create(request.account_id, request.instance_id, images.image,
                                  request.vm.disk_gb, images.kernel, images.ramdisk)
        if images.image is None:
            how = "the EBS volume (nothing of it in the instance store)"
        elif disks.root_format == "qcow2":
            how = "a qcow2 overlay backed by the cached image"
        else:
            how = "a sparse copy of the cached image"
        self.note(request, f"instance store {disks.directory}: root disk is {how}", *disks.describe())
        return disks

    def spec(self, request: RunInstance, disks: InstanceDisks) -> DomainSpec:
        # The volumes in the node's book (those the instance booted with and those attached
        # since); an EBS root among them takes the root disk's place.
        volumes, root = self._volumes(request.instance_id), ebs_root(request)
        return DomainSpec(
            name=request.instance_id, domain_type=self.hypervisor.domain_type,
            vcpus=request.vm.cpu, memory_mb=request.vm.memory_mb,
            disks=instance_disks(disks.root, disks.root_format, disks.ephemeral, disks.swap),
            console_log=disks.console_log,
            mac=request.network.mac or instance_mac(request.instance_id),
            bridge=request.network.bridge,
            kernel=disks.kernel, ramdisk=disks.ramdisk,
            cmdline=KERNEL_CMDLINE if disks.kernel else None,
            metadata={"node": self.node_id, "account": request.account_id,
                      "reservation": request.reservation_id, "request": request.model_dump_json()},
            volumes=tuple(v for v in volumes if root is None or v.volume_id != root.volume_id),
            root_volume=next((v for v in volumes if root is not None and v.volume_id == root.volume_id),
                             None))

    def define_and_start(self, request: RunInstance, disks: InstanceDisks, request_id: str | None,
                         proceed: Callable[[], bool] = lambda: True) -> None:
        spec = self.spec(request, disks)
        if self.network is None:
            self._define_and_start(request, spec, request_id, proceed)
            return
        built = self.network.prepare(request.network)
        if built:
            self.note(request, f"network: {built}")
        try:
            self._define_and_start(request, spec, request_id, proceed)
        finally:
            self.network.started(request.network)

    def _define_and_start(self, request: RunInstance, spec: DomainSpec, request_id: str | None,
                          proceed: Callable[[], bool]) -> None:
        xml = self.hypervisor.define(spec)
        self.recorder.record("called", f"libvirt define {request.instance_id} on {self.hypervisor.uri}",
                             request_id=request_id, domain_xml=xml)
        self.note(request, f"domain {request.instance_id} defined on {self.hypervisor.uri} "
                           f"({spec.vcpus} vCPU, {spec.memory_mb} MiB, NIC {spec.mac} on bridge {spec.bridge}"
                           + (f", kernel {spec.kernel}" if spec.kernel else "") + ")")
        if not proceed():
            raise LaunchCancelled(request.instance_id)
        self.hypervisor.start(request.instance_id)
        self.recorder.record("called", f"libvirt start {request.instance_id}", request_id=request_id)
        self.note(request, f"domain {request.instance_id} started at {_now()}")

    def boot(self, request: RunInstance, request_id: str | None, proceed: Callable[[], bool]) -> None:
        """The whole launch; `proceed()` is asked between steps so a terminate can stop it."""
        self.note(request, f"RunInstance {request.instance_id} ({request.vm.name}, image "
                           f"{request.image.image_id}) accepted on node {self.node_id}")
        images = self.fetch_images(request)
        if not proceed():
            raise LaunchCancelled(request.instance_id)
        disks = self.make_disks(request, images)
        if not proceed():
            raise LaunchCancelled(request.instance_id)
        self.define_and_start(request, disks, request_id, proceed)

    def restart(self, request: RunInstance, why: str, proceed: Callable[[], bool]) -> None:
        """Bring back a running instance whose domain is gone (host reboot): reuse its disks
        when they survived, else prepare them again."""
        self.note(request, why)
        disks = self.store.paths(request.account_id, request.instance_id)
        root_there = ebs_root(request) is not None or disks.root.exists()
        if not (root_there and disks.ephemeral.exists() and disks.swap.exists()):
            disks = self.make_disks(request, self.fetch_images(request))
        if not proceed():
            raise LaunchCancelled(request.instance_id)
        self.define_and_start(request, disks, None, proceed)

    def reboot(self, request: RunInstance) -> None:
        self.hypervisor.reboot(request.instance_id)
        self.note(request, f"domain {request.instance_id} rebooted at {_now()}")
        self.recorder.record("called", f"libvirt reboot {request.instance_id}")

    def teardown(self, request: RunInstance, keep_console: bool) -> None:
        """Destroy and undefine the domain and delete the instance's files (all of them, or all
        but console.log when the instance failed and its console may explain why)."""
        self.hypervisor.destroy(request.instance_id)
        self.hypervisor.undefine(request.instance_id)
        if self.network is not None:
            released = self.network.release(request.network)
            if released:
                self.note(request, f"network: removed {released}")
        if keep_console:
            disks = self.store.paths(request.account_id, request.instance_id)
            for path in (disks.root, disks.ephemeral, disks.swap, disks.kernel, disks.ramdisk,
                         disks.directory / "root.img", disks.directory / "root.qcow2"):
                if path is not None:
                    path.unlink(missing_ok=True)
            self.note(request, f"instance files removed at {_now()}")
        else:
            self.store.remove(request.account_id, request.instance_id)
