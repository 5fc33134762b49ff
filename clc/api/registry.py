"""The action registry: `@action("CreateKeyPair")` marks a plain function as the handler of
an EC2 action. The endpoint calls it with a `Context` and the request's parameters as keyword
arguments named as in the AWS documentation; it returns the output shape as a dict."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from services.config import CloudConfig
from services.errors import EC2Error
from services.ids import new_id
from services.tracing import TraceRecorder

if TYPE_CHECKING:  # the seams' types only; handlers get them from the endpoint
    from clc.network_sync import NetworkSync
    from clc.placement import Launches
    from clc.storage_client import StorageClient
    from clc.volume_settler import VolumeSettler
    from clc.volume_work import VolumeWork
    from clc.walrus_client import WalrusClient
    from clc.zones_client import ZoneClient

Handler = Callable[..., dict[str, Any] | None]

_HANDLERS: dict[str, Handler] = {}
# Handlers of Eucalyptus's own answer to an action (services/ec2query/eucalyptus.py).
_EUCALYPTUS_HANDLERS: dict[str, Handler] = {}


def action(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        if name in _HANDLERS:
            raise RuntimeError(f"two handlers for {name}")
        _HANDLERS[name] = fn
        return fn
    return register


def eucalyptus_action(name: str) -> Callable[[Handler], Handler]:
    """Marks the handler that answers `name` as Eucalyptus did, for Eucalyptus's clients."""
    def register(fn: Handler) -> Handler:
        if name in _EUCALYPTUS_HANDLERS:
            raise RuntimeError(f"two Eucalyptus handlers for {name}")
        _EUCALYPTUS_HANDLERS[name] = fn
        return fn
    return register


def handler_for(name: str) -> Handler | None:
    return _HANDLERS.get(name)


def eucalyptus_handler_for(name: str) -> Handler | None:
    return _EUCALYPTUS_HANDLERS.get(name)


def implemented_actions() -> frozenset[str]:
    return frozenset(_HANDLERS)


_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def accepted_params(fn: Handler, params: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Split params into those the handler takes and those it ignores (ClientToken, members of
    newer API versions that eucasim does not implement)."""
    signature = inspect.signature(fn)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        return params, []
    taken = {k: v for k, v in params.items() if k in signature.parameters}
    # Where botocore's model makes a member optional (AvailabilityZone, now that
    # AvailabilityZoneId exists) but eucasim needs it, the codec cannot know: say so here
    # rather than let the call fail with a TypeError (a 500).
    required = [name for name, p in list(signature.parameters.items())[1:]  # after ctx
                if p.default is inspect.Parameter.empty and p.kind in _NAMED]
    for name in required:
        if name not in taken:
            raise EC2Error("MissingParameter", f"The request must contain the parameter {name}")
    return taken, sorted(set(params) - set(taken))


@dataclass
class Context:
    """What a handler may use: the caller, its database session and the cloud around it."""

    db: Session
    account_id: str
    user_name: str
    is_admin: bool
    request_id: str
    config: CloudConfig
    recorder: TraceRecorder
    # The seams to other services; None in a CLC that has none (behaviour tests).
    zones: ZoneClient | None = None       # the CC of each zone
    launches: Launches | None = None      # admission against the zones' capacity, placement
    walrus: WalrusClient | None = None    # manifests and image preparation
    network: NetworkSync | None = None    # tells each zone's CC what its network must be
    storage: StorageClient | None = None  # the SC of each zone
    volumes: VolumeWork | None = None     # attach/detach/delete after the answer
    settler: VolumeSettler | None = None  # settles what the SCs report; sweeps their strays
    extra: dict[str, Any] = field(default_factory=dict)

    def new_id(self, prefix: str, digits: int = 8) -> str:
        return new_id(prefix, digits)

    def trace(self, kind: str, what: str, **detail: Any) -> None:
        self.recorder.record(kind, what, request_id=self.request_id, **detail)

    def network_changed(self, zone: str | None = None) -> None:
        """Addresses, rules or live instances changed: the zone's CC hears of it after this
        request commits (off the request), with this request's id for its trace."""
        network, request_id = self.network, self.request_id
        if network is None or self.extra.get("network_changed"):
            return
        self.extra["network_changed"] = True
        # After the commit, so the intent the worker reads holds this request's change.
        event.listen(self.db, "after_commit", lambda _s: network.changed(zone, request_id), once=True)
