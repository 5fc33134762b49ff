"""A real CLC and a real Walrus sharing one EUCASIM_HOME (so one cloud CA), Walrus asking the
CLC for access keys, and Walrus's image routes mounted as walrus/app.py will mount them."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import clc.api.images  # noqa: F401  (registers the image actions)
from services import pki
from services.bundles import BuiltBundle, build_bundle
from services.bundles.upload import s3_client, upload_bundle
from services.db import Database
from services.identity import ClcKeyDirectory
from services.internal import InternalClient
from services.messages.identity import AccessKeyInfo
from tests.support.clc import SECRET, RunningClc, running_clc
from tests.support.servers import listen, port_of, running

MIB = 1024 * 1024
_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_names)}"


def walrus_app(config: Any, clc_url: str) -> Any:
    from walrus.app import create_app
    from walrus.bundles import images_router

    app = create_app(config, keys=ClcKeyDirectory(InternalClient(clc_url, SECRET), ttl=1.0))
    before = len(app.router.routes)
    app.include_router(images_router(app.state.walrus, app.state.internal_auth))
    # walrus/app.py will include the router before its catch-all S3 route; here it is added
    # after, so move it to the front.
    added = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[0:0] = added
    return app


@dataclass
class ImageCloud:
    clc: RunningClc
    walrus_url: str
    home: Path
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)

    @property
    def admin(self) -> AccessKeyInfo:
        return self.clc.admin

    def _client(self, service: str, key: AccessKeyInfo | None, make: Any) -> Any:
        key = key or self.admin
        # boto3 clients are slow to build and safe to reuse within one thread.
        if (service, key.access_key) not in self._clients:
            self._clients[(service, key.access_key)] = make(key)
        return self._clients[(service, key.access_key)]

    def ec2(self, key: AccessKeyInfo | None = None) -> Any:
        return self._client("ec2", key, self.clc.ec2)

    def s3(self, key: AccessKeyInfo | None = None) -> Any:
        return self._client("s3", key, lambda k: s3_client(self.walrus_url, k))

    def db(self) -> Database:
        return Database(self.clc.config.database_url("clc"))

    def new_account(self, name: str) -> AccessKeyInfo:
        key = self.clc.new_account(unique(name))
        pki.ensure_user_certificate(self.home, key.account_id, key.user_name)
        return key

    def bundle(self, folder: Path, *, key: AccessKeyInfo | None = None, data: bytes | None = None,
               kind: str = "machine", name: str | None = None, **kwargs: Any) -> BuiltBundle:
        key = key or self.admin
        user = pki.ensure_user_certificate(self.home, key.account_id, key.user_name)
        raw = folder / f"{name or unique('img')}.img"
        folder.mkdir(parents=True, exist_ok=True)
        raw.write_bytes(data if data is not None else os.urandom(64 * 1024))
        return build_bundle(raw, folder / "bundle", account_id=key.account_id,
                            cloud_cert=pki.ensure_cloud_ca(self.home).certificate(),
                            user_cert=user.certificate(), user_key=user.private_key(), kind=kind,
                            name=name, **kwargs)

    def upload(self, built: BuiltBundle, *, key: AccessKeyInfo | None = None,
               bucket: str | None = None) -> str:
        return upload_bundle(self.s3(key), built, bucket or unique("bundles"))

    def register(self, folder: Path, *, key: AccessKeyInfo | None = None, kind: str = "machine",
                 data: bytes | None = None, **params: Any) -> str:
        built = self.bundle(folder, key=key, kind=kind, data=data)
        location = self.upload(built, key=key)
        params.setdefault("Name", unique(kind))
        return self.ec2(key).register_image(ImageLocation=location, **params)["ImageId"]  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def cloud(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageCloud]:
    """The image cloud; Walrus keeps its bodies in files unless a test module asks for each
    backend (`pytest.mark.parametrize("cloud", BACKENDS, indirect=True)`)."""
    from tests.support.blob_backends import blob_backend

    backend_name = getattr(request, "param", "file")
    home = tmp_path_factory.mktemp(f"images-cloud-{backend_name}")
    backend = blob_backend(request, backend_name, home)
    walrus_socket = listen()  # Walrus's URL is known to the CLC before either starts
    with running_clc(home, WALRUS_URL=f"http://127.0.0.1:{port_of(walrus_socket)}") as clc:
        config = clc.config.model_copy(update=backend.env)
        with running(walrus_app(config, clc.url), walrus_socket) as walrus_url:
            yield ImageCloud(clc, walrus_url, home)
