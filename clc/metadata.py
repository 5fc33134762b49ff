"""The instance metadata service, served by the CLC as EC2 serves it at 169.254.169.254:

    GET /latest/meta-data/…            the tree below (directories list their entries, one a line,
                                       sub-directories with a trailing `/`)
    GET /latest/user-data              the user data as given at launch (decoded), 404 if none
    GET /latest/dynamic/instance-identity/document     the JSON identity document
    PUT /latest/api/token              IMDSv2: header X-aws-ec2-metadata-token-ttl-seconds
                                       (1-21600) -> a token for the X-aws-ec2-metadata-token header

The caller is identified by its source address (an instance's private or public IP), as in
Eucalyptus. Simulated instances have no address to call from, so in simulated mode only
(HYPERVISOR_URI `test:…` with the `plan` network driver) a caller may name the instance with
the header `X-Eucasim-Instance-Id: i-…`; any other mode ignores that header. With the `linux`
driver even test-driver instances have a real network, and a header would let one read
another's metadata.

Tokens are stateless: the instance id and expiry, signed with the cloud secret, so a token is
good only for the instance that asked for it and only until it expires. Requests without a
token are answered (IMDSv1); a request with a bad or expired token gets 401."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import or_, select

from clc.instance_view import private_dns, public_dns
from clc.models.images import Image
from clc.models.instances import Instance, InstanceGroup
from clc.models.resources import KeyPair
from clc.volumes import attached_to
from services.clock import aware
from services.config import CloudConfig
from services.db import Database

INSTANCE_HEADER = "x-eucasim-instance-id"
TOKEN_HEADER = "x-aws-ec2-metadata-token"
TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds"
MAX_TTL = 21600
LIVE = ("pending", "running", "shutting-down")
TEXT = "text/plain"
VERSION = re.compile(r"^(latest|\d{4}-\d{2}-\d{2})$")
NOT_FOUND = ("<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<!DOCTYPE html>\n<html><head>"
             "<title>404 - Not Found</title></head><body><h1>404 - Not Found</h1></body></html>\n")

Tree = dict[str, Any]


def _not_found() -> Response:
    return Response(NOT_FOUND, 404, media_type="text/html")


class Tokens:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"imds-token\n" + secret.encode()).digest()

    def issue(self, instance_id: str, ttl: int) -> str:
        body = base64.urlsafe_b64encode(json.dumps({"i": instance_id, "e": int(time.time()) + ttl}).encode())
        mac = hmac.new(self._key, body, hashlib.sha256).digest()
        return (body + b"." + base64.urlsafe_b64encode(mac)).decode()

    def valid_for(self, token: str, instance_id: str) -> bool:
        try:
            body, _, mac = token.encode().partition(b".")
            expected = hmac.new(self._key, body, hashlib.sha256).digest()
            if not hmac.compare_digest(base64.urlsafe_b64decode(mac), expected):
                return False
            data = json.loads(base64.urlsafe_b64decode(body))
        except (binascii.Error, ValueError):
            return False
        return data.get("i") == instance_id and int(data.get("e", 0)) >= time.time()


def _tree(config: CloudConfig, instance: Instance, groups: list[str], key: KeyPair | None,
          image: Image | None, ebs_devices: list[str] | None = None) -> Tree:
    tree: Tree = {
        "ami-id": instance.image_id, "ami-launch-index": str(instance.launch_index),
        "ami-manifest-path": image.location if image else "(unknown)",
        "block-device-mapping": {"ami": "sda1", "root": "/dev/sda1", "ephemeral0": "sda2",
                                 "swap": "sda3",
                                 # EBS volumes attached now, ebs1, ebs2, … as EC2 numbers them.
                                 **{f"ebs{n}": device.removeprefix("/dev/")
                                    for n, device in enumerate(ebs_devices or [], start=1)}},
        "hostname": private_dns(instance) or instance.id,
        "instance-id": instance.id, "instance-type": instance.instance_type,
        "local-hostname": private_dns(instance) or instance.id,
        "local-ipv4": instance.private_ip or "", "mac": instance.mac or "",
        "placement": {"availability-zone": instance.zone, "region": config.REGION},
        "public-hostname": public_dns(instance), "public-ipv4": instance.public_ip or "",
        "reservation-id": instance.reservation_id, "security-groups": "\n".join(groups),
    }
    if instance.kernel_id:
        tree["kernel-id"] = instance.kernel_id
    if instance.ramdisk_id:
        tree["ramdisk-id"] = instance.ramdisk_id
    if key is not None:
        tree["public-keys"] = {f"0={key.name}": {"openssh-key": key.public_key.strip() + "\n"}}
    return tree


def _walk(tree: Tree, path: str) -> Any:
    node: Any = tree
    for part in [p for p in path.split("/") if p]:
        if not isinstance(node, dict):
            return None
        if part in node:
            node = node[part]
            continue
        # public-keys/0/… : an entry `0=name` is reached by its index alone.
        matches = [k for k in node if k.split("=", 1)[0] == part]
        if not matches:
            return None
        node = node[matches[0]]
    return node


def _listing(node: Tree) -> str:
    return "\n".join(f"{k}/" if isinstance(v, dict) and "=" not in k else k for k, v in node.items())


def _identity_document(config: CloudConfig, instance: Instance) -> dict[str, Any]:
    launched = aware(instance.launched_at)
    return {
        "accountId": instance.account_id, "architecture": "x86_64",
        "availabilityZone": instance.zone, "billingProducts": None, "devpayProductCodes": None,
        "marketplaceProductCodes": None, "imageId": instance.image_id,
        "instanceId": instance.id, "instanceType": instance.instance_type,
        "kernelId": instance.kernel_id, "pendingTime": launched.strftime("%Y-%m-%dT%H:%M:%SZ") if launched else None,
        "privateIp": instance.private_ip, "ramdiskId": instance.ramdisk_id,
        "region": config.REGION, "version": "2017-09-30",
    }


def metadata_router(config: CloudConfig, db: Database) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    tokens = Tokens(config.CLOUD_SECRET)
    simulated = config.HYPERVISOR_URI.startswith("test:") and config.VNET_DRIVER == "plan"

    def caller(request: Request) -> Instance | None:
        with db.session() as session:
            query = select(Instance).where(Instance.state.in_(LIVE))
            named = request.headers.get(INSTANCE_HEADER)
            if simulated and named:
                return session.scalar(query.where(Instance.id == named))
            host = request.client.host if request.client else ""
            return session.scalar(query.where(or_(Instance.private_ip == host, Instance.public_ip == host))
                                  .order_by(Instance.launched_at.desc()))

    def authorised(request: Request, version: str) -> tuple[Instance | None, Response | None]:
        instance = caller(request) if VERSION.match(version) else None
        if instance is None:
            return None, _not_found()
        token = request.headers.get(TOKEN_HEADER)
        if token is not None and not tokens.valid_for(token, instance.id):
            return None, Response("", 401)
        return instance, None

    @router.put("/latest/api/token")
    def new_token(request: Request) -> Response:
        if "x-forwarded-for" in request.headers:  # EC2 refuses tokens through proxies
            return Response("", 403)
        raw = request.headers.get(TTL_HEADER, "")
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_TTL:
            return Response("", 400)
        instance = caller(request)
        if instance is None:
            return _not_found()
        return Response(tokens.issue(instance.id, int(raw)), media_type=TEXT, headers={TTL_HEADER: raw})

    @router.get("/{version}/")
    def categories(version: str, request: Request) -> Response:
        _, refused = authorised(request, version)
        return refused or Response("dynamic\nmeta-data\nuser-data", media_type=TEXT)

    @router.get("/{version}/meta-data")
    @router.get("/{version}/meta-data/{path:path}")
    def meta_data(version: str, request: Request, path: str = "") -> Response:
        instance, refused = authorised(request, version)
        if refused:
            return refused
        assert instance is not None
        with db.session() as session:
            groups = list(session.scalars(select(InstanceGroup.group_name).where(
                InstanceGroup.instance_id == instance.id).order_by(InstanceGroup.id)))
            key = session.scalar(select(KeyPair).where(
                KeyPair.account_id == instance.account_id, KeyPair.name == instance.key_name)) \
                if instance.key_name else None
            image = session.get(Image, instance.image_id)
            ebs_devices = [v.device for v in attached_to(session, [instance.id])[instance.id]
                           if v.attach_state == "attached" and v.device
                           # an EBS root is the `ami`/`root` entry, not one of the ebsN
                           and v.device.removeprefix("/dev/") != instance.root_device_name.removeprefix("/dev/")]
        node = _walk(_tree(config, instance, groups, key, image, ebs_devices), path)
        if node is None:
            return _not_found()
        return Response(_listing(node) if isinstance(node, dict) else node, media_type=TEXT)

    @router.get("/{version}/user-data")
    def user_data(version: str, request: Request) -> Response:
        instance, refused = authorised(request, version)
        if refused:
            return refused
        assert instance is not None
        if not instance.user_data_b64:
            return _not_found()
        return Response(base64.b64decode(instance.user_data_b64), media_type="application/octet-stream")

    @router.get("/{version}/dynamic/")
    @router.get("/{version}/dynamic/instance-identity/")
    @router.get("/{version}/dynamic/instance-identity/{what}")
    def dynamic(version: str, request: Request, what: str = "") -> Response:
        instance, refused = authorised(request, version)
        if refused:
            return refused
        assert instance is not None
        path = request.url.path
        if path.endswith("/dynamic/"):
            return Response("instance-identity/", media_type=TEXT)
        if what == "":
            return Response("document", media_type=TEXT)
        if what != "document":
            return _not_found()
        return Response(json.dumps(_identity_document(config, instance), indent=2),
                        media_type=TEXT)

    return router
