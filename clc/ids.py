"""EC2-style resource ids."""

from __future__ import annotations

import secrets


def new_id(prefix: str, digits: int = 8) -> str:
    """`sg-1a2b3c4d`: Eucalyptus used 8 hex digits; newer resources take AWS's 17."""
    return f"{prefix}-{secrets.token_hex((digits + 1) // 2)[:digits]}"
