"""The whole cloud for end-to-end tests: CLC, Walrus, a multi-node simulated NC and the CC as
real processes, started by the launcher exactly as `eucasim up` starts them with every port
configured as 0 (the launcher binds them all before the first child starts), with a temporary
EUCASIM_HOME and a short polling period. The tests reach the cloud only as users and operators
do: boto3, the AWS CLI and the services' internal APIs, never another service's tables.

    with running_cloud(tmp_path, nodes=3, SCHEDPOLICY="ROUNDROBIN") as cloud:
        image = cloud.register_image()                  # bundled, uploaded, registered, public
        ec2 = cloud.ec2()                               # boto3, admin account
        ...
        cloud.booked_cores()                            # {node id: cores booked} from the CC

Settings are passed to every process through its environment (which beats any
eucalyptus.conf), so the test process's own environment cannot leak in."""

from __future__ import annotations

from tests.support import EMPTY_AWS_FILE

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from services import credentials, launcher, readiness
from services.config import CloudConfig, load_config
from services.internal import InternalClient
from services.messages.admin import AccountCreated, NewAccount
from services.messages.cluster import ClusterInstanceList, NodeList
from services.messages.identity import AccessKeyInfo
from tests.support.waiting import wait_for as wait_until

SECRET = "test-cloud-secret-e2e"


@dataclass
class Cloud:
    home: Path
    config: CloudConfig
    services: list[launcher.RunningService]
    admin: AccessKeyInfo

    @property
    def clc_url(self) -> str:
        return self.config.service_url("clc")

    @property
    def cc_url(self) -> str:
        return self.config.service_url("cc")

    # -- clients ---------------------------------------------------------------------------------

    def ec2(self, key: AccessKeyInfo | None = None) -> Any:
        key = key or self.admin
        return boto3.client("ec2", endpoint_url=self.clc_url, region_name=self.config.REGION,
                            aws_access_key_id=key.access_key, aws_secret_access_key=key.secret_key,
                            config=Config(retries={"max_attempts": 1}))

    def cli_env(self, key: AccessKeyInfo | None = None) -> dict[str, str]:
        key = key or self.admin
        return {**os.environ, "AWS_ACCESS_KEY_ID": key.access_key,
                "AWS_SECRET_ACCESS_KEY": key.secret_key, "AWS_DEFAULT_REGION": self.config.REGION,
                "AWS_ENDPOINT_URL_EC2": self.clc_url, "AWS_MAX_ATTEMPTS": "1",
                "AWS_CONFIG_FILE": EMPTY_AWS_FILE, "AWS_SHARED_CREDENTIALS_FILE": EMPTY_AWS_FILE}

    def internal(self, service: str) -> InternalClient:
        return InternalClient(self.config.service_url(service), SECRET, timeout=30)

    def new_account(self, name: str) -> AccessKeyInfo:
        client = self.internal("clc")
        try:
            return client.call("POST", "/internal/admin/accounts", NewAccount(name=name), AccountCreated).key
        finally:
            client.close()

    # -- state -----------------------------------------------------------------------------------

    def register_image(self, owner: AccessKeyInfo | None = None, public: bool = True,
                       shared_with: list[str] | None = None, bucket: str = "test-images") -> str:
        """A machine image of `owner` (default: the admin), bundled, uploaded and registered
        (upload_image), then made public and shared with `shared_with` as asked."""
        owner = owner or self.admin
        image_id = self.upload_image("machine", owner, bucket=bucket)
        self.set_launch_permission(image_id, owner, public=public, shared_with=shared_with or [])
        return image_id

    def upload_image(self, kind: str = "machine", owner: AccessKeyInfo | None = None,
                     kernel_id: str | None = None, ramdisk_id: str | None = None,
                     bucket: str = "test-images") -> str:
        """What a user does: bundle a small image file, upload the parts to Walrus (into
        `bucket`, which must be the owner's or free) and call RegisterImage; the image comes
        back as an emi-/eki-/eri- id."""
        import tempfile

        from services import pki
        from services.bundles import build_bundle
        from services.bundles.upload import s3_client, upload_bundle

        owner = owner or self.admin
        name = f"{kind}-{secrets.token_hex(4)}"
        cloud_ca = pki.ensure_cloud_ca(self.home)
        user = pki.ensure_user_certificate(self.home, owner.account_id, owner.user_name)
        with tempfile.TemporaryDirectory(prefix="eucasim-image-") as folder:
            raw = Path(folder) / f"{name}.img"
            raw.write_bytes(secrets.token_bytes(64 * 1024))
            bundle = build_bundle(raw, Path(folder) / "bundle", account_id=owner.account_id,
                                  cloud_cert=cloud_ca.certificate(), user_cert=user.certificate(),
                                  user_key=user.private_key(), kind=kind, name=name,
                                  kernel_id=kernel_id, ramdisk_id=ramdisk_id)
            location = upload_bundle(s3_client(self.config.service_url("walrus"), owner,
                                               self.config.REGION), bundle, bucket)
        return str(self.ec2(owner).register_image(ImageLocation=location, Name=name)["ImageId"])

    def set_launch_permission(self, image_id: str, owner: AccessKeyInfo | None = None, *,
                              public: bool | None = None, shared_with: list[str] = []) -> None:  # noqa: B006 (read only)
        """Who may launch an image: ModifyImageAttribute, as its owner calls it."""
        changes: dict[str, list[dict[str, str]]] = {"Add": [], "Remove": []}
        if public is not None:
            changes["Add" if public else "Remove"].append({"Group": "all"})
        changes["Add"] += [{"UserId": account} for account in shared_with]
        changes = {op: items for op, items in changes.items() if items}
        if changes:
            self.ec2(owner).modify_image_attribute(ImageId=image_id, Attribute="launchPermission",
                                                   LaunchPermission=changes)

    def nodes(self) -> NodeList:
        client = self.internal("cc")
        try:
            return client.call("GET", "/internal/nodes", None, NodeList)
        finally:
            client.close()

    def booked_cores(self) -> dict[str, int]:
        """Cores each node has booked (max - free), as the CC sees them now."""
        return {n.name: (n.max.cores - n.free.cores) if n.max and n.free else 0
                for n in self.nodes().nodes}

    def zone_instances(self) -> ClusterInstanceList:
        client = self.internal("cc")
        try:
            return client.call("GET", "/internal/instances", None, ClusterInstanceList)
        finally:
            client.close()

    def nodes_of(self, instance_ids: list[str], live: bool = False) -> dict[str, str]:
        """{instance id: the node it runs on} for those the CC knows (only the not yet
        terminated ones with live=True)."""
        return {i.instance_id: i.node_id for i in self.zone_instances().instances
                if i.instance_id in instance_ids and not (live and i.state == "terminated")}

    def live_cores(self) -> dict[str, int]:
        """Cores of the instances each node runs and has not terminated, as the CC sees them:
        what booked_cores() comes to once every change has reached the CC."""
        cores = dict.fromkeys((n.name for n in self.nodes().nodes), 0)
        for instance in self.zone_instances().instances:
            if instance.state != "terminated":
                cores[instance.node_id] = cores.get(instance.node_id, 0) + instance.vm.cpu
        return cores

    def service(self, name: str) -> launcher.RunningService:
        return next(s for s in self.services if s.spec.name == name)

    def kill(self, name: str) -> None:
        """SIGKILL one service: a crash, nothing flushed or cleaned up."""
        process = self.service(name).process
        if process.poll() is None:
            process.kill()
        process.wait()

    def stop(self, name: str) -> None:
        """SIGTERM one service: a clean stop, as Ctrl-C on `eucasim up` gives."""
        launcher.stop([self.service(name)])

    def restart(self, name: str) -> None:
        """Start a killed (or stopped) service again on its port and its state, as the
        launcher started it, and wait until it answers."""
        old = self.service(name)
        spec = old.spec
        spec.listener = launcher.listen(self.config.BIND_ADDRESS, spec.port)
        # start() tells a child the ports of the specs it is given: here every service's.
        spec.env = {**spec.env, **{f"{s.spec.name.upper()}_PORT": str(s.spec.port)
                                   for s in self.services}}
        [new] = launcher.start(self.config, [spec], timeout=90)
        self.services[self.services.index(old)] = new

    def metadata(self, instance_id: str, path: str, method: str = "GET",
                 headers: dict[str, str] | None = None) -> httpx.Response:
        """Ask the metadata service as `instance_id` (simulated mode's instance header)."""
        return httpx.request(method, f"{self.clc_url}{path}",
                             headers={"X-Eucasim-Instance-Id": instance_id, **(headers or {})},
                             timeout=10)


