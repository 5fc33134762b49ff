from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from clc.models.base import Base
from services.messages.node import VmType

# Eucalyptus's defaults (cpu, memory MB, disk GB), as euca-describe-instance-types showed them.
DEFAULT_VM_TYPES: dict[str, tuple[int, int, int]] = {
    "m1.small": (1, 256, 5),
    "c1.medium": (1, 256, 5),
    "m1.large": (2, 512, 10),
    "m1.xlarge": (2, 1024, 10),
    "c1.xlarge": (4, 2048, 20),
}


class VmTypeRow(Base):
    __tablename__ = "vm_types"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    cpu: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer)

    def spec(self) -> VmType:
        """The VM type as messages to the CC and NCs carry it."""
        return VmType(name=self.name, cpu=self.cpu, memory_mb=self.memory_mb, disk_gb=self.disk_gb)
