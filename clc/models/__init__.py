"""The CLC's tables: what users asked for. One module per resource family; importing this
package registers every table on `Base.metadata` (Alembic's env needs them all)."""

from clc.models.base import Base
from clc.models import accounts, vmtypes  # noqa: F401  (register tables)
from clc.models import (addresses, images, instances, properties, resources,  # noqa: F401
                        volumes, zone_services)

__all__ = ["Base"]
