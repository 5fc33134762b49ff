"""Configuration in the form of Eucalyptus's `eucalyptus.conf`: one `KEY="value"` per line,
with the environment overriding the file, validated by pydantic-settings.

The file is `$EUCASIM_CONF`, else `$EUCASIM_HOME/eucalyptus.conf`; both may be absent, in which
case the defaults below give the simulated one-machine cloud."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class ConfigError(Exception):
    """A configuration value that cannot be used; the message names the key."""


# How long a service keeps an idle keep-alive connection open (uvicorn's --timeout-keep-alive,
# set by the launcher). uvicorn's own 5 s is shorter than a pooled connection in boto3 or the
# AWS CLI sits idle between two calls, so the server closed connections just as clients reused
# them (ConnectionClosedError under load, benchmarks/README.md); AWS's load balancers keep idle
# connections 60 s.
KEEP_ALIVE_SECONDS = 75


def read_conf_file(path: Path) -> dict[str, str]:
    """Parse `KEY="value"` lines the way a shell would, ignoring comments and blank lines."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export "):]
        key, sep, raw = stripped.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"{path}:{number}: expected KEY=\"value\", got {line!r}")
        try:
            words = shlex.split(raw, comments=True)
        except ValueError as exc:
            raise ConfigError(f"{path}:{number}: {key.strip()}: {exc}") from exc
        values[key.strip()] = " ".join(words)
    return values


def default_home() -> Path:
    return Path(os.environ.get("EUCASIM_HOME", "var")).absolute()


def conf_path() -> Path:
    explicit = os.environ.get("EUCASIM_CONF")
    return Path(explicit) if explicit else default_home() / "eucalyptus.conf"


