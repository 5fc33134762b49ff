"""Who is looking at the console: sign-in with an access key and its secret, checked against
the CLC's key store (clc/accounts.py, as the EC2 endpoint's signature check uses it), and the
signed cookie that keeps the sign-in between pages.

The cookie names the access key and a digest of its secret, signed with the cloud secret; every
request looks the key up again, so a key made inactive (or re-created with another secret)
ends its sessions at once."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from clc import accounts
from services.db import Database
from services.messages.identity import AccessKeyInfo

COOKIE = "eucasim_console"
COOKIE_PATH = "/console"
MAX_AGE_S = 12 * 3600
_SALT = "eucasim-console-session"


@dataclass(frozen=True)
class Viewer:
    """The signed-in person: one account, or the cloud admin who sees every account."""
    access_key: str
    account_id: str
    account_name: str
    user_name: str
    is_admin: bool

    @classmethod
    def of(cls, info: AccessKeyInfo) -> Viewer:
        return cls(access_key=info.access_key, account_id=info.account_id,
                   account_name=info.account_name, user_name=info.user_name, is_admin=info.is_admin)


def _secret_digest(secret_key: str) -> str:
    return hashlib.sha256(secret_key.encode()).hexdigest()[:32]


class Sessions:
    def __init__(self, db: Database, cloud_secret: str) -> None:
        self._db = db
        self._signer = URLSafeTimedSerializer(cloud_secret, salt=_SALT)

    def _active_key(self, access_key: str) -> AccessKeyInfo | None:
        with self._db.session() as session:
            info = accounts.key_info(session, access_key)
        return info if info is not None and info.active else None

    def sign_in(self, access_key: str, secret_key: str) -> tuple[Viewer, str] | None:
        """The viewer and the cookie value, or None when the key is unknown, inactive or the
        secret is not its own (one answer for all three: the page says no more than EC2 does)."""
        info = self._active_key(access_key.strip())
        if info is None or not hmac.compare_digest(info.secret_key.encode(), secret_key.strip().encode()):
            return None
        cookie = self._signer.dumps({"k": info.access_key, "s": _secret_digest(info.secret_key)})
        return Viewer.of(info), cookie

    def viewer(self, cookie: str | None) -> Viewer | None:
        if not cookie:
            return None
        try:
            data = self._signer.loads(cookie, max_age=MAX_AGE_S)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("k"), str):
            return None
        info = self._active_key(data["k"])
        if info is None or not hmac.compare_digest(_secret_digest(info.secret_key), str(data.get("s"))):
            return None
        return Viewer.of(info)
