"""How a node reaches a volume: one small interface; `local` or `nbd` chosen by SC_EXPORT for
the file backend, `rbd` for the rbd backend (SC_BACKEND).

- `local`: the node opens the file's path (SC and NC on one host, the simulated default);
  nothing runs, nothing to undo.
- `nbd`: a `qemu-nbd` process serves the file on a TCP port of an address other hosts reach.
  Its pid is recorded so that unexport, SC shutdown and the next SC start can end it, and a
  process whose pid was reused by something else is never killed (its command line must name
  qemu-nbd and this export).
- `rbd`: nothing runs on the SC: the node's QEMU opens the image itself through librbd (a
  libvirt network disk, protocol `rbd`) from the cluster's monitors, as the Ceph user the SC
  names; the node holds that user's key (nc/ceph_secret.py). No process sits in the data path.

A driver's `export` either returns a working export or raises ExportFailed with nothing left
running; bookkeeping (idempotency per (volume, node), rows) is sc/volumes.py's."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from sc.rbd_storage import RbdError, RbdStorage, image_spec


class ExportFailed(Exception):
    """The export could not be made; nothing of it is left behind."""


@dataclass(frozen=True)
class ExportTarget:
    driver: str
    volume_id: str
    path: str
    host: str | None = None
    port: int | None = None
    export_name: str | None = None
    pid: int | None = None
    user: str | None = None         # rbd: the Ceph user the node connects as

    @property
    def uri(self) -> str:
        if self.driver == "nbd":
            return f"nbd://{self.host}:{self.port}/{self.export_name}"
        if self.driver == "rbd":
            return f"rbd://{self.host}:{self.port}/{self.export_name}"
        return Path(self.path).as_uri()


class VolumeExport(Protocol):
    driver: str

    def export(self, volume_id: str, path: str | Path, *, port: int | None = None,
               taken: Iterable[int] = ()) -> ExportTarget:
        """Serve the volume at `path` (its locator, sc/storage.py); `port` asks for that port
        again (a restart), `taken` are ports other exports hold."""
        ...

    def unexport(self, target: ExportTarget) -> None:
        """Stop serving; a no-op when it is already gone."""
        ...

    def alive(self, target: ExportTarget) -> bool: ...

    def restart(self, target: ExportTarget) -> ExportTarget:
        """Serve the same export again (same port): after the file grew, or a restart."""
        ...

    def stop_all(self) -> None:
        """End everything this driver runs (the SC is stopping; exports stay recorded)."""
        ...

    def why(self, target: ExportTarget) -> str:
        """One line for the trace: what the node gets and how."""
        ...


class LocalExport:
    driver = "local"

    def export(self, volume_id: str, path: str | Path, *, port: int | None = None,
               taken: Iterable[int] = ()) -> ExportTarget:
        if not Path(path).is_file():
            raise ExportFailed(f"{path} does not exist")
        return ExportTarget("local", volume_id, str(path))

    def unexport(self, target: ExportTarget) -> None:
        pass

    def alive(self, target: ExportTarget) -> bool:
        return Path(target.path).is_file()

    def restart(self, target: ExportTarget) -> ExportTarget:
        return target

    def stop_all(self) -> None:
        pass

    def why(self, target: ExportTarget) -> str:
        return f"local: the node opens {target.path} (SC and NC share this host)"


def parse_ports(spec: str) -> range:
    first, _, last = spec.partition("-")
    low = int(first)
    high = int(last or first)
    if not 1 <= low <= high <= 65535:
        raise ValueError(f"SC_NBD_PORTS={spec!r}: expected first-last within 1-65535")
    return range(low, high + 1)


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        # As qemu-nbd binds: a port whose last connections linger in TIME_WAIT (the export
        # just ended, served again after an SC restart) is free to it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class NbdExport:
    driver = "nbd"

    def __init__(self, address: str, ports: range, *, qemu_nbd: str = "qemu-nbd",
                 start_timeout: float = 30.0) -> None:
        self.address = address
        self.ports = ports
        self.qemu_nbd = qemu_nbd
        self.start_timeout = start_timeout
        # Children of this process, kept so that they are reaped (no zombies) once killed.
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def export(self, volume_id: str, path: str | Path, *, port: int | None = None,
               taken: Iterable[int] = ()) -> ExportTarget:
        path = Path(path)
        if not path.is_file():
            raise ExportFailed(f"{path} does not exist")
        busy = set(taken)
        candidates = [port] if port is not None else [p for p in self.ports if p not in busy]
        last_error = f"no free port in {self.ports.start}-{self.ports.stop - 1}"
        for candidate in candidates:
            if not _port_free(self.address, candidate):
                last_error = f"port {candidate} on {self.address} is in use"
                continue
            try:
                return self._start(volume_id, path, candidate)
            except _PortTaken as exc:  # lost a race for the port: try the next one
                last_error = str(exc)
        raise ExportFailed(last_error)

    def _start(self, volume_id: str, path: Path, port: int) -> ExportTarget:
        command = [self.qemu_nbd, "--format=raw", "--persistent", "--shared=8", "--cache=none",
                   "--aio=threads", f"--bind={self.address}", f"--port={port}",
                   f"--export-name={volume_id}", str(path)]
        with tempfile.TemporaryFile() as errors:
            try:
                # Its own session: a Ctrl-C meant for the SC's terminal does not reach it, the
                # SC ends it itself.
                process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                           stderr=errors, start_new_session=True)
            except OSError as exc:
                raise ExportFailed(f"cannot run {self.qemu_nbd}: {exc}") from exc
            deadline = time.monotonic() + self.start_timeout
            while not _listening(self.address, port):
                if process.poll() is not None:
                    errors.seek(0)
                    message = errors.read().decode(errors="replace").strip()
                    if "in use" in message:
                        raise _PortTaken(f"port {port}: {message}")
                    raise ExportFailed(f"qemu-nbd exited with {process.returncode}: {message}")
                if time.monotonic() > deadline:
                    self._kill(process.pid, process)
                    raise ExportFailed(f"qemu-nbd did not listen on {self.address}:{port} "
                                       f"within {self.start_timeout:g} s")
                time.sleep(0.01)
        self._children[process.pid] = process
        return ExportTarget("nbd", volume_id, str(path), self.address, port, volume_id, process.pid)

    def ours(self, target: ExportTarget) -> bool:
        """The recorded pid is still the qemu-nbd of this export (not a reused pid)."""
        if target.pid is None:
            return False
        command = _cmdline(target.pid)
        return (bool(command) and Path(command[0]).name == "qemu-nbd"
                and f"--export-name={target.export_name}" in command)

    def alive(self, target: ExportTarget) -> bool:
        child = self._children.get(target.pid or -1)
        if child is not None and child.poll() is not None:
            return False
        return self.ours(target)

    def unexport(self, target: ExportTarget) -> None:
        if target.pid is None:
            return
        child = self._children.pop(target.pid, None)
        if child is not None:
            self._kill(target.pid, child)
        elif self.ours(target):
            self._kill(target.pid, None)

    def restart(self, target: ExportTarget, settle_s: float = 15.0) -> ExportTarget:
        """Serve the export again on its port (after the file grew, or after an SC restart).
        The old qemu-nbd's port can stay taken a moment after it is ended (its sockets
        going away, on a busy host): that is waited out, not taken as the port being lost."""
        self.unexport(target)
        deadline = time.monotonic() + settle_s
        while True:
            try:
                fresh = self.export(target.volume_id, Path(target.path), port=target.port)
                return replace(target, pid=fresh.pid, host=fresh.host)
            except ExportFailed as exc:
                if "in use" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(0.1)

    def stop_all(self) -> None:
        for pid, child in list(self._children.items()):
            self._kill(pid, child)
        self._children.clear()

    def why(self, target: ExportTarget) -> str:
        return (f"nbd: qemu-nbd (pid {target.pid}) serves {target.path} at {target.uri} "
                f"for a node on any host that reaches {target.host}")

    @staticmethod
    def _kill(pid: int, child: subprocess.Popen[bytes] | None, grace: float = 5.0) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if child is not None:
                if child.poll() is not None:
                    return
            elif not Path(f"/proc/{pid}").exists() or _zombie(pid):
                return
            time.sleep(0.01)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        if child is not None:
            child.wait()
            return
        # Not our child (an SC before this one started it): gone once it is a zombie.
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists() and not _zombie(pid):
            time.sleep(0.01)


class _PortTaken(Exception):
    pass


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


class RbdExport:
    """The image's name in the pool, the monitor a node's librbd starts from, and the Ceph
    user it connects as. Nothing to start or end: the export is a record of what the node got."""

    driver = "rbd"

    def __init__(self, storage: RbdStorage) -> None:
        self.storage = storage

    def export(self, volume_id: str, path: str | Path, *, port: int | None = None,
               taken: Iterable[int] = ()) -> ExportTarget:
        locator = str(path)
        try:
            if not self.storage.exists(locator):
                raise ExportFailed(f"{locator} does not exist")
            host, mon_port = self.storage.monitor()
        except RbdError as exc:
            raise ExportFailed(str(exc)) from exc
        return ExportTarget("rbd", volume_id, locator, host, mon_port, image_spec(locator),
                            user=self.storage.user)

    def unexport(self, target: ExportTarget) -> None:
        pass

    def alive(self, target: ExportTarget) -> bool:
        return True     # nothing of ours runs; whether the image exists is the volume's matter

    def restart(self, target: ExportTarget) -> ExportTarget:
        return target   # librbd sees a grown image by itself

    def stop_all(self) -> None:
        pass

    def why(self, target: ExportTarget) -> str:
        return (f"rbd: the node's QEMU opens {target.export_name} through librbd from the monitor "
                f"{target.host}:{target.port} as client.{target.user} (no process on the SC)")


def make_exporters(address: str, ports: str, rbd: RbdStorage | None = None) -> dict[str, VolumeExport]:
    """Every driver the configuration allows: SC_EXPORT (or SC_BACKEND=rbd) picks the one new
    exports use, while an export keeps the driver it was made with (a configuration change
    does not orphan a running qemu-nbd)."""
    drivers: dict[str, VolumeExport] = {"local": LocalExport(), "nbd": NbdExport(address, parse_ports(ports))}
    if rbd is not None:
        drivers["rbd"] = RbdExport(rbd)
    return drivers
