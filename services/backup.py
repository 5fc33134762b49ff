"""`eucasim backup DIR` and `eucasim restore DIR`: a consistent copy of a running cloud, and the
same cloud laid out again under another EUCASIM_HOME (another host, other ports, another
database).

A backup pauses every service's writes (POST /internal/quiesce: each process closes the gate
every database session passes, services/db.py `WriteGate`, and waits for the sessions under
way), copies, and resumes them, so the databases and files agree with one another. What it
holds, in DIR:

    manifest.json       what was copied from where (the old home and folders, the schema
                        revision of each database), and how long writes were paused
    db/<service>.sqlite each service's database as one SQLite file: SQLite through its online
                        backup API, PostgreSQL by copying its tables in one snapshot
    files/<part>/       the cloud secret, credentials, PKI and TLS files, Walrus's objects
                        and image cache, the SC's volume files (sparse), the NCs' instance
                        folders and node definitions
    eucalyptus.conf     the configuration, to edit for the new host (not installed by restore)

A restore copies the files to where the target configuration keeps them, loads each database
into the target's DATABASE_URL (a SQLite file is copied; PostgreSQL gets the schema at the
backup's revision from the service's own migrations, then the rows), and rewrites the old
folders' paths stored in rows (volume files, instance disks) to the new ones, and the old
services' addresses to the new ones where those are configured (not 0: "any free port"). `eucasim up`
there starts the same cloud: the services upgrade the schema if the code is newer, the NCs
start the instances they hold again, the CC learns its nodes at their new addresses.

This module knows the five services by name only (their migrations are found as
`<service>/migrations`, as the launcher finds their apps): it imports none of them."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx
from sqlalchemy import (Engine, Integer, MetaData, String, func, inspect, make_url, select,
                        text, update)

from services.config import SECRET_FILE, CloudConfig, conf_path
from services.db import Database, driver_url, make_engine
from services.internal import InternalCallError, InternalClient
from services.messages.backup import QUIESCE_ROUTE, RESUME_ROUTE, Quiesce, WriteState

SERVICES = ("clc", "walrus", "sc", "cc", "nc")
FORMAT = 1
MANIFEST = "manifest.json"
# Longest pause of writes a backup may take; the services reopen by themselves after it.
HOLD_S = 120.0
DRAIN_S = 15.0


class BackupError(Exception):
    """The backup or restore cannot go on; the message says why and what was left as it was."""


def state_parts(config: CloudConfig) -> dict[str, Path]:
    """Where each part of a cloud's state lives for `config`, besides the databases."""
    home = config.EUCASIM_HOME.absolute()
    return {
        SECRET_FILE: home / SECRET_FILE,
        "credentials": home / "credentials",
        "pki": home / "pki",
        "tls": home / "tls",
        "walrus": home / "walrus",
        "volumes": Path(config.SC_VOLUME_PATH or home / "volumes").absolute(),
        "instances": Path(config.INSTANCE_PATH or home / "instances").absolute(),
        "nc": home / "nc",
    }


def migrations_of(service: str) -> Path:
    spec = importlib.util.find_spec(service)
    if spec is None or not spec.submodule_search_locations:
        raise BackupError(f"the {service} package is not installed here")
    return Path(list(spec.submodule_search_locations)[0]) / "migrations"


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(driver_url(url))
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError(f"{url}: an in-memory database cannot be backed up or restored")
    return Path(parsed.database)


def _revision(engine: Engine) -> str | None:
    if "alembic_version" not in inspect(engine).get_table_names():
        return None
    with engine.connect() as connection:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


# -- the pause -----------------------------------------------------------------------------------

@dataclass
class Pause:
    config: CloudConfig
    paused: list[str] = field(default_factory=list)
    started: float = 0.0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started if self.started else 0.0


def _client(config: CloudConfig, service: str) -> InternalClient:
    return InternalClient(config.service_url(service), config.CLOUD_SECRET, timeout=DRAIN_S + 15)


@contextmanager
def writes_paused(config: CloudConfig, services: tuple[str, ...] = SERVICES) -> Iterator[Pause]:
    """Every service's writes paused for the block (at most HOLD_S); resumed whatever happens."""
    pause = Pause(config)
    try:
        pause.started = time.monotonic()
        for service in services:
            client = _client(config, service)
            try:
                state = client.call("POST", QUIESCE_ROUTE, Quiesce(hold_s=HOLD_S, drain_s=DRAIN_S), WriteState)
            except (InternalCallError, httpx.HTTPError, OSError) as exc:
                raise BackupError(f"cannot pause the {service.upper()} at {client.base_url}: {exc}; "
                                  "nothing was copied (is the cloud up, with these ports?)") from None
            finally:
                client.close()
            pause.paused.append(service)
            if state.busy:
                raise BackupError(f"the {service.upper()} still had {state.busy} database sessions under way "
                                  f"after {DRAIN_S:g} s; nothing was copied, try again")
        yield pause
        if pause.elapsed >= HOLD_S:
            raise BackupError(f"the copy took {pause.elapsed:.0f} s, longer than the {HOLD_S:g} s the "
                              "services hold their writes: it may not be consistent")
    finally:
        for service in pause.paused:
            client = _client(config, service)
            try:
                client.call("POST", RESUME_ROUTE, None, WriteState)
            except (InternalCallError, httpx.HTTPError, OSError):
                pass  # it reopens by itself when the hold runs out
            finally:
                client.close()


