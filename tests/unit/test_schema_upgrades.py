"""Alembic upgrades in place, for every service's migrations: a database made at the first
migration and filled with rows as that version wrote them, then upgraded one migration at a
time (each adding rows to the tables it brings) to the newest; every row reads back, through
plain SQL and through the service's own models, and the schema is then exactly what the models
declare. Where migrations define downgrades, stepping down to the first one and back up to the
newest leaves that same schema, and undoing only the newest keeps the older rows.

Rows are made per column type (with a few values a real cloud has, such as an instance's
state); foreign keys point at rows made before them, so each version's rows hang together."""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from services.db import make_engine

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("clc", "cc", "sc", "nc", "walrus")
WHEN = datetime(2026, 11, 25, 10, 30, tzinfo=timezone.utc)
# Values a running cloud writes where a made-up string would not do.
TYPICAL: dict[str, Any] = {"state": "running", "kind": "machine", "architecture": "x86_64",
                           "domain": "standard", "volume_type": "standard", "protocol": "tcp",
                           "root_device_type": "instance-store", "block_devices_json": "[]"}


def alembic_config(service: str, url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(ROOT / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def migrate(engine: sa.Engine, cfg: AlembicConfig, action: str, target: str) -> None:
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        getattr(command, action)(cfg, target)


def revisions(cfg: AlembicConfig) -> list[str]:
    """Oldest first."""
    script = ScriptDirectory.from_config(cfg)
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def defines_downgrades(cfg: AlembicConfig) -> bool:
    script = ScriptDirectory.from_config(cfg)
    return all(hasattr(r.module, "downgrade") for r in script.walk_revisions())


@dataclass
class Rows:
    """Every row made so far: table -> list of {column: value}, and the columns each table
    had when its rows were made."""
    made: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def value(self, column: sa.Column[Any], table: str) -> Any:
        if column.name in TYPICAL and isinstance(column.type, sa.String):
            return TYPICAL[column.name]
        n = next(self.counter)
        kind = column.type
        if isinstance(kind, sa.Boolean):
            return n % 2 == 0
        if isinstance(kind, sa.Integer):
            return n
        if isinstance(kind, (sa.Float, sa.Numeric)):
            return n + 0.5
        if isinstance(kind, sa.DateTime):
            return WHEN.replace(second=n % 60)
        if isinstance(kind, sa.LargeBinary):
            return f"bytes-{n}".encode()
        if isinstance(kind, sa.JSON):
            return {"n": n}
        if isinstance(kind, sa.String):
            text = f"{column.name[:8]}-{n}"
            length = getattr(kind, "length", None)
            return text[-length:] if length else text
        raise AssertionError(f"{table}.{column.name}: no sample value for {kind!r}")

    def fill(self, connection: sa.Connection, tables: list[sa.Table]) -> None:
        """One row in each of `tables` (parents first), pointing at rows already made."""
        for table in tables:
            row: dict[str, Any] = {}
            for column in table.columns:
                parent = next(iter(column.foreign_keys), None)
                if parent is not None:
                    parent_rows = self.made.get(parent.column.table.name)
                    if parent_rows:
                        row[column.name] = parent_rows[-1][parent.column.name]
                    elif not column.nullable:
                        raise AssertionError(f"{table.name}.{column.name}: no {parent.column.table.name} row to point at")
                    continue
                row[column.name] = self.value(column, table.name)
            connection.execute(table.insert().values(row))
            self.made.setdefault(table.name, []).append(row)


def reflected(connection: sa.Connection) -> sa.MetaData:
    metadata = sa.MetaData()
    metadata.reflect(connection)
    return metadata


def same(stored: Any, made: Any) -> bool:
    if isinstance(made, datetime) and isinstance(stored, datetime):
        return stored.replace(tzinfo=None) == made.replace(tzinfo=None)
    return bool(stored == made)


def read_back(connection: sa.Connection, rows: Rows, columns_then: dict[str, set[str]] | None = None) -> None:
    """Every row made is there with the values it was made with (only the columns it had then,
    when `columns_then` says which)."""
    metadata = reflected(connection)
    for name, made_rows in rows.made.items():
        assert name in metadata.tables, f"table {name} is gone"
        table = metadata.tables[name]
        keys = [c.name for c in table.primary_key.columns]
        for made in made_rows:
            found = connection.execute(sa.select(table).where(
                *[table.c[k] == made[k] for k in keys])).mappings().one_or_none()
            assert found is not None, f"{name} row {[made[k] for k in keys]} is gone"
            for column, value in made.items():
                if column in table.c and (columns_then is None or column in columns_then.get(name, set())):
                    assert same(found[column], value), (name, column, found[column], value)


def models_of(service: str) -> sa.MetaData:
    module = importlib.import_module(f"{service}.models")
    return module.Base.metadata  # type: ignore[no-any-return]


def schema_differences(connection: sa.Connection, service: str) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    return compare_metadata(context, models_of(service))


@pytest.mark.parametrize("service", SERVICES)
def test_every_schema_version_upgrades_in_place(service: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/{service}.db"
    engine = make_engine(url)
    cfg = alembic_config(service, url)
    steps = revisions(cfg)
    rows = Rows()
    columns_at: dict[str, dict[str, set[str]]] = {}
    try:
        for revision in steps:
            migrate(engine, cfg, "upgrade", revision)
            with engine.begin() as connection:
                metadata = reflected(connection)
                new = [t for t in metadata.sorted_tables
                       if t.name not in rows.made and t.name != "alembic_version"]
                rows.fill(connection, new)
                columns_at[revision] = {t.name: {c.name for c in t.columns} for t in metadata.sorted_tables}
                read_back(connection, rows)
        with engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == steps[-1]
            read_back(connection, rows)
            assert schema_differences(connection, service) == []
        # The service's own models read every row the older versions wrote.
        base = importlib.import_module(f"{service}.models").Base
        with sa.orm.Session(engine) as session:
            for mapper in base.registry.mappers:
                loaded = session.scalars(sa.select(mapper.class_)).all()
                assert len(loaded) == len(rows.made[mapper.local_table.name]), mapper.class_

        if not defines_downgrades(cfg) or len(steps) < 2:
            return
        migrate(engine, cfg, "downgrade", "-1")
        migrate(engine, cfg, "upgrade", "head")
        with engine.connect() as connection:
            read_back(connection, Rows(made={t: r for t, r in rows.made.items() if t in columns_at[steps[-2]]}),
                      columns_then=columns_at[steps[-2]])
        migrate(engine, cfg, "downgrade", "base")
        migrate(engine, cfg, "upgrade", "head")
        with engine.connect() as connection:
            assert schema_differences(connection, service) == []
    finally:
        engine.dispose()
