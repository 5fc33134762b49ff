"""Attaching an EBS volume to a running instance: what the CLC asks the instance's CC, and the
CC the instance's NC (the same bodies on both hops). The CLC has the zone's SC export the
volume to the instance's node first and passes on where the node finds it (`DiskSource`), so
the NC never needs to know the SC.

Routes (on the CC, and the same paths on the NC; signed):
  POST /internal/instances/{instance_id}/volumes                     AttachDisk -> DiskAttachment
       (idempotent per (instance, volume); 409 InvalidParameterValue for a device the instance
        already uses; 404 InvalidInstanceID.NotFound)
  POST /internal/instances/{instance_id}/volumes/{volume_id}/detach  DetachDisk -> DiskAttachment
       (detaching what is not attached answers state "detached")
On libvirt's test driver the NC records the disk in the domain definition (the test driver
cannot hot-plug); on qemu:///system it hot-plugs it live (LIVE|CONFIG). Every InstanceReport
lists the instance's attachments, so the CLC's reconcile sees them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

ATTACH_ROUTE = "/internal/instances/{instance_id}/volumes"
DETACH_ROUTE = "/internal/instances/{instance_id}/volumes/{volume_id}/detach"

AttachmentState = Literal["attaching", "attached", "detaching", "detached"]


class DiskSource(BaseModel):
    """Where a node finds a volume's bytes, as the SC exported them."""
    driver: Literal["local", "nbd", "rbd"]
    path: str | None = None         # local: the file
    host: str | None = None         # nbd: where qemu-nbd listens; rbd: a Ceph monitor
    port: int | None = None
    export_name: str | None = None  # rbd: pool/image
    user: str | None = None         # rbd: the Ceph user; the node holds its key (NC_CEPH_KEYRING)
    uri: str                        # file:///…, nbd://host:port/name or rbd://mon:port/pool/image


class AttachDisk(BaseModel):
    volume_id: str
    device: str                     # as the user named it: /dev/sdc (or sdc, xvdc)
    source: DiskSource


class DetachDisk(BaseModel):
    force: bool = False


class DiskAttachment(BaseModel):
    instance_id: str
    volume_id: str
    device: str
    state: AttachmentState
    target: str | None = None       # the libvirt target the guest's disk got (sdc, vdb)
    reason: str | None = None