# -- databases -----------------------------------------------------------------------------------

def copy_rows(source: Engine, target: Engine) -> int:
    """Every row of `source`'s tables into the same tables of `target` (made by the same
    migrations, empty), parents first, read in one snapshot; PostgreSQL's sequences then start
    past the copied keys. Returns the rows copied."""
    found, wanted = MetaData(), MetaData()
    found.reflect(source)
    wanted.reflect(target)
    copied = 0
    reader = source.execution_options(isolation_level="REPEATABLE READ") \
        if source.dialect.name == "postgresql" else source
    with reader.connect() as read, target.begin() as write:
        for table in wanted.sorted_tables:
            if table.name == "alembic_version" or table.name not in found.tables:
                continue
            origin = found.tables[table.name]
            columns = [c.name for c in table.columns if c.name in origin.c]
            rows = [dict(row._mapping) for row in read.execute(select(*(origin.c[c] for c in columns)))]
            if rows:
                write.execute(table.insert(), rows)
                copied += len(rows)
        if target.dialect.name == "postgresql":
            for table in wanted.sorted_tables:
                for column in table.primary_key.columns:
                    if isinstance(column.type, Integer):
                        write.execute(text(
                            f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', '{column.name}'), "
                            f"COALESCE(MAX(\"{column.name}\"), 0) + 1, false) FROM \"{table.name}\""))
    return copied


def _migrate_to(url: str, service: str, revision: str | None) -> Database:
    db = Database(url)
    if revision:
        db.upgrade(migrations_of(service), revision)
    return db


def dump_database(service: str, url: str, target: Path) -> str | None:
    """`service`'s database at `url` as the SQLite file `target`; returns its schema revision."""
    path = _sqlite_path(url)
    if path is not None:
        if not path.is_file():
            raise BackupError(f"the {service.upper()}'s database {path} does not exist")
        source = sqlite3.connect(path)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)     # SQLite's online backup: one consistent snapshot
        finally:
            copy.close()
            source.close()
        engine = make_engine(f"sqlite:///{target}")
        try:
            return _revision(engine)
        finally:
            engine.dispose()
    source_engine = make_engine(url)
    try:
        revision = _revision(source_engine)
        db = _migrate_to(f"sqlite:///{target}", service, revision)
        try:
            copy_rows(source_engine, db.engine)
        finally:
            db.engine.dispose()
        return revision
    finally:
        source_engine.dispose()


def load_database(service: str, dump: Path, url: str, revision: str | None) -> None:
    """The SQLite file `dump` as `service`'s database at `url`, which must be empty."""
    path = _sqlite_path(url)
    if path is not None:
        if path.exists():
            raise BackupError(f"{path} already exists: restore into a new EUCASIM_HOME or database")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dump, path)
        return
    db = Database(url)
    try:
        if inspect(db.engine).get_table_names():
            raise BackupError(f"the {service.upper()}'s database {make_url(driver_url(url)).database} "
                              "is not empty: restore into new databases")
    finally:
        db.engine.dispose()
    db = _migrate_to(url, service, revision)
    source = make_engine(f"sqlite:///{dump}")
    try:
        copy_rows(source, db.engine)
    finally:
        source.dispose()
        db.engine.dispose()


def rewrite_paths(url: str, moves: list[tuple[str, str]]) -> int:
    """Replace each old folder's path with its new one wherever a text column holds it (volume
    files, instance disks, node definitions, inside JSON too); keys are left alone. Returns
    the rows changed."""
    engine = make_engine(url)
    changed = 0
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.begin() as connection:
            for table in meta.sorted_tables:
                for column in table.columns:
                    if not isinstance(column.type, String) or column.primary_key or column.foreign_keys:
                        continue
                    for old, new in moves:
                        result = connection.execute(update(table).where(column.contains(old, autoescape=True))
                                                    .values({column.name: func.replace(column, old, new)}))
                        changed += result.rowcount or 0
    finally:
        engine.dispose()
    return changed


# -- files ---------------------------------------------------------------------------------------

def copy_tree(source: Path, target: Path) -> None:
    """A file or folder with its modes and times, sparse files kept sparse (a 1 GiB volume that
    holds 4 KiB stays 4 KiB), by reflink where the file system can."""
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", "--sparse=always", "--reflink=auto", str(source), str(target)],
                   check=True, capture_output=True, timeout=3600)