class _ConfFileSource(PydanticBaseSettingsSource):
    """Values from eucalyptus.conf; ranked below the environment."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = conf_path()
        self._values = read_conf_file(path) if path.is_file() else {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        names = set(self.settings_cls.model_fields)
        return {k: v for k, v in self._values.items() if k in names and v != ""}


# The names cc/scheduler.py's POLICIES answers to (tests/experiment/test_policy_leastloaded.py
# keeps the two equal): a policy added there is named here too, so every service refuses an
# unknown SCHEDPOLICY at start without importing the CC.
SCHED_POLICIES = ("GREEDY", "ROUNDROBIN", "POWERSAVE", "LEASTLOADED")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class CloudConfig(BaseSettings):
    """Every key a eucasim service reads. Eucalyptus's names where one exists."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True)

    EUCASIM_HOME: Path = Field(default_factory=default_home)
    BIND_ADDRESS: str = "127.0.0.1"
    # The address other services and clients use to reach this host.
    PUBLIC_HOST: str = "127.0.0.1"
    # 0: any free port; `eucasim up` binds it first and tells every service which (launcher.py).
    CLC_PORT: int = Field(8773, ge=0, le=65535)
    CC_PORT: int = Field(8774, ge=0, le=65535)
    NC_PORT: int = Field(8775, ge=0, le=65535)
    SC_PORT: int = Field(8776, ge=0, le=65535)
    WALRUS_PORT: int = Field(8777, ge=0, le=65535)
    # Where to reach the other services when they live on another host; empty means this host.
    CLC_URL: str = ""
    CC_URL: str = ""
    SC_URL: str = ""
    NC_URL: str = ""
    WALRUS_URL: str = ""

    REGION: str = "eucalyptus"
    ZONES: str = "zone-1"
    # "{service}" and "{home}" are filled in, so one value serves every service on a host.
    DATABASE_URL: str = "sqlite:///{home}/{service}.db"
    # The shared secret that signs every internal call; created at first start when empty.
    CLOUD_SECRET: str = ""

    HYPERVISOR_URI: str = "test:///default"
    HYPERVISOR_DOMAIN_TYPE: Literal["kvm", "qemu", "test"] = "kvm"
    MAX_CORES: int | None = Field(None, ge=1)
    MAX_MEM: int | None = Field(None, ge=1, description="MB")
    MAX_DISK: int | None = Field(None, ge=1, description="GB")
    INSTANCE_PATH: Path | None = None
    NC_CACHE_SIZE: int = Field(10240, ge=0, description="MB")
    # This node's id in reports; empty: "<PUBLIC_HOST>:<NC_PORT>", unique per NC process.
    NC_NODE_ID: str = ""
    # Simulated mode: how many nodes one NC process serves (under /node-1 … /node-N), and
    # optional per-node MAX_CORES/MAX_MEM/MAX_DISK as comma lists (entry k is node-k; a missing
    # or empty entry falls back to MAX_CORES/MAX_MEM/MAX_DISK).
    NC_SIMULATED_NODES: int = Field(1, ge=1)
    NC_SIMULATED_MAX_CORES: str = ""
    NC_SIMULATED_MAX_MEM: str = ""
    NC_SIMULATED_MAX_DISK: str = ""

    SCHEDPOLICY: str = "ROUNDROBIN"
    NODES: str = ""
    NC_POLLING_FREQUENCY: float = Field(6.0, gt=0)
    POWER_IDLETHRESH: float = Field(300.0, gt=0)
    POWER_WAKE_COMMAND: str = ""
    # A node down this long (seconds since it last answered) is lost: the CC reports its
    # instances terminated, with a reason naming it. Back within it, they carry on running.
    NODE_LOST_GRACE: float = Field(600.0, gt=0)
    # The CLC fails an instance that is still pending after this many seconds, with its reason.
    INSTANCE_PENDING_TIMEOUT: float = Field(600.0, gt=0)

    VNET_MODE: Literal["MANAGED", "MANAGED-NOVLAN", "SYSTEM"] = "MANAGED"
    VNET_TRANSPORT: Literal["vlan", "vxlan"] = "vxlan"
    VNET_SUBNET: str = "172.31.0.0"
    VNET_NETMASK: str = "255.255.0.0"
    VNET_ADDRSPERNET: int = Field(32, ge=4)
    VNET_PUBLICIPS: str = "10.111.200.1-10.111.200.254"
    VNET_DNS: str = "8.8.8.8"
    VNET_PRIVINTERFACE: str = "eth0"
    VNET_PUBINTERFACE: str = "eth0"
    VNET_BRIDGE: str = "br0"
    # How the CC applies its network plan: `plan` records it (simulated mode, no root),
    # `linux` builds it with iproute2 (pyroute2), iptables-restore and dnsmasq.
    VNET_DRIVER: Literal["plan", "linux"] = "plan"
    # This host's address on the network between CC and nodes, where VXLAN tunnels end;
    # empty: PUBLIC_HOST.
    VNET_LOCALIP: str = ""
    # Where 169.254.169.254:80 is sent (the CLC's address and port as the CC reaches it);
    # empty: the CLC's PUBLIC_HOST and CLC_PORT.
    VNET_METADATA: str = ""

    # The storage controller (sc/): where its sparse volume files live (empty: $EUCASIM_HOME/
    # volumes), the zone's room in GiB (empty: the free space of that disk when the SC starts
    # plus what its volumes already take), and how nodes reach a volume: `local` (the node opens
    # the file's path: SC and NC on one host) or `nbd` (qemu-nbd serves it on a TCP port).
    SC_VOLUME_PATH: Path | None = None
    SC_MAX_STORAGE: int | None = Field(None, ge=1, description="GiB")
    SC_EXPORT: Literal["local", "nbd"] = "local"
    # Where volumes live: `file` (the sparse files above) or `rbd` (an image each in a Ceph
    # pool, snapshots taken as RBD snapshots, exported to nodes as QEMU's own `rbd` network
    # disks: SC_EXPORT does not apply). SC_CEPH_CONF is the ceph.conf the SC's `rbd` commands
    # read (its keyring holds client.SC_CEPH_USER's key), SC_CEPH_POOL the pool of the
    # zone's images. A node reads the same conf and keyring (NC_CEPH_KEYRING overrides) to
    # give libvirt the user's key as a secret.
    SC_BACKEND: Literal["file", "rbd"] = "file"
    SC_CEPH_CONF: Path = Path("/etc/ceph/ceph.conf")
    SC_CEPH_POOL: str = "rbd"
    SC_CEPH_USER: str = "admin"
    NC_CEPH_KEYRING: Path | None = None
    # The address qemu-nbd binds (empty: PUBLIC_HOST, which other hosts reach) and the TCP
    # ports it may take, "first-last".
    SC_NBD_ADDRESS: str = ""
    SC_NBD_PORTS: str = "10809-10999"
    # Snapshots go to Walrus in parts of this many MiB, each with its own CRC32C. Each part
    # is a request, which costs the SC and Walrus CPU beside its bytes: 16 MiB parts took
    # 0.02-0.04 s less CPU than 8 MiB ones for 100 MiB (benchmarks/README.md, SC snapshots).
    SC_SNAPSHOT_PART_MIB: int = Field(16, ge=1, le=512)

    # Serve the public endpoints (Walrus, the CLC) over HTTPS with a certificate from the
    # cloud's own CA, created under $EUCASIM_HOME/tls at first start (services/tls.py).
    PUBLIC_HTTPS: bool = False
    # A JSON list of access keys (AccessKeyInfo fields) for a Walrus that runs without a CLC;
    # empty means Walrus asks the CLC.
    WALRUS_ACCESS_KEYS: str = ""
    # Where Walrus keeps object bodies (walrus/blobs.py): `file` (under $EUCASIM_HOME/walrus/
    # objects) or `s3`, a bucket of an existing S3 cluster (Ceph RGW, MinIO, AWS S3) reached at
    # WALRUS_S3_ENDPOINT (path-style) with these keys; the bucket is made if missing and is
    # Walrus's alone. Accounts, ACLs, policies, versions and ETags stay in Walrus's database.
    WALRUS_BACKEND: Literal["file", "s3"] = "file"
    WALRUS_S3_ENDPOINT: str = ""
    WALRUS_S3_ACCESS_KEY: str = ""
    WALRUS_S3_SECRET_KEY: str = ""
    WALRUS_S3_BUCKET: str = "eucasim-walrus"
    WALRUS_S3_REGION: str = "us-east-1"
    # Bytes of small bodies (64 KiB or less each) Walrus on `s3` keeps in memory as it writes
    # or reads them, so that their GETs skip the cluster (walrus/blob_cache.py); 0 keeps none.
    WALRUS_S3_CACHE_BYTES: int = 64 * 1024 * 1024
    # How much each service writes to its log (services/logs.py): DEBUG, INFO, WARNING, ERROR.
    LOG_LEVEL: str = "INFO"

    @field_validator("SCHEDPOLICY")
    @classmethod
    def _known_policy(cls, value: str) -> str:
        if value not in SCHED_POLICIES:
            raise ValueError(f"not a scheduling policy ({', '.join(SCHED_POLICIES)})")
        return value

    @field_validator("LOG_LEVEL")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"not a log level ({', '.join(LOG_LEVELS)})")
        return value.upper()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _ConfFileSource(settings_cls))

    @property
    def zones(self) -> list[str]:
        return [z for z in self.ZONES.replace(",", " ").split() if z]

    @property
    def nodes(self) -> list[str]:
        return [n for n in self.NODES.replace(",", " ").split() if n]

    def database_url(self, service: str) -> str:
        return self.DATABASE_URL.format(service=service, home=self.EUCASIM_HOME)

    def service_url(self, service: str) -> str:
        explicit = getattr(self, f"{service.upper()}_URL")
        if explicit:
            return explicit.rstrip("/")
        port = getattr(self, f"{service.upper()}_PORT")
        # Only the public endpoints (EC2 and S3) move to HTTPS; the rest speak plain HTTP.
        scheme = "https" if self.PUBLIC_HTTPS and service in ("clc", "walrus") else "http"
        return f"{scheme}://{self.PUBLIC_HOST}:{port}"

    @property
    def ca_bundle(self) -> Path:
        """The cloud CA's certificate (services.tls creates it), which clients must trust when
        PUBLIC_HTTPS is on."""
        return self.EUCASIM_HOME / "tls" / "ca.pem"


SECRET_FILE = "cloud-secret"


def load_config(**overrides: Any) -> CloudConfig:
    """Read the configuration, turning pydantic's errors into one that names each bad key.
    An empty CLOUD_SECRET is taken from `$EUCASIM_HOME/cloud-secret`, which `eucasim up`
    creates on the first start."""
    try:
        config = CloudConfig(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"])
            problems.append(f"{key}={error.get('input')!r}: {error['msg']}")
        raise ConfigError("bad configuration: " + "; ".join(problems)) from None
    if config.PUBLIC_HTTPS:
        # Every service calls the CLC and Walrus too (httpx, botocore): make this process trust
        # the cloud's own CA unless the operator chose a bundle.
        os.environ.setdefault("SSL_CERT_FILE", str(config.ca_bundle))
        os.environ.setdefault("AWS_CA_BUNDLE", str(config.ca_bundle))
    secret_file = config.EUCASIM_HOME / SECRET_FILE
    if not config.CLOUD_SECRET and secret_file.is_file():
        config.CLOUD_SECRET = secret_file.read_text().strip()
    return config
