"""Who an access key belongs to: the CLC owns accounts and keys; Walrus and the other public
front ends ask it."""

from __future__ import annotations

from pydantic import BaseModel


class AccessKeyInfo(BaseModel):
    access_key: str
    secret_key: str
    account_id: str  # 12 digits, as AWS account ids
    account_name: str
    user_name: str
    is_admin: bool = False
    active: bool = True
