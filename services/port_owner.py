"""Who listens on a TCP port: read from /proc (the listening sockets of /proc/net/tcp and tcp6,
then the process whose file descriptors hold one of them), so `eucasim up` can say which
program took a port it needs. Linux only; elsewhere, and for processes we may not look into,
the answer is simply empty."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's `st` column


@dataclass(frozen=True)
class PortOwner:
    pid: int
    command: str              # its command line, arguments joined by spaces
    eucasim_service: str | None = None  # "clc", "walrus", … when it is one of eucasim's services
    eucasim_home: str | None = None     # that service's state directory, when readable

    def describe(self) -> str:
        who = f"pid {self.pid} ({self.command})"
        if self.eucasim_service:
            where = f" with state in {self.eucasim_home}" if self.eucasim_home else ""
            who += f": the {self.eucasim_service} of another eucasim cloud{where}"
        return who


def _listening_inodes(port: int, proc: Path) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _service_of(argv: list[str]) -> str | None:
    """The eucasim service a process serves, from its uvicorn command line."""
    if "uvicorn" not in " ".join(argv[:3]) or "--factory" not in argv:
        return None
    factory = argv[argv.index("--factory") + 1] if argv.index("--factory") + 1 < len(argv) else ""
    package = factory.split(".", 1)[0]
    return package if package in {"clc", "walrus", "sc", "cc", "nc"} else None


def _owner(pid: int, proc: Path) -> PortOwner:
    argv = [a.decode(errors="replace") for a in _read(proc / str(pid) / "cmdline").split(b"\0") if a]
    service = _service_of(argv)
    home = None
    if service:
        for entry in _read(proc / str(pid) / "environ").split(b"\0"):
            if entry.startswith(b"EUCASIM_HOME="):
                home = entry.split(b"=", 1)[1].decode(errors="replace")
    command = " ".join(argv) or "?"
    return PortOwner(pid, command[:200], service, home)


def owners(port: int, proc: Path = Path("/proc")) -> list[PortOwner]:
    """The processes holding a socket that listens on `port` (any address), lowest pid first."""
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return []
    wanted = {f"socket:[{inode}]" for inode in inodes}
    found: list[PortOwner] = []
    for entry in sorted((p for p in os.listdir(proc) if p.isdigit()), key=int):
        fds = proc / entry / "fd"
        try:
            links = {os.readlink(fds / fd) for fd in os.listdir(fds)}
        except OSError:  # gone, or not ours to look into
            continue
        if links & wanted:
            found.append(_owner(int(entry), proc))
    return found
