"""A real PostgreSQL 15 server for the tests, from Debian's `postgresql` package: its own data
directory and socket directory under /tmp, its own TCP port on 127.0.0.1, trust
authentication for one superuser, and no fsync (the tests lose nothing worth keeping).

    with postgres_server() as pg:
        url = pg.database_url("clc_tests")     # a new, empty database; a SQLAlchemy URL
        template = pg.url("t1_{service}")      # DATABASE_URL for a cloud: a service creates
                                               # its own database on first start

Run as root (CI), initdb and the server refuse to run: they run as the `postgres` user the
package created, and the directories are made its own. The server is stopped by its pid, in a
`finally`, whatever the tests did."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "eucasim"
# The port is free when chosen but not held (PostgreSQL binds its own): a lost race is retried.
START_ATTEMPTS = 3


@dataclass
class PostgresServer:
    port: int
    socket_dir: Path
    pid: int

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` (which may hold DATABASE_URL's "{service}")."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def database_url(self, name: str) -> str:
        """Create the empty database `name` and return its URL."""
        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def databases(self) -> list[str]:
        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres") as connection:
            rows = connection.execute("SELECT datname FROM pg_database WHERE NOT datistemplate").fetchall()
        return sorted(str(row[0]) for row in rows)


def available() -> bool:
    return (BIN / "initdb").is_file() and (BIN / "postgres").is_file()


def _as_owner() -> dict[str, object]:
    """Popen arguments that run a PostgreSQL program as a user it accepts: ourselves, or the
    package's `postgres` user when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pid_of(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _stop(pid: int, timeout: float = 30.0) -> None:
    """Fast shutdown (SIGINT: roll back, disconnect, stop); SIGKILL if it has not ended in time."""
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    root = Path(tempfile.mkdtemp(prefix="eucasim-pg-", dir="/tmp"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    owner = _as_owner()
    if owner:
        account = pwd.getpwnam(str(owner["user"]))
        for path in (root, sockets):
            os.chown(path, account.pw_uid, account.pw_gid)
    pid: int | None = None
    try:
        subprocess.run([str(BIN / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
                        "-E", "UTF8", "--no-sync", "--no-instructions"],
                       check=True, capture_output=True, timeout=120, **owner)  # type: ignore[call-overload]
        for attempt in range(START_ATTEMPTS):
            port = _free_port()
            options = (f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                       f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            started = subprocess.run([str(BIN / "pg_ctl"), "start", "-w", "-t", "90", "-D", str(data),
                                      "-l", str(root / "server.log"), "-o", options],
                                     capture_output=True, text=True, timeout=120, **owner)  # type: ignore[call-overload]
            pid = _pid_of(data)
            if started.returncode == 0 and pid is not None:
                break
            if pid is not None:
                _stop(pid)
                pid = None
            log = (root / "server.log").read_text(errors="replace")
            if "could not bind" not in log or attempt == START_ATTEMPTS - 1:
                raise RuntimeError(f"PostgreSQL did not start: {started.stderr}\n{log[-2000:]}")
        assert pid is not None
        yield PostgresServer(port=port, socket_dir=sockets, pid=pid)
    finally:
        if pid is None:
            pid = _pid_of(data)
        if pid is not None:
            _stop(pid)
        shutil.rmtree(root, ignore_errors=True)
