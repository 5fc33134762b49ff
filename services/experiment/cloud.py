"""A private cloud for one experiment run: every service as `eucasim up` starts it, on free
ports, in its own EUCASIM_HOME, with N simulated nodes on the in-memory hypervisor (fake://)
of one NC process, the policy under test and timers at the experiment's speed."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from services import credentials, launcher, readiness
from services.config import CloudConfig, load_config
from services.internal import InternalClient
from services.messages.identity import AccessKeyInfo

SERVICES = ("clc", "walrus", "sc", "cc", "nc")


@dataclass(frozen=True)
class NodeShape:
    cores: int = 8
    memory_mb: int = 16384
    disk_gb: int = 500

    @classmethod
    def parse(cls, text: str) -> NodeShape:
        """"cores,mem,disk" (memory in MB, disk in GB)."""
        try:
            cores, memory, disk = (int(p) for p in text.split(","))
        except ValueError:
            raise ValueError(f"--node-shape {text!r}: expected CORES,MEM_MB,DISK_GB") from None
        if min(cores, memory, disk) < 1:
            raise ValueError(f"--node-shape {text!r}: every figure must be at least 1")
        return cls(cores, memory, disk)


@dataclass
class ExperimentCloud:
    config: CloudConfig
    services: list[launcher.RunningService]
    admin: AccessKeyInfo
    image_id: str

    @property
    def clc_url(self) -> str:
        return self.config.service_url("clc")

    def internal(self, service: str, timeout: float = 60) -> InternalClient:
        return InternalClient(self.config.service_url(service), self.config.CLOUD_SECRET, timeout=timeout)


@contextmanager
def experiment_cloud(nodes: int, shape: NodeShape, policy: str, settings: dict[str, str],
                     home: Path | None = None) -> Iterator[ExperimentCloud]:
    with tempfile.TemporaryDirectory(prefix="eucasim-experiment-") as scratch:
        where = Path(home) if home is not None else Path(scratch)
        env = {"EUCASIM_HOME": str(where.absolute()), "PUBLIC_HOST": "127.0.0.1", "BIND_ADDRESS": "127.0.0.1",
               # SYSTEM networking: no private network per security group, whose 32 addresses
               # would refuse the 30th instance; the network is not what is measured.
               "HYPERVISOR_URI": "fake://", "VNET_MODE": "SYSTEM", "SCHEDPOLICY": policy, "NC_SIMULATED_NODES": str(nodes),
               "MAX_CORES": str(shape.cores), "MAX_MEM": str(shape.memory_mb), "MAX_DISK": str(shape.disk_gb),
               **settings}
        any_port = {f"{s.upper()}_PORT": 0 for s in SERVICES}
        config = launcher.ensure_home(load_config(**any_port, **{k: v for k, v in env.items()
                                                                 if k in CloudConfig.model_fields}))
        env["CLOUD_SECRET"] = config.CLOUD_SECRET
        specs = launcher.plan(config, nodes)
        for spec in specs:
            spec.env = {**env, **spec.env}
        services = launcher.start(config, specs, timeout=max(120.0, nodes / 50))
        try:
            readiness.wait_nodes_up(config, nodes, timeout=max(60.0, nodes / 20))
            image = readiness.register_tiny_image(config, services)
            if image is None:
                raise RuntimeError("the cloud has no CLC and Walrus to register an image with")
            yield ExperimentCloud(config, services, credentials.read(config.EUCASIM_HOME).key, image)
        finally:
            launcher.stop(services)

