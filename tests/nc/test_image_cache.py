"""The image cache: streamed from a real HTTP server, checksum-checked, bounded by
NC_CACHE_SIZE with LRU eviction that never touches an image in use; and a launch held up in
the download so terminate lands while the instance is still pending."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi import Depends, FastAPI, HTTPException, Response

from nc.image_cache import ImageCache, ImageFetchError, image_key
from services.internal import InternalAuth
from services.messages.node import ImageRef, InstanceReport
from tests.nc.conftest import Driver, SECRET, Node, run_request, start_node, wait_for
from tests.support.servers import running

MIB = 1024 * 1024


@dataclass
class ImageServer:
    url: str
    blobs: dict[str, bytes] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    gate: threading.Event = field(default_factory=threading.Event)

    def ref(self, name: str, *, checksum: str | None = None, slow: bool = False) -> ImageRef:
        blob = self.blobs[name]
        return ImageRef(image_id=name, url=f"{self.url}/{'slow' if slow else 'images'}/{name}",
                        checksum=checksum if checksum is not None else "sha256:" + hashlib.sha256(blob).hexdigest(),
                        size_bytes=len(blob))


@pytest.fixture
def images() -> Iterator[ImageServer]:
    app = FastAPI()
    server = ImageServer(url="")

    @app.get("/images/{name}")
    def image(name: str) -> Response:
        if name not in server.blobs:
            raise HTTPException(404)
        server.hits[name] = server.hits.get(name, 0) + 1
        return Response(server.blobs[name], media_type="application/octet-stream")

    @app.get("/internal/images/{bucket}/{name}", dependencies=[Depends(InternalAuth(SECRET))])
    def signed(bucket: str, name: str) -> Response:
        return image(name)

    @app.get("/slow/{name}")
    def slow(name: str) -> Response:
        server.gate.wait(20)
        return image(name)

    with running(app) as url:
        server.url = url
        yield server
        server.gate.set()


def test_download_is_cached_and_checked(tmp_path: Path, images: ImageServer) -> None:
    images.blobs["emi-00000a01"] = b"root filesystem " * 1000
    cache = ImageCache(tmp_path / "cache", limit_mb=10)
    ref = images.ref("emi-00000a01")
    first = cache.ensure(ref)
    assert first.read_bytes() == images.blobs["emi-00000a01"]
    assert cache.ensure(ref) == first and images.hits["emi-00000a01"] == 1

    # Survives a restart of the NC: the directory is the index.
    assert [e.key for e in ImageCache(tmp_path / "cache", limit_mb=10).entries()] == [image_key(ref)]

    images.blobs["emi-00000a02"] = b"tampered"
    with pytest.raises(ImageFetchError, match="checksum"):
        cache.ensure(images.ref("emi-00000a02", checksum="sha256:" + "0" * 64))
    with pytest.raises(ImageFetchError, match="image download failed: emi-00000a03 .*HTTP 404"):
        cache.ensure(ImageRef(image_id="emi-00000a03", url=f"{images.url}/images/emi-00000a03"))
    assert not list((tmp_path / "cache").glob("*.part"))


def test_walrus_internal_image_route_gets_a_signed_call(tmp_path: Path, images: ImageServer) -> None:
    images.blobs["emi-00000a04"] = b"decrypted bundle"
    ref = images.ref("emi-00000a04").model_copy(
        update={"url": f"{images.url}/internal/images/my%20bucket/emi-00000a04"})
    assert ImageCache(tmp_path / "signed", 10, secret=SECRET).ensure(ref).read_bytes() == b"decrypted bundle"
    with pytest.raises(ImageFetchError, match="HTTP 403"):
        ImageCache(tmp_path / "unsigned", 10).ensure(ref)


def test_least_recently_used_goes_first_and_never_one_in_use(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "cache", limit_mb=10)
    one, two, three, four = (ImageRef(image_id=f"emi-0000000{n}", size_bytes=4 * MIB) for n in range(1, 5))
    cache.ensure(one)
    cache.ensure(two)
    cache.ensure(one)                       # one is now more recent than two
    cache.ensure(three)                     # 12 MiB > 10: the least recently used (two) goes
    assert [e.key for e in cache.entries()] == [image_key(one), image_key(three)]

    # one is the least recently used now, but an instance uses it: three goes instead.
    cache.ensure(four, in_use={image_key(one)})
    assert {e.key for e in cache.entries()} == {image_key(one), image_key(four)}
    assert cache.total_bytes() <= 10 * MIB

    # Only images in use left: the cache runs over its bound rather than break an instance.
    five = ImageRef(image_id="emi-00000005", size_bytes=4 * MIB)
    cache.ensure(five, in_use={image_key(one), image_key(four)})
    assert {e.key for e in cache.entries()} == {image_key(one), image_key(four), image_key(five)}


def test_cache_of_a_node_never_evicts_the_image_of_a_live_instance(tmp_path: Path, driver: Driver) -> None:
    with start_node(tmp_path / "n", driver, NC_CACHE_SIZE=10) as node:
        old = run_request(image=ImageRef(image_id="emi-0000001d", size_bytes=6 * MIB))
        node.run(old)
        node.wait_state(old.instance_id, "running")
        new = run_request(image=ImageRef(image_id="emi-0000002d", size_bytes=6 * MIB))
        node.run(new)
        node.wait_state(new.instance_id, "running")
        keys = {e.key for e in node.runtime.cache.entries()}
        assert image_key(old.image) in keys and image_key(new.image) in keys

        # Once the first instance is gone its image may go to make room.
        node.call("POST", f"/internal/instances/{old.instance_id}/terminate")
        node.wait_state(old.instance_id, "terminated")
        third = run_request(image=ImageRef(image_id="emi-0000003d", size_bytes=3 * MIB))
        node.run(third)
        node.wait_state(third.instance_id, "running")
        keys = {e.key for e in node.runtime.cache.entries()}
        assert image_key(old.image) not in keys
        assert {image_key(new.image), image_key(third.image)} <= keys


def test_terminate_during_a_slow_download(node: Node, images: ImageServer) -> None:
    images.blobs["emi-00000510"] = b"x" * 4096
    request = run_request(image=images.ref("emi-00000510", slow=True))
    assert node.run(request).state == "pending"
    report = node.call("POST", f"/internal/instances/{request.instance_id}/terminate", response=InstanceReport)
    assert report.state == "shutting-down"
    images.gate.set()
    final = node.wait_state(request.instance_id, "terminated")
    assert final.reason is not None and final.reason.code == "Client.UserInitiatedShutdown"
    assert node.runtime.hypervisor.state(request.instance_id) == "absent"
    assert wait_for(lambda: not (node.home / "instances" / request.account_id / request.instance_id).exists(),
                    what="instance files removed")


def test_real_download_feeds_a_launch(node: Node, images: ImageServer) -> None:
    images.blobs["emi-00000520"] = b"\x00" * MIB + b"boot sector"
    request = run_request(image=images.ref("emi-00000520"))
    node.run(request)
    node.wait_state(request.instance_id, "running")
    cached = node.runtime.cache.entries()[0].path
    assert cached.read_bytes() == images.blobs["emi-00000520"]
