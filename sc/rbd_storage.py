"""The `rbd` backend of sc/storage.py: each volume an RBD image in SC_CEPH_POOL, each snapshot's
point in time an RBD snapshot of it (a map change in the monitors: milliseconds, whatever the
volume's size, and truly point in time for a guest writing through librbd).

Why the `rbd` command and not librbd's Python binding: Debian's `python3-rbd` is compiled for
Debian's /usr/bin/python3, while the SC runs in a virtualenv of its own interpreter (pyenv's
3.11.7 here, without system site-packages) — loading that extension into another build of
Python works by luck, not by contract, and breaks at the next minor version. The `rbd` CLI is
Ceph's stable interface across releases (`--format json` for answers), and its export-diff /
import-diff streams move the data without any binding:

- upload: `rbd export-diff pool/image@snap -` writes only the allocated extents of the
  snapshot, in order (holes never cross the pipe), read by sc/rbd_stream.py;
- restore: the same stream, written by sc/rbd_stream.py in whatever order the parts arrive,
  into `rbd import-diff - pool/image`.

The snapshot stays in the pool after its upload (Walrus holds the portable copy): a volume
made from it is then a copy-on-write clone (protect + clone), available at once. Deleting the
snapshot, or its volume, flattens any clone still reading through it first."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sc.rbd_stream import DIFF_HEADER, DiffReader, DiffWriter, RbdError
from sc.storage import GIB, DataReader, DataWriter, Frozen, StorageFull

log = logging.getLogger("sc.rbd")
PREFIX = "rbd:"
_ENOENT = "(2) No such file or directory"
_ENOSPC = "(28) No space left on device"


def image_spec(locator: str) -> str:
    """`rbd:pool/image` -> `pool/image` (also for a handle: `pool/image@snap`)."""
    if not locator.startswith(PREFIX):
        raise ValueError(f"{locator!r} is not an RBD volume (expected rbd:pool/image)")
    return locator[len(PREFIX):]


def split_handle(handle: str) -> tuple[str, str]:
    """`rbd:pool/image@snap` -> (`pool/image`, `snap`)."""
    image, _, snap = image_spec(handle).partition("@")
    if not snap:
        raise ValueError(f"{handle!r} names no snapshot")
    return image, snap


def pick_monitor(mon_host: str) -> tuple[str, int]:
    """`v2:10.0.0.1:3300,v1:10.0.0.1:6789` (or `[v2:…,v1:…]`, `10.0.0.1`, `a:6789 b:6789`) ->
    a v1 (host, port) if any, else the first address (6789 when it names no port)."""
    entries = [e for e in re.split(r"[\s,;\[\]]+", mon_host.strip()) if e]
    if not entries:
        raise RbdError("mon_host is empty")
    chosen = next((e for e in entries if e.startswith("v1:")), entries[0])
    address = chosen.split(":", 1)[1] if chosen.startswith(("v1:", "v2:")) else chosen
    host, _, port = address.rpartition(":") if address.count(":") == 1 else (address, "", "")
    if "/" in port:
        port = port.split("/")[0]   # a nonce: 10.0.0.1:6789/0
    return host, int(port or 6789)


def _end(process: subprocess.Popen[bytes], grace: float = 60.0) -> int:
    """Wait for an `rbd` stream process to end by itself; killed only when it will not."""
    try:
        return process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


class RbdStorage:
    backend = "rbd"
    holds_snapshots = True  # a volume made from a snapshot still in the pool is a clone

    def __init__(self, conf: Path, pool: str, user: str, *, rbd: str = "rbd", ceph: str = "ceph",
                 timeout: float = 300.0) -> None:
        self.conf = conf
        self.pool = pool
        self.user = user
        self.rbd = rbd
        self.ceph = ceph
        self.timeout = timeout

    # --- the command line -----------------------------------------------------------------

    def _argv(self, tool: str, *args: str) -> list[str]:
        return [tool, "--conf", str(self.conf), "--id", self.user, *args]

    def _run(self, *args: str, tool: str | None = None) -> str:
        done = subprocess.run(self._argv(tool or self.rbd, *args), capture_output=True, text=True,
                              timeout=self.timeout, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            message = done.stderr.strip()[-1500:]
            if _ENOSPC in message:
                raise StorageFull(message)
            raise RbdError(f"rbd {' '.join(args)}: {message}")
        return done.stdout

    def _json(self, *args: str) -> Any:
        return json.loads(self._run(*args, "--format", "json") or "null")

    def _missing(self, exc: RbdError) -> bool:
        return _ENOENT in str(exc)

    def _snapshots(self, image: str) -> list[dict[str, Any]]:
        try:
            return list(self._json("snap", "ls", image))
        except RbdError as exc:
            if self._missing(exc):
                return []
            raise

    def monitor(self) -> tuple[str, int]:
        """A monitor's address and port for a node's librbd to start from (it learns the rest
        of the cluster there). The v1 address where the conf lists one: every librbd speaks it."""
        done = subprocess.run(["ceph-conf", "--conf", str(self.conf), "--lookup", "mon_host"],
                              capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        if done.returncode != 0 or not done.stdout.strip():
            raise RbdError(f"no mon_host in {self.conf}: {done.stderr.strip()}")
        return pick_monitor(done.stdout)

    # --- volumes --------------------------------------------------------------------------

    def locator(self, volume_id: str) -> str:
        return f"{PREFIX}{self.pool}/{volume_id}"

    def create(self, locator: str, size_bytes: int) -> None:
        self._run("create", "--size", f"{size_bytes}B", image_spec(locator))

    def grow(self, locator: str, size_bytes: int) -> None:
        info = self._json("info", image_spec(locator))
        if int(info["size"]) > size_bytes:
            raise ValueError(f"{locator} is larger than {size_bytes} bytes; volumes only grow")
        self._run("resize", "--size", f"{size_bytes}B", image_spec(locator))

    def delete(self, locator: str, watch_timeout: float = 45.0) -> None:
        image = image_spec(locator)
        for snap in self._snapshots(image):
            self._drop_snapshot(image, snap["name"], protected=snap.get("protected") == "true")
        deadline = time.monotonic() + watch_timeout
        while True:
            try:
                self._run("rm", image)
                return
            except RbdError as exc:
                if self._missing(exc):
                    return
                # A client that died with the image open (a node's QEMU, a killed rbd) holds
                # its watch until the OSD times it out (30 s): wait that out.
                if "has watchers" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(1.0)

    def exists(self, locator: str) -> bool:
        try:
            self._run("info", image_spec(locator))
            return True
        except RbdError as exc:
            if self._missing(exc):
                return False
            raise

    def allocated(self, locators: list[str]) -> dict[str, int]:
        if not locators:
            return {}
        # One `rbd du` of the pool answers for every image (fast with the object map, which
        # new images have by default), rather than one command per volume.
        try:
            usage = self._json("du", *([image_spec(locators[0])] if len(locators) == 1
                                       else ["--pool", self.pool]))
        except RbdError:
            log.exception("rbd du of %s", self.pool)
            return {locator: 0 for locator in locators}
        pool = image_spec(locators[0]).split("/")[0] if len(locators) == 1 else self.pool
        heads = {f"{PREFIX}{pool}/{item['name']}": int(item.get("used_size", 0))
                 for item in usage.get("images", []) if not item.get("snapshot")}
        return {locator: heads.get(locator, 0) for locator in locators}

    def room_gib(self) -> int:
        stats = json.loads(self._run("df", "--format", "json", tool=self.ceph))
        for pool in stats.get("pools", []):
            if pool.get("name") == self.pool:
                room = int(pool["stats"].get("max_avail", 0)) + int(pool["stats"].get("stored", 0))
                if room:
                    return max(1, room // GIB)
        raise RbdError(f"the cluster reports no room for pool {self.pool} (no ceph-mgr answers "
                       "`ceph df`?): set SC_MAX_STORAGE")

    def discard(self, locator: str) -> None:
        # librbd has no "drop everything"; an image made anew at the same size reads as zeros.
        image = image_spec(locator)
        size = int(self._json("info", image)["size"])
        self.delete(locator)
        self._run("create", "--size", f"{size}B", image)

    # --- points in time -------------------------------------------------------------------

    def freeze(self, locator: str, snapshot_id: str) -> Frozen:
        image = image_spec(locator)
        self._run("snap", "create", f"{image}@{snapshot_id}")
        return Frozen(f"{locator}@{snapshot_id}", "rbd-snapshot")

    def frozen_exists(self, handle: str) -> bool:
        image, snap = split_handle(handle)
        return any(s["name"] == snap for s in self._snapshots(image))

    @contextmanager
    def open_frozen(self, handle: str) -> Iterator[DataReader]:
        spec = image_spec(handle)
        size = int(self._json("info", spec)["size"])
        # `rbd diff` lists the same extents export-diff will send, from the object map.
        data_bytes = sum(int(e["length"]) for e in self._json("diff", spec) or [])
        process = subprocess.Popen(self._argv(self.rbd, "export-diff", "--no-progress", spec, "-"),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        assert process.stdout is not None and process.stderr is not None
        try:
            yield DiffReader(process.stdout, size, data_bytes)
        finally:
            # Closed, not killed, when the upload stops early: export-diff then fails on its
            # next write and closes the image as a client should (see _end).
            process.stdout.close()
            code = _end(process)
            errors = process.stderr.read().decode(errors="replace").strip()
            process.stderr.close()
        if code != 0:
            raise RbdError(f"rbd export-diff {spec} exited with {code}: {errors[-1500:]}")

    def uploaded(self, handle: str) -> None:
        pass  # the RBD snapshot stays: a volume made from it is a clone (see forget)

    def forget(self, handle: str) -> None:
        image, snap = split_handle(handle)
        for found in self._snapshots(image):
            if found["name"] == snap:
                self._drop_snapshot(image, snap, protected=found.get("protected") == "true")

    def _drop_snapshot(self, image: str, snap: str, *, protected: bool) -> None:
        spec = f"{image}@{snap}"
        if protected:
            # A clone reads what it has not written through its parent: it gets its own copy
            # of those bytes first (flatten), then nothing holds the snapshot.
            for child in self._json("children", spec) or []:
                child_spec = f"{child['pool']}/{child['image']}"
                log.info("flattening %s before %s goes", child_spec, spec)
                self._run("flatten", child_spec)
            self._run("snap", "unprotect", spec)
        self._run("snap", "rm", spec)

    def sweep(self, keep: set[str]) -> None:
        # An RBD snapshot is named after its snapshot id and goes with its snapshot or its
        # volume (forget, delete): nothing lies around outside the pool to sweep.
        pass

    def clone(self, handle: str, locator: str, size_bytes: int) -> bool:
        if not self.frozen_exists(handle):
            return False
        spec = image_spec(handle)
        try:
            self._run("snap", "protect", spec)
        except RbdError as exc:
            if "already protected" not in str(exc):
                raise
        self._run("clone", spec, image_spec(locator))
        if size_bytes > int(self._json("info", spec)["size"]):
            self._run("resize", "--size", f"{size_bytes}B", image_spec(locator))
        return True

    @contextmanager
    def open_writer(self, locator: str) -> Iterator[DataWriter]:
        spec = image_spec(locator)
        process = subprocess.Popen(self._argv(self.rbd, "import-diff", "--no-progress", "-", spec),
                                   stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        assert process.stdin is not None and process.stderr is not None
        try:
            process.stdin.write(DIFF_HEADER)
            yield DiffWriter(process.stdin)
            process.stdin.write(b"e")
        except BaseException:
            # A stream cut short (no `e`): import-diff fails and closes the image itself.
            # Killed instead, it would leave its watch on the image for the OSD's 30 s
            # timeout, and nothing could remove the image until then.
            try:
                process.stdin.close()
            except BrokenPipeError:
                pass
            _end(process)
            process.stderr.close()
            raise
        try:
            process.stdin.close()
        except BrokenPipeError:
            pass
        _end(process)
        errors = process.stderr.read().decode(errors="replace").strip()
        process.stderr.close()
        if process.returncode != 0:
            raise RbdError(f"rbd import-diff into {spec} exited with {process.returncode}: {errors[-1500:]}")

    def describe(self) -> str:
        return f"RBD images in pool {self.pool} as client.{self.user} ({self.conf})"
