"""The storage controller service: `uvicorn --factory sc.app:create_app`.

One per zone: volumes as sparse files under SC_VOLUME_PATH exported to nodes by the SC_EXPORT
driver, or (SC_BACKEND=rbd) as RBD images in a Ceph pool that nodes open through librbd;
snapshots kept in Walrus either way. The internal API is in services/messages/storage.py."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from botocore.config import Config
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from sc.file_storage import FileStorage
from sc.rbd_storage import RbdStorage
from sc.storage import VolumeStorage
from sc.exports import make_exporters
from sc.faults import StorageFault
from sc.jobs import Jobs, KeyedLocks
from sc.snapshots import Snapshots
from sc.snapshot_http import SnapshotHTTP
from sc.snapstore import SnapshotStore
from sc.volumes import Volumes
from services import credentials
from services.config import CloudConfig, load_config
from services.db import Database
from services.messages.identity import AccessKeyInfo
from services.messages.storage import (SC_EXPORT_ROUTE, SC_EXPORTS_ROUTE, SC_GROW_ROUTE,
                                       SC_SNAPSHOT_ROUTE, SC_SNAPSHOTS_ROUTE, SC_UNEXPORT_ROUTE,
                                       SC_VOLUME_ROUTE, SC_VOLUMES_ROUTE, CreateSnapshot,
                                       CreateVolume, ExportVolume, GrowVolume, SnapshotInfo,
                                       SnapshotList, UnexportVolume, VolumeExportInfo,
                                       VolumeExportList, VolumeInfo, VolumeList)
from sc.gauges import sc_gauges
from services.service_app import make_service_app


def volume_folder(config: CloudConfig) -> Path:
    return (config.SC_VOLUME_PATH or config.EUCASIM_HOME / "volumes").absolute()


def volume_storage(config: CloudConfig) -> VolumeStorage:
    folder = volume_folder(config)
    if config.SC_BACKEND == "rbd":
        return RbdStorage(config.SC_CEPH_CONF.absolute(), config.SC_CEPH_POOL, config.SC_CEPH_USER)
    return FileStorage(folder, folder / "staging")


def walrus_admin(config: CloudConfig, key: AccessKeyInfo | None) -> Callable[[], AccessKeyInfo]:
    """The cloud admin's key, which the SC talks to Walrus with (the CLC writes it under
    $EUCASIM_HOME/credentials at its first start, so it is read when first needed)."""
    return lambda: key or credentials.read(config.EUCASIM_HOME).key


def walrus_s3(config: CloudConfig, key: AccessKeyInfo | None) -> Callable[[], Any]:
    """A factory of the S3 client the SC deletes snapshots in Walrus with, as the cloud admin
    (uploads and restores go through sc/snapshot_http.py)."""
    def make() -> Any:
        import boto3

        admin = walrus_admin(config, key)()
        options: dict[str, Any] = {}
        if "request_checksum_calculation" in Config.OPTION_DEFAULTS:  # botocore >= 1.36
            # botocore's default CRC32 of every body would only cost time.
            options = {"request_checksum_calculation": "when_required",
                       "response_checksum_validation": "when_required"}
        return boto3.client(
            "s3", endpoint_url=config.service_url("walrus"), region_name=config.REGION,
            aws_access_key_id=admin.access_key, aws_secret_access_key=admin.secret_key,
            config=Config(s3={"addressing_style": "path", "payload_signing_enabled": False},
                          retries={"max_attempts": 3}, max_pool_connections=16, **options))
    return make


def create_app(config: CloudConfig | None = None, *, walrus_key: AccessKeyInfo | None = None) -> FastAPI:
    config = config or load_config()
    db = Database(config.database_url("sc"))
    db.upgrade(Path(__file__).parent / "migrations")
    folder = volume_folder(config)
    folder.mkdir(parents=True, exist_ok=True)
    storage = volume_storage(config)
    capacity = config.SC_MAX_STORAGE or storage.room_gib()
    jobs = Jobs()
    locks = KeyedLocks()
    workers = 4  # parts in flight per upload or restore; `jobs` runs two of those at a time
    store = SnapshotStore(walrus_s3(config, walrus_key),
                          SnapshotHTTP(config.service_url("walrus"), walrus_admin(config, walrus_key),
                                       config.REGION, 2 * workers, os.environ.get("AWS_CA_BUNDLE")),
                          workers=workers)
    exporters = make_exporters(config.SC_NBD_ADDRESS or config.PUBLIC_HOST, config.SC_NBD_PORTS,
                               storage if isinstance(storage, RbdStorage) else None)
    # An RBD image is opened by the node's QEMU itself: SC_EXPORT (a path or qemu-nbd over a
    # file) applies to the file backend only.
    export_driver = "rbd" if storage.backend == "rbd" else config.SC_EXPORT

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        volumes.recover()
        snapshots.recover()
        try:
            yield
        finally:
            jobs.shutdown()
            volumes.stop()
            db.engine.dispose()

    app, recorder = make_service_app("sc", config.CLOUD_SECRET, config.LOG_LEVEL, lifespan=lifespan)
    sc_gauges(app.state.metrics, db)  # /metrics: volumes and snapshots
    snapshots = Snapshots(db, storage, store, config.SC_SNAPSHOT_PART_MIB * 1024 * 1024,
                          jobs, locks, recorder)
    volumes = Volumes(db, storage, capacity, exporters, export_driver, snapshots, store, jobs,
                      locks, recorder)
    app.state.volumes = volumes
    app.state.snapshots = snapshots
    app.state.jobs = jobs
    auth = [Depends(app.state.internal_auth)]

    @app.exception_handler(StorageFault)
    async def storage_fault(_: Request, exc: StorageFault) -> JSONResponse:
        return JSONResponse({"detail": exc.error.model_dump()}, status_code=exc.status)

    # Sync routes: FastAPI runs them in its thread pool, so file work and SQLite stay off the
    # event loop.
    @app.post(SC_VOLUMES_ROUTE, dependencies=auth)
    def create_volume(body: CreateVolume) -> VolumeInfo:
        return volumes.create(body)

    @app.get(SC_VOLUMES_ROUTE, dependencies=auth)
    def list_volumes() -> VolumeList:
        return volumes.list()

    @app.get(SC_VOLUME_ROUTE, dependencies=auth)
    def describe_volume(volume_id: str) -> VolumeInfo:
        return volumes.describe(volume_id)

    @app.delete(SC_VOLUME_ROUTE, dependencies=auth)
    def delete_volume(volume_id: str) -> VolumeInfo:
        return volumes.delete(volume_id)

    @app.post(SC_GROW_ROUTE, dependencies=auth)
    def grow_volume(volume_id: str, body: GrowVolume) -> VolumeInfo:
        return volumes.grow(volume_id, body.size_gib)

    @app.post(SC_EXPORT_ROUTE, dependencies=auth)
    def export_volume(volume_id: str, body: ExportVolume) -> VolumeExportInfo:
        return volumes.export(volume_id, body.node)

    @app.post(SC_UNEXPORT_ROUTE, dependencies=auth)
    def unexport_volume(volume_id: str, body: UnexportVolume) -> VolumeInfo:
        return volumes.unexport(volume_id, body.node)

    @app.get(SC_EXPORTS_ROUTE, dependencies=auth)
    def list_exports(volume_id: str) -> VolumeExportList:
        return volumes.exports(volume_id)

    @app.post(SC_SNAPSHOTS_ROUTE, dependencies=auth)
    def create_snapshot(body: CreateSnapshot) -> SnapshotInfo:
        return snapshots.create(body)

    @app.get(SC_SNAPSHOTS_ROUTE, dependencies=auth)
    def list_snapshots() -> SnapshotList:
        return snapshots.list()

    @app.get(SC_SNAPSHOT_ROUTE, dependencies=auth)
    def describe_snapshot(snapshot_id: str) -> SnapshotInfo:
        return snapshots.describe(snapshot_id)

    @app.delete(SC_SNAPSHOT_ROUTE, dependencies=auth)
    def delete_snapshot(snapshot_id: str) -> SnapshotInfo:
        return snapshots.delete(snapshot_id)

    return app
