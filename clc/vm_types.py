"""The cloud's VM types (instance types) as the CLC keeps them: listing, looking one up, and
the administrator's changes. Handlers (the admin API, DescribeInstanceTypes,
DescribeAvailabilityZones verbose, RunInstances) read them through here."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from clc.models.vmtypes import VmTypeRow


def by_size(db: Session) -> list[VmTypeRow]:
    """Smallest first (cores, then memory), as euca-describe-instance-types listed them."""
    return list(db.scalars(select(VmTypeRow).order_by(VmTypeRow.cpu, VmTypeRow.memory_mb,
                                                      VmTypeRow.name)))


def named(db: Session, name: str) -> VmTypeRow | None:
    return db.get(VmTypeRow, name)


def put(db: Session, name: str, cpu: int, memory_mb: int, disk_gb: int) -> VmTypeRow:
    """Create the VM type or change its size (instances already running keep theirs)."""
    row = db.get(VmTypeRow, name) or VmTypeRow(name=name)
    row.cpu, row.memory_mb, row.disk_gb = cpu, memory_mb, disk_gb
    db.add(row)
    return row