SERVICES = ("clc", "walrus", "sc", "cc", "nc")


def _settings(home: Path, nodes: int, overrides: dict[str, object]) -> dict[str, str]:
    settings: dict[str, object] = {
        "EUCASIM_HOME": home, "CLOUD_SECRET": SECRET, "PUBLIC_HOST": "127.0.0.1",
        "BIND_ADDRESS": "127.0.0.1", "HYPERVISOR_URI": "test:///default",
        "NC_POLLING_FREQUENCY": 0.5, "NC_SIMULATED_NODES": nodes, "SCHEDPOLICY": "ROUNDROBIN",
        "MAX_CORES": 8, "MAX_MEM": 16384, "MAX_DISK": 500, **overrides}
    return {k: str(v) for k, v in settings.items()}


@contextmanager
def running_cloud(home: Path, nodes: int = 2, **overrides: object) -> Iterator[Cloud]:
    """Start the cloud; `overrides` are eucalyptus.conf keys (MAX_CORES, SCHEDPOLICY, …)."""
    home = Path(home).absolute()
    env = _settings(home, nodes, overrides)
    any_port = {f"{service.upper()}_PORT": 0 for service in SERVICES}
    config = load_config(**any_port, **{k: v for k, v in env.items() if k in CloudConfig.model_fields})
    # plan() binds every port now and writes it into config; start() tells each child all of them.
    specs = launcher.plan(config, nodes)
    for spec in specs:
        spec.env = {**env, **spec.env}
    services = launcher.start(config, specs, timeout=90)
    try:
        cloud = Cloud(home=home, config=config, services=services,
                      admin=credentials.read(home).key)
        # The CC answers before its first poll of the nodes; wait until every node is up.
        wait_until(lambda: [n for n in cloud.nodes().nodes if n.state == "up"].__len__() >= nodes,
                   timeout=30, what="every node up in the CC")
        # ... and in the CLC's capacity view, which RunInstances is admitted against: a launch
        # before the CC's push reached it was refused "only 0 fit" (seen under two workers).
        readiness.wait_ready(config, services, nodes, timeout=60)
        yield cloud
    finally:
        launcher.stop(services)
