"""The NC's record of the EBS volumes attached to one node's instances: rows in the process's
database (nc.models.AttachmentRecord) and, since every InstanceReport lists them, a copy in
memory loaded on first use, so a report costs no query. Persistence only; what an attach or
a detach does is nc.volumes."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import delete, select

from nc.domain_xml import VolumeDisk
from nc.models import AttachmentRecord
from services.clock import utcnow
from services.db import Database
from services.messages.attach import AttachmentState, DiskAttachment, DiskSource


@dataclass(frozen=True)
class Attached:
    attachment: DiskAttachment
    source: DiskSource

    @property
    def disk(self) -> VolumeDisk:
        return VolumeDisk(self.attachment.volume_id, self.attachment.target or "", self.source)


class AttachmentBook:
    def __init__(self, db: Database, prefix: str) -> None:
        self.db = db
        self.prefix = prefix
        self._lock = threading.Lock()
        self._by_instance: dict[str, dict[str, Attached]] | None = None

    def _loaded(self) -> dict[str, dict[str, Attached]]:
        if self._by_instance is None:
            loaded: dict[str, dict[str, Attached]] = {}
            with self.db.session() as session:
                for row in session.scalars(select(AttachmentRecord).where(AttachmentRecord.prefix == self.prefix)
                                           .order_by(AttachmentRecord.attached_at)):
                    loaded.setdefault(row.instance_id, {})[row.volume_id] = _attached(row)
            self._by_instance = loaded
        return self._by_instance

    def of(self, instance_id: str) -> list[DiskAttachment]:
        with self._lock:
            return [a.attachment for a in self._loaded().get(instance_id, {}).values()]

    def entries(self, instance_id: str) -> list[Attached]:
        with self._lock:
            return list(self._loaded().get(instance_id, {}).values())

    def everything(self) -> list[Attached]:
        with self._lock:
            return [a for volumes in self._loaded().values() for a in volumes.values()]

    def disks(self, instance_id: str) -> tuple[VolumeDisk, ...]:
        """The volumes to put back into the instance's domain when it is defined again."""
        return tuple(a.disk for a in self.entries(instance_id) if a.attachment.state == "attached")

    def get(self, instance_id: str, volume_id: str) -> Attached | None:
        with self._lock:
            return self._loaded().get(instance_id, {}).get(volume_id)

    def put(self, attachment: DiskAttachment, source: DiskSource) -> None:
        with self._lock, self.db.session() as session:
            loaded = self._loaded()
            row = session.get(AttachmentRecord, (attachment.instance_id, attachment.volume_id))
            if row is None:
                row = AttachmentRecord(instance_id=attachment.instance_id, volume_id=attachment.volume_id,
                                       prefix=self.prefix, attached_at=utcnow())
                session.add(row)
            row.device, row.target, row.state = attachment.device, attachment.target or "", attachment.state
            row.source_json = source.model_dump_json()
            loaded.setdefault(attachment.instance_id, {})[attachment.volume_id] = Attached(attachment, source)

    def set_state(self, instance_id: str, volume_id: str, state: AttachmentState) -> DiskAttachment:
        entry = self.get(instance_id, volume_id)
        assert entry is not None, f"{volume_id} is not recorded on {instance_id}"
        changed = entry.attachment.model_copy(update={"state": state})
        self.put(changed, entry.source)
        return changed

    def remove(self, instance_id: str, volume_id: str) -> None:
        with self._lock, self.db.session() as session:
            session.execute(delete(AttachmentRecord).where(AttachmentRecord.instance_id == instance_id,
                                                           AttachmentRecord.volume_id == volume_id))
            volumes = self._loaded().get(instance_id, {})
            volumes.pop(volume_id, None)
            if not volumes:
                self._loaded().pop(instance_id, None)

    def clear(self, instance_id: str) -> list[DiskAttachment]:
        """Forget every volume of the instance (its domain is gone); returns what was there."""
        with self._lock:
            if instance_id not in self._loaded():
                return []
            with self.db.session() as session:
                session.execute(delete(AttachmentRecord).where(AttachmentRecord.instance_id == instance_id))
            gone = self._loaded().pop(instance_id)
            return [a.attachment for a in gone.values()]


def _attached(row: AttachmentRecord) -> Attached:
    return Attached(DiskAttachment(instance_id=row.instance_id, volume_id=row.volume_id, device=row.device,
                                   state=row.state, target=row.target or None),  # type: ignore[arg-type]
                    DiskSource.model_validate_json(row.source_json))
