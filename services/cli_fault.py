"""`eucasim fault inject KIND TARGET` / `eucasim fault clear` / `eucasim fault list`: faults in
a running cloud, each through a real mechanism.

  node-down node-N         the NC process stops answering for the node (routes 503, left out
                           of its describe): the CC marks it down after 3 missed polls, and
                           after NODE_LOST_GRACE its instances are terminated
  node-slow node-N -s S    the node's hypervisor takes S seconds per call
  disk-full node-N | sc    the node's instance store refuses writes (ENOSPC): launches fail;
                           or the SC's: CreateVolume fails with InsufficientVolumeCapacity
  image-corrupt emi-…      the image's first bundle part is overwritten in Walrus (the
                           original is kept under $EUCASIM_HOME/faults and put back on clear)

  link-cut A-B             calls between services A and B (clc, walrus, sc, cc, nc) fail as
                           if the network dropped them (httpx.ConnectError in the caller)
  clock-skew SERVICE -s S  the service's clock runs S seconds ahead: its timers, and the
                           timestamps of its internal calls (more than 300 s off: refused)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from services.cli_calls import HomeOption, call_service, config_for
from services.config import CloudConfig
from services.messages.faults import (FAULTS_ROUTE, PROCESS_FAULTS_ROUTE, FaultList, InjectFault,
                                      InjectProcessFault, ProcessFaultList)

fault_app = typer.Typer(help="Inject faults into a running cloud and clear them.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

NODE_KINDS = ("node-down", "node-slow", "disk-full")
SERVICES = ("clc", "walrus", "sc", "cc", "nc")


class FaultError(Exception):
    pass


# -- node faults: the NC process's admin route ----------------------------------------------

def inject_node(call: Callable[..., Any], kind: str, target: str, seconds: float = 0.0) -> FaultList:
    if not target.startswith("node-"):
        raise FaultError(f"{kind} needs a simulated node as TARGET (node-N), not {target!r}")
    return call("POST", FAULTS_ROUTE, InjectFault(kind=kind, target=target, seconds=seconds), FaultList)  # type: ignore[arg-type]


def clear_node(call: Callable[..., Any], kind: str | None = None, target: str | None = None) -> FaultList:
    query = "&".join(f"{k}={v}" for k, v in (("kind", kind), ("target", target)) if v)
    return call("DELETE", FAULTS_ROUTE + (f"?{query}" if query else ""), None, FaultList)


# -- link-cut and clock-skew: every service's process-fault route ---------------------------

Caller = Callable[[str, str, str, Any, Any], Any]     # (service, method, path, body, response)


def cut_link(call: Caller, url_of: Callable[[str], str], link: str) -> None:
    a, sep, b = link.partition("-")
    if not sep or a not in SERVICES or b not in SERVICES or a == b:
        raise FaultError(f"link-cut needs two services as A-B ({', '.join(SERVICES)}), not {link!r}")
    call(a, "POST", PROCESS_FAULTS_ROUTE, InjectProcessFault(kind="link-cut", target=url_of(b)), ProcessFaultList)
    call(b, "POST", PROCESS_FAULTS_ROUTE, InjectProcessFault(kind="link-cut", target=url_of(a)), ProcessFaultList)


def skew_clock(call: Caller, service: str, seconds: float) -> None:
    if service not in SERVICES:
        raise FaultError(f"clock-skew needs a service ({', '.join(SERVICES)}), not {service!r}")
    call(service, "POST", PROCESS_FAULTS_ROUTE, InjectProcessFault(kind="clock-skew", seconds=seconds),
         ProcessFaultList)


def clear_processes(call: Caller) -> None:
    for service in SERVICES:
        call(service, "DELETE", PROCESS_FAULTS_ROUTE, None, ProcessFaultList)


# -- image-corrupt: a bundle part changes in Walrus -------------------------------------------

def _admin_clients(config: CloudConfig) -> tuple[Any, Any]:
    import boto3

    from services import credentials
    from services.bundles.upload import s3_client
    key = credentials.read(config.EUCASIM_HOME).key
    ec2 = boto3.client("ec2", endpoint_url=config.service_url("clc"), region_name=config.REGION,
                       aws_access_key_id=key.access_key, aws_secret_access_key=key.secret_key)
    return ec2, s3_client(config.service_url("walrus"), key, config.REGION)


def _first_part(config: CloudConfig, image_id: str) -> tuple[Any, str, str]:
    from services.bundles.manifest import parse_manifest
    ec2, s3 = _admin_clients(config)
    images = ec2.describe_images(ImageIds=[image_id])["Images"]
    if not images:
        raise FaultError(f"there is no image {image_id}")
    bucket, _, manifest_key = images[0]["ImageLocation"].partition("/")
    manifest = parse_manifest(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    folder = manifest_key.rpartition("/")[0]
    part = manifest.parts[0].filename
    return s3, bucket, f"{folder}/{part}" if folder else part


def _kept(config: CloudConfig, image_id: str) -> Path:
    return config.EUCASIM_HOME / "faults" / "image-corrupt" / image_id


def corrupt_image(config: CloudConfig, image_id: str) -> str:
    s3, bucket, key = _first_part(config, image_id)
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    kept = _kept(config, image_id)
    if not kept.exists():
        kept.mkdir(parents=True)
        (kept / "part").write_bytes(original)
        (kept / "where.json").write_text(json.dumps({"bucket": bucket, "key": key}))
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(b ^ 0xFF for b in original[:4096]) + original[4096:])
    return f"{bucket}/{key}"


def restore_images(config: CloudConfig) -> list[str]:
    root = config.EUCASIM_HOME / "faults" / "image-corrupt"
    restored = []
    for kept in sorted(root.iterdir()) if root.is_dir() else []:
        where = json.loads((kept / "where.json").read_text())
        _, s3 = _admin_clients(config)
        s3.put_object(Bucket=where["bucket"], Key=where["key"], Body=(kept / "part").read_bytes())
        for f in kept.iterdir():
            f.unlink()
        kept.rmdir()
        restored.append(kept.name)
    return restored


# -- the commands ---------------------------------------------------------------------------

def _nc_call(config: CloudConfig) -> Callable[..., Any]:
    return lambda method, path, body, response: call_service(config, "nc", method, path, body, response)


def _any_call(config: CloudConfig) -> Caller:
    return lambda service, method, path, body, response: call_service(config, service, method, path, body, response)


@fault_app.command()
def inject(kind: Annotated[str, typer.Argument(help="node-down, node-slow, disk-full, image-corrupt.")],
           target: Annotated[str, typer.Argument(help="node-N, or an image id for image-corrupt.")],
           seconds: Annotated[float, typer.Option("--seconds", "-s", help="node-slow: seconds per call; clock-skew: offset.")] = 2.0,
           home: HomeOption = None) -> None:
    """Inject a fault into the running cloud."""
    config = config_for(home)
    try:
        if kind == "disk-full" and target == "sc":
            _any_call(config)("sc", "POST", PROCESS_FAULTS_ROUTE, InjectProcessFault(kind="disk-full"),
                              ProcessFaultList)
            out.print("disk-full on the SC: new volumes are refused")
        elif kind in NODE_KINDS:
            listing = inject_node(_nc_call(config), kind, target, seconds if kind == "node-slow" else 0.0)
            out.print(f"{kind} on {target}; active: " + ", ".join(f"{f.kind} {f.target}" for f in listing.faults))
        elif kind == "image-corrupt":
            out.print(f"image-corrupt: {corrupt_image(config, target)} changed in Walrus")
        elif kind == "link-cut":
            cut_link(_any_call(config), config.service_url, target)
            out.print(f"link-cut: calls between {target.replace('-', ' and ')} fail")
        elif kind == "clock-skew":
            skew_clock(_any_call(config), target, seconds)
            out.print(f"clock-skew: the {target.upper()}'s clock runs {seconds:+g} s off")
        else:
            raise FaultError(f"unknown fault kind {kind!r} "
                             f"({', '.join((*NODE_KINDS, 'image-corrupt', 'link-cut', 'clock-skew'))})")
    except FaultError as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from None


@fault_app.command()
def clear(kind: Annotated[Optional[str], typer.Argument(help="Only this kind (default: all).")] = None,
          target: Annotated[Optional[str], typer.Argument(help="Only this target.")] = None,
          home: HomeOption = None) -> None:
    """Clear injected faults (all, or those of KIND [on TARGET])."""
    config = config_for(home)
    if kind in (None, *NODE_KINDS):
        clear_node(_nc_call(config), kind, target)
    if kind in (None, "link-cut", "clock-skew"):
        clear_processes(_any_call(config))
    if kind in (None, "image-corrupt"):
        for image in restore_images(config):
            out.print(f"image-corrupt: {image} restored")
    out.print("cleared")


@fault_app.command("list")
def list_faults(home: HomeOption = None) -> None:
    """The faults active on the NC process."""
    config = config_for(home)
    for f in call_service(config, "nc", "GET", FAULTS_ROUTE, None, FaultList).faults:
        out.print(f"{f.kind}\t{f.target}\t{f.seconds:g}")


def hook_for(cloud: Any) -> Callable[[Any, bool], None]:
    """For `eucasim experiment --fault`: inject (True) or clear (False) a ScheduledFault in
    the experiment's cloud."""
    def hook(fault: Any, on: bool) -> None:
        if fault.kind == "disk-full" and fault.target == "sc":
            client = cloud.internal("sc")
            try:
                if on:
                    client.call("POST", PROCESS_FAULTS_ROUTE, InjectProcessFault(kind="disk-full"), ProcessFaultList)
                else:
                    client.call("DELETE", PROCESS_FAULTS_ROUTE, None, ProcessFaultList)
            finally:
                client.close()
        elif fault.kind in NODE_KINDS:
            target, _, seconds = fault.target.partition("=")
            client = cloud.internal("nc")
            try:
                call = lambda m, p, b, r: client.call(m, p, b, r)  # noqa: E731
                if on:
                    inject_node(call, fault.kind, target, float(seconds or 0))
                else:
                    clear_node(call, fault.kind, target)
            finally:
                client.close()
        elif fault.kind == "image-corrupt":
            corrupt_image(cloud.config, fault.target) if on else restore_images(cloud.config)
        elif fault.kind in ("link-cut", "clock-skew"):
            def call(service: str, method: str, path: str, body: Any, response: Any) -> Any:
                client = cloud.internal(service)
                try:
                    return client.call(method, path, body, response)
                finally:
                    client.close()
            target, _, seconds = fault.target.partition("=")
            if not on:
                clear_processes(call)
            elif fault.kind == "link-cut":
                cut_link(call, cloud.config.service_url, target)
            else:
                skew_clock(call, target, float(seconds or 0))
        else:
            raise FaultError(f"{fault.kind} cannot be scheduled (not implemented yet)")
    return hook
