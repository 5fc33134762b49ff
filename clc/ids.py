"""EC2-style resource ids (the rule lives in services.ids, shared with every service)."""

from services.ids import new_id

__all__ = ["new_id"]