# -- backup and restore --------------------------------------------------------------------------

def backup(config: CloudConfig, folder: Path) -> dict[str, object]:
    """Copy the cloud `config` describes, while it runs, into the new folder `folder`."""
    folder = folder.absolute()
    if folder.exists() and any(folder.iterdir()):
        raise BackupError(f"{folder} is not empty: back up into a new folder")
    if not config.CLOUD_SECRET:
        raise BackupError("no cloud secret: is this the home of a cloud `eucasim up` started?")
    (folder / "db").mkdir(parents=True, exist_ok=True)
    parts = state_parts(config)
    revisions: dict[str, str | None] = {}
    copied = {}
    try:
        with writes_paused(config) as pause:
            for service in SERVICES:
                revisions[service] = dump_database(service, config.database_url(service),
                                                   folder / "db" / f"{service}.sqlite")
            for name, path in parts.items():
                if path.exists():
                    copy_tree(path, folder / "files" / name)
                    copied[name] = str(path)
            paused_s = pause.elapsed
    except BaseException:
        # Half a backup is no backup: leave the folder empty, ready for another try.
        for child in folder.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
        raise
    conf = conf_path()
    if conf.is_file():
        # For the operator to carry across and edit (addresses, ports, DATABASE_URL differ on
        # the new host); restore does not install it.
        shutil.copy2(conf, folder / conf.name)
    manifest = {"format": FORMAT, "created_at": datetime.now(timezone.utc).isoformat(),
                "home": str(config.EUCASIM_HOME.absolute()), "parts": copied,
                "urls": {s: config.service_url(s) for s in SERVICES},
                "databases": {s: {"revision": revisions[s],
                                  "kind": make_url(driver_url(config.database_url(s))).get_backend_name()}
                              for s in SERVICES},
                "writes_paused_s": round(paused_s, 3)}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(folder: Path) -> dict:  # type: ignore[type-arg]
    path = folder / MANIFEST
    if not path.is_file():
        raise BackupError(f"{folder} holds no {MANIFEST}: not a `eucasim backup` folder")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: backup format {manifest.get('format')!r}, this eucasim reads {FORMAT}")
    return manifest  # type: ignore[no-any-return]


def _url_moves(config: CloudConfig, old_urls: dict[str, str]) -> list[tuple[str, str]]:
    """Services' old addresses stored in rows (an image's URL in an NC's launch record) to
    their new ones, for each service whose new address is known before it starts: a port
    configured as 0 is chosen by `eucasim up`, and its rows keep the old address (the NC has
    the image in its cache by then)."""
    moves = []
    for service, old in old_urls.items():
        if service not in SERVICES or not getattr(config, f"{service.upper()}_PORT") \
                and not getattr(config, f"{service.upper()}_URL"):
            continue
        new = config.service_url(service)
        if new.rstrip("/") != old.rstrip("/"):
            moves.append((old.rstrip("/") + "/", new.rstrip("/") + "/"))
    return moves


def restore(config: CloudConfig, folder: Path) -> dict[str, object]:
    """Lay the backup in `folder` out for the cloud `config` describes (its EUCASIM_HOME,
    folders and DATABASE_URL), which must hold no cloud yet."""
    folder = folder.absolute()
    manifest = read_manifest(folder)
    home = config.EUCASIM_HOME.absolute()
    parts = state_parts(config)
    taken = [str(p) for p in parts.values() if p.exists()]
    if taken:
        raise BackupError(f"the target already holds a cloud's state ({', '.join(taken)}): "
                          "restore into a new EUCASIM_HOME")
    for service in SERVICES:
        path = _sqlite_path(config.database_url(service))
        if path is not None and path.exists():
            raise BackupError(f"{path} already exists: restore into a new EUCASIM_HOME")
    home.mkdir(parents=True, exist_ok=True)
    moves: list[tuple[str, str]] = []
    for name, old in manifest["parts"].items():
        if name not in parts:
            continue
        copy_tree(folder / "files" / name, parts[name])
        if (folder / "files" / name).is_dir() and old != str(parts[name]):
            moves.append((old.rstrip("/") + "/", str(parts[name]).rstrip("/") + "/"))
    old_home = manifest["home"].rstrip("/") + "/"
    if old_home != str(home) + "/":
        moves.append((old_home, str(home) + "/"))
    moves += _url_moves(config, manifest.get("urls", {}))
    rows = 0
    for service in SERVICES:
        url = config.database_url(service)
        load_database(service, folder / "db" / f"{service}.sqlite", url,
                      manifest["databases"][service]["revision"])
        rows += rewrite_paths(url, moves)
    return {"home": str(home), "moves": moves, "rows_rewritten": rows}
