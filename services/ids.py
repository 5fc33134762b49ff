"""EC2-style resource ids: how they are made and the one pattern each kind must match."""

from __future__ import annotations

import re
import secrets

INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8}([0-9a-f]{9})?$")
# Eucalyptus's emi/eki/eri and AWS's ami/aki/ari, with 8 (Eucalyptus) or 17 (AWS) hex digits.
IMAGE_ID = re.compile(r"^(emi|ami|eki|aki|eri|ari)-[0-9a-f]{8}([0-9a-f]{9})?$")
VOLUME_ID = re.compile(r"^vol-[0-9a-f]{8}([0-9a-f]{9})?$")
SNAPSHOT_ID = re.compile(r"^snap-[0-9a-f]{8}([0-9a-f]{9})?$")


def new_id(prefix: str, digits: int = 8) -> str:
    """`sg-1a2b3c4d`: Eucalyptus used 8 hex digits; newer resources take AWS's 17."""
    return f"{prefix}-{secrets.token_hex((digits + 1) // 2)[:digits]}"
