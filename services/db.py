"""The database of one service: SQLAlchemy 2.x engine and sessions, SQLite in WAL mode by
default, PostgreSQL (`postgresql://…`, through psycopg 3) or any SQLAlchemy URL otherwise;
schema kept by Alembic migrations."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, MetaData, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool, StaticPool

# Stable constraint names keep Alembic's autogenerate and SQLite batch migrations working.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING)


class ServiceBase(DeclarativeBase):
    """Parent of each service's own declarative base; a service subclasses it with its own
    metadata so that its tables and migrations stay its own."""

    __abstract__ = True


def driver_url(url: str) -> str:
    """The URL with the driver SQLAlchemy should use: a plain `postgresql://` (as operators and
    libpq write it) means psycopg 3, not SQLAlchemy's default psycopg2, which we do not ship."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def ensure_database(url: str) -> None:
    """Create a PostgreSQL database that does not exist yet, so one DATABASE_URL with
    "{service}" in its database name serves every service of a cloud without the operator
    creating five databases first (the role needs CREATEDB). Other URLs are left alone."""
    parsed = make_url(driver_url(url))
    if not parsed.drivername.startswith("postgresql") or not parsed.database:
        return
    probe = create_engine(parsed, poolclass=NullPool)
    try:
        with probe.connect():
            return
    except OperationalError as exc:
        if "does not exist" not in str(exc.orig):
            raise
    finally:
        probe.dispose()
    admin = create_engine(parsed.set(database="postgres"), poolclass=NullPool,
                          isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            name = parsed.database.replace('"', '""')
            try:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
            except DBAPIError as exc:
                # Another process created it in between (PostgreSQL says so one of two ways).
                if "already exists" not in str(exc.orig) and "duplicate key" not in str(exc.orig):
                    raise
    finally:
        admin.dispose()


def make_engine(url: str, pool_size: int = 5) -> Engine:
    """`pool_size` connections are kept open: a service that serves that many requests at
    once in worker threads should keep as many, or each request past it opens (and closes)
    one of its own."""
    url = driver_url(url)
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):
            return create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
        path = url.split("///", 1)[-1]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # No ceiling past `pool_size`: a request thread may open a session inside another
        # (and hold it across a call to another service), so a bounded pool lets every
        # connection be held by threads that each wait for one more, until the pool's
        # timeout answers them all 500 (seen at 50 clients). A SQLite connection is a file
        # handle; what bounds them is the threads, and SQLite's own lock orders the writers.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=pool_size, max_overflow=-1)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_conn.cursor()
            # WAL lets the reconciliation loops read while a request writes.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    connect_args = {}
    if url.startswith("postgresql"):
        # Naive datetimes mean UTC everywhere in eucasim (services/clock.py): the session's
        # zone must be UTC too, whatever the server's default.
        connect_args["options"] = "-c timezone=UTC"
    # A server counts connections against max_connections (100 by default, shared by every
    # service): room for a burst of nested sessions, within that.
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=15,
                         connect_args=connect_args)


class WriteGate:
    """Every session of a process passes here; `eucasim backup` closes it (through the signed
    POST /internal/quiesce every service serves) while it copies the databases and files, so
    no row changes under the copy. It closes for a bounded time only: a backup that dies
    half-way cannot leave a service frozen. A thread already inside a session passes again
    (a nested session would otherwise wait for its own outer one)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._inside = 0
        self._closed_until = 0.0  # time.monotonic() at which a closed gate opens by itself
        self._depth = threading.local()

    def _closed(self) -> float:
        """Seconds until the gate opens by itself; 0 when open."""
        return max(0.0, self._closed_until - time.monotonic())

    def enter(self) -> None:
        depth = getattr(self._depth, "n", 0)
        with self._changed:
            while depth == 0 and (left := self._closed()) > 0:
                self._changed.wait(left)
            self._inside += 1
        self._depth.n = depth + 1

    def leave(self) -> None:
        self._depth.n -= 1
        with self._changed:
            self._inside -= 1
            self._changed.notify_all()

    def close(self, hold_s: float, drain_s: float) -> int:
        """Stop new sessions for at most `hold_s` seconds and wait up to `drain_s` for those
        under way to end. Returns how many are still under way (0: quiet); the gate stays
        closed either way until open() or the hold runs out."""
        deadline = time.monotonic() + drain_s
        with self._changed:
            self._closed_until = time.monotonic() + hold_s
            while self._inside and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            return self._inside

    def open(self) -> None:
        with self._changed:
            self._closed_until = 0.0
            self._changed.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed() > 0


# One per process: a service process's databases pause together.
WRITES = WriteGate()


class Database:
    """Engine plus session factory for one service's database."""

    def __init__(self, url: str, pool_size: int = 5) -> None:
        self.url = url
        ensure_database(url)
        self.engine = make_engine(url, pool_size)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends normally, rolled back otherwise."""
        WRITES.enter()
        try:
            session = self._sessions()
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()
        finally:
            WRITES.leave()

    def upgrade(self, migrations: Path, revision: str = "head") -> None:
        """Bring the schema to the newest migration in `migrations` (a service's folder), or
        to `revision` (a restore builds the schema of the backup's revision)."""
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(migrations))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
