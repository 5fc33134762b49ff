"""The cloud controller: the public EC2 Query API, accounts and their resources, the admin
API, and (later) the instance metadata service. `create_app` is the uvicorn factory."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import select

# Importing the action modules registers every EC2 action.
from clc.api import (addresses, images, instances, keypairs, security_groups,  # noqa: F401
                     snapshots, tags, volumes, zones)
from clc.accounts import ensure_admin
from clc.admin import admin_router
from clc.gauges import clc_gauges
from clc.capacity_route import capacity_router
from clc.console import install_console
from clc.api.registry import implemented_actions
from clc.ec2_endpoint import EC2_PATHS, Ec2Endpoint, Ec2FrontDoor
from clc.metadata import metadata_router
from clc.models.vmtypes import DEFAULT_VM_TYPES, VmTypeRow
from clc.placement import Launches
from clc.properties import Properties
from clc.properties_route import properties_router
from clc.network_sync import NetworkSync
from clc.reconcile import Reconciler
from clc.service_status import services_router
from clc.storage_client import ScStorageClient
from clc.tiny_image_route import tiny_image_router
from clc.volume_settler import VolumeSettler
from clc.volume_work import VolumeWork
from clc.walrus_client import HttpWalrus
from clc.zone_events import zone_events_router
from clc.zone_directory import ZoneDirectory
from clc.zone_services_route import zone_services_router
from clc.zones_client import CcZoneClient
from services import credentials, pki
from services.config import CloudConfig, load_config
from services.db import Database
from services.ec2query import preload
from services.service_app import make_service_app

MIGRATIONS = Path(__file__).parent / "migrations"
GC_GEN0_THRESHOLD = 20_000


def _seed_vm_types(db: Database) -> None:
    with db.session() as session:
        if session.scalar(select(VmTypeRow).limit(1)) is None:
            for name, (cpu, memory, disk) in DEFAULT_VM_TYPES.items():
                session.add(VmTypeRow(name=name, cpu=cpu, memory_mb=memory, disk_gb=disk))


def bootstrap(config: CloudConfig, db: Database) -> credentials.UserCredentials:
    """First start (and every start, idempotently): schema, admin account, VM types, and the
    credential files under EUCASIM_HOME/credentials."""
    db.upgrade(MIGRATIONS)
    _seed_vm_types(db)
    # The cloud's certificate: bundles are encrypted for it and user certificates signed by it.
    pki.ensure_cloud_ca(config.EUCASIM_HOME)
    with db.session() as session:
        admin = ensure_admin(session)
    creds = credentials.UserCredentials(
        key=admin,
        endpoints=credentials.Endpoints(
            ec2=config.service_url("clc"), s3=config.service_url("walrus"), region=config.REGION,
            ca_bundle=str(config.ca_bundle) if config.PUBLIC_HTTPS else None))
    credentials.write(config.EUCASIM_HOME, creds)
    return creds


def create_app(config: CloudConfig | None = None) -> FastAPI:
    config = config or load_config()
    if not config.CLOUD_SECRET:
        raise RuntimeError("CLOUD_SECRET is empty: start the cloud with `eucasim up`, which creates it")
    db = Database(config.database_url("clc"))
    creds = bootstrap(config, db)
    # Each zone's CC and SC: registered on a host of their own, or the configured ones.
    directory = ZoneDirectory(config, db)
    zone_client = CcZoneClient(config, directory=directory)
    # Stored properties beat eucalyptus.conf: laid over the configuration before anything reads it.
    properties = Properties(config, db, zone_client)
    properties.load()
    directory.on_cluster = properties.push_to_zone
    # The CLC reads every account's manifests from Walrus as the cloud admin.
    walrus = HttpWalrus(config, creds.key)
    storage = ScStorageClient(config, directory=directory)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The instance reconciliation loop runs as long as the app serves.
        stop = asyncio.Event()
        task = asyncio.create_task(reconciler.run(stop))
        # Volumes and snapshots settle from what the SC reports (clc/volume_settler.py).
        volume_task = asyncio.create_task(volume_settler.run(stop))
        try:
            yield
        finally:
            stop.set()
            await task
            await volume_task
            await asyncio.to_thread(launches.stop)
            await asyncio.to_thread(network.stop)
            await asyncio.to_thread(volume_work.stop)
            zone_client.close()
            storage.close()
            walrus.close()
            console.close()

    app, recorder = make_service_app("clc", config.CLOUD_SECRET, config.LOG_LEVEL, lifespan=lifespan)
    network = NetworkSync(config, db, zone_client)
    launches = Launches(config, db, zone_client, recorder, network=network, storage=storage)
    volume_work = VolumeWork(db, storage, zone_client, recorder)
    volume_settler = VolumeSettler(config, db, storage, volume_work)
    reconciler = Reconciler(config, db, zone_client, launches, recorder, network=network,
                            disks_reported=volume_work.disks_reported)
    app.state.db = db
    clc_gauges(app.state.metrics, db)  # /metrics: instances by state
    app.state.config = config
    app.include_router(admin_router(db, app.state.internal_auth))
    app.include_router(services_router(config, directory, app.state.internal_auth))
    app.include_router(zone_services_router(directory, app.state.internal_auth))
    app.include_router(properties_router(properties, app.state.internal_auth))
    app.include_router(tiny_image_router(db, config, app.state.internal_auth))
    app.include_router(zone_events_router(config, reconciler, app.state.internal_auth))
    app.include_router(capacity_router(config, launches, app.state.internal_auth))
    console = install_console(app, config, db, recorder, directory)
    # Compile the codec for every implemented action now, not inside a user's first request.
    preload(implemented_actions())
    # A Describe over a thousand instances allocates some 100,000 dicts and lists; at CPython's
    # default gen-0 threshold (700) the collector then runs hundreds of times per call, each
    # time over a heap that botocore's model makes large: a third of such a call's CPU.
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
    endpoint = Ec2Endpoint(config, db, recorder, zones=zone_client, launches=launches,
                           walrus=walrus, network=network, storage=storage,
                           volumes=volume_work, settler=volume_settler,
                           metrics=app.state.metrics)
    # EC2 calls skip FastAPI's routing and http middleware (clc/ec2_endpoint.py, Ec2FrontDoor);
    # the routes stay, so other methods on these paths still get FastAPI's 405.
    app.add_middleware(Ec2FrontDoor, endpoint=endpoint)
    for path in sorted(EC2_PATHS):
        app.add_api_route(path, endpoint, methods=["GET", "POST"], include_in_schema=False)
    # After the EC2 routes, so /services/compute/ never reads as a metadata version.
    app.include_router(metadata_router(config, db))
    return app
