"""Attaching and detaching EBS volumes on one node (services/messages/attach.py): the device
checked against the instance's disks, the disk added to or removed from its domain through
the hypervisor, the attachment recorded (nc.attachments) and the instance's report pushed
again, so the CC and the CLC see the volume in it.

All of it happens under the instance manager's lock, so a terminate, a reboot or another
attach of the same instance waits for it; an attach whose hypervisor call fails leaves no
record and no disk behind."""

from __future__ import annotations

import logging

from nc.domain_xml import BadDevice, VolumeDisk, disk_base, disk_targets, volume_target
from nc.hypervisor import Hypervisor, HypervisorError
from nc.instances import InstanceManager
from services.messages.attach import AttachDisk, DetachDisk, DiskAttachment
from services.tracing import TraceRecorder

log = logging.getLogger(__name__)


class VolumeFault(Exception):
    """An attach or detach refused: the HTTP status and the EC2 code the CC passes on."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class VolumeManager:
    def __init__(self, manager: InstanceManager, hypervisor: Hypervisor, recorder: TraceRecorder) -> None:
        self.manager = manager
        self.book = manager.book
        self.hypervisor = hypervisor
        self.recorder = recorder

    def _instance_state(self, instance_id: str) -> str:
        state = self.manager.state_of(instance_id)
        if state is None:
            raise VolumeFault(404, "InvalidInstanceID.NotFound",
                              f"The instance ID '{instance_id}' does not exist on node {self.manager.node_id}")
        return state

    def _check_device(self, instance_id: str, device: str, target: str) -> None:
        """A device the instance already uses (one of its own disks, sda1 included in sda, or
        another volume's) is refused."""
        in_use = set(disk_targets(self.hypervisor.domain_xml(instance_id)))
        in_use |= {a.target or "" for a in self.book.of(instance_id)}
        if any(disk_base(t) == disk_base(target) for t in in_use):
            raise VolumeFault(409, "InvalidParameterValue",
                              f"Invalid value '{device}' for unixDevice. Attachment point {device} is "
                              f"already in use by instance {instance_id}")

    def attach(self, instance_id: str, body: AttachDisk) -> DiskAttachment:
        try:
            target = volume_target(body.device)
        except BadDevice as exc:
            raise VolumeFault(400, "InvalidParameterValue", str(exc)) from None
        with self.manager.lock:
            state = self._instance_state(instance_id)
            known = self.book.get(instance_id, body.volume_id)
            if known is not None:
                return known.attachment          # idempotent per (instance, volume)
            if state != "running":
                raise VolumeFault(409, "IncorrectState",
                                  f"instance {instance_id} is {state}; a volume attaches to a running instance")
            self._check_device(instance_id, body.device, target)
            attachment = DiskAttachment(instance_id=instance_id, volume_id=body.volume_id, device=body.device,
                                        state="attaching", target=target)
            # Recorded first, so a crash in the hypervisor call leaves a row the next start
            # settles against the domain (reconcile), not a disk nobody knows of.
            self.book.put(attachment, body.source)
            try:
                self.hypervisor.attach_volume(instance_id, VolumeDisk(body.volume_id, target, body.source))
            except HypervisorError as exc:
                self.book.remove(instance_id, body.volume_id)
                self.recorder.record("error", f"attach {body.volume_id} to {instance_id} failed: {exc}")
                raise
            attached = self.book.set_state(instance_id, body.volume_id, "attached")
            # The teaching view shows the definition the disk went into (`eucasim trace`).
            self.recorder.record("called", f"attached {body.volume_id} ({body.source.uri}) to {instance_id} "
                                 f"as {target} on {self.hypervisor.uri}", instance_id=instance_id,
                                 domain_xml=self.hypervisor.domain_xml(instance_id))
            self.manager.changed(instance_id)
            return attached

    def detach(self, instance_id: str, volume_id: str, body: DetachDisk) -> DiskAttachment:
        with self.manager.lock:
            self._instance_state(instance_id)
            known = self.book.get(instance_id, volume_id)
            if known is None:
                return DiskAttachment(instance_id=instance_id, volume_id=volume_id, device="", state="detached")
            try:
                self.hypervisor.detach_volume(instance_id, volume_id)
            except HypervisorError as exc:
                if not body.force:
                    raise
                # Force: the user gives up on a clean detach (EC2's last resort); the record
                # goes, and the trace keeps what the hypervisor said.
                self.recorder.record("error", f"forced detach of {volume_id} from {instance_id}: {exc}")
            self.book.remove(instance_id, volume_id)
            self.recorder.record("called", f"detached {volume_id} from {instance_id} on {self.hypervisor.uri}",
                                 instance_id=instance_id, domain_xml=self._definition(instance_id))
            self.manager.changed(instance_id)
            return known.attachment.model_copy(update={"state": "detached"})

    def _definition(self, instance_id: str) -> str:
        try:
            return self.hypervisor.domain_xml(instance_id)
        except HypervisorError as exc:     # a forced detach from a domain that is gone
            return f"(no definition: {exc})"

    def reconcile(self) -> None:
        """At start: an attach cut short by a crash is settled by what the domain holds."""
        for entry in self.book.everything():
            if entry.attachment.state != "attaching":
                continue
            instance_id, volume_id = entry.attachment.instance_id, entry.attachment.volume_id
            try:
                there = volume_id in disk_targets(self.hypervisor.domain_xml(instance_id)).values()
            except HypervisorError:
                there = False
            if there:
                self.book.set_state(instance_id, volume_id, "attached")
            else:
                self.book.remove(instance_id, volume_id)
            log.info("attach of %s to %s left half-done: %s", volume_id, instance_id,
                     "kept (the domain has it)" if there else "dropped")
