"""The CC's side of the NC internal API (services/messages/node.py): one signed async client
per NC process (its root URL), kept open so that polling reuses connections; a node's calls go
to its prefix under that root (one simulated process serves thousands of nodes, and one
connection pool serves them all)."""

from __future__ import annotations

import asyncio
from typing import TypeVar

import httpx
from pydantic import BaseModel

from cc.node_urls import split_url
from services.internal import AsyncInternalClient
from services.messages.attach import ATTACH_ROUTE, DETACH_ROUTE, AttachDisk, DetachDisk, DiskAttachment
from services.messages.freeze import FREEZE_ROUTE, THAW_ROUTE, FreezeFilesystems, FreezeResult, ThawFilesystems
from services.messages.node import (NC_CONSOLE_ROUTE, NC_DESCRIBE_ROUTE, NC_INSTANCES_ROUTE,
                                    NC_REBOOT_ROUTE, NC_RESOURCES_ROUTE, NC_SLEEP_ROUTE,
                                    NC_TERMINATE_ROUTE, NC_WAKE_ROUTE, ConsoleOutput,
                                    DescribeNodes, InstanceList, InstanceReport,
                                    NodeProcessReport, NodeResources, RunInstance, Subscription)

Model = TypeVar("Model", bound=BaseModel)
CONNECTIONS = 16


class NodeClients:
    def __init__(self, secret: str, timeout: float) -> None:
        self._secret = secret
        self._timeout = timeout
        self._clients: dict[str, AsyncInternalClient] = {}
        self._turns: dict[str, asyncio.Semaphore] = {}

    def _for(self, root: str) -> AsyncInternalClient:
        client = self._clients.get(root)
        if client is None:
            # A few connections per NC process: it serves them from one small threadpool
            # anyway, and httpcore looks over every pooled connection for each request, so a
            # hundred concurrent run calls on a hundred connections cost the CC more than the
            # calls themselves. Node calls wait for a turn here (not in httpcore's pool, whose
            # wait would count against the call's timeout); the describe call of a round
            # never waits behind them.
            transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=CONNECTIONS + 2))
            client = AsyncInternalClient(root, self._secret, timeout=self._timeout, transport=transport)
            self._clients[root] = client
            self._turns[root] = asyncio.Semaphore(CONNECTIONS)
        return client

    async def _call(self, url: str, method: str, route: str, response: type[Model],
                    body: BaseModel | None = None) -> Model:
        root, prefix = split_url(url)
        client = self._for(root)
        async with self._turns[root]:
            answer: Model = await client.call(method, prefix + route, body, response)
        return answer

    async def describe(self, root: str, subscribe: Subscription | None, since: str | None = None,
                       whole: list[str] | None = None) -> NodeProcessReport:
        """Every node the NC process at `root` serves, in one call; with `since` (the cursor
        of an earlier answer), what changed since, and the nodes `whole` complete."""
        body = DescribeNodes(subscribe=subscribe, since=since, whole=whole or [])
        report: NodeProcessReport = await self._for(root).call("POST", NC_DESCRIBE_ROUTE, body, NodeProcessReport)
        return report

    async def resources(self, url: str) -> NodeResources:
        return await self._call(url, "GET", NC_RESOURCES_ROUTE, NodeResources)

    async def instances(self, url: str) -> InstanceList:
        return await self._call(url, "GET", NC_INSTANCES_ROUTE, InstanceList)

    async def run(self, url: str, spec: RunInstance) -> InstanceReport:
        return await self._call(url, "POST", NC_INSTANCES_ROUTE, InstanceReport, spec)

    async def terminate(self, url: str, instance_id: str) -> InstanceReport:
        return await self._call(url, "POST", NC_TERMINATE_ROUTE.format(instance_id=instance_id), InstanceReport)

    async def reboot(self, url: str, instance_id: str) -> InstanceReport:
        return await self._call(url, "POST", NC_REBOOT_ROUTE.format(instance_id=instance_id), InstanceReport)

    async def console(self, url: str, instance_id: str) -> ConsoleOutput:
        return await self._call(url, "GET", NC_CONSOLE_ROUTE.format(instance_id=instance_id), ConsoleOutput)

    async def attach(self, url: str, instance_id: str, body: AttachDisk) -> DiskAttachment:
        return await self._call(url, "POST", ATTACH_ROUTE.format(instance_id=instance_id), DiskAttachment, body)

    async def detach(self, url: str, instance_id: str, volume_id: str, body: DetachDisk) -> DiskAttachment:
        route = DETACH_ROUTE.format(instance_id=instance_id, volume_id=volume_id)
        return await self._call(url, "POST", route, DiskAttachment, body)

    async def freeze(self, url: str, instance_id: str, body: FreezeFilesystems) -> FreezeResult:
        return await self._call(url, "POST", FREEZE_ROUTE.format(instance_id=instance_id), FreezeResult, body)

    async def thaw(self, url: str, instance_id: str, body: ThawFilesystems) -> FreezeResult:
        return await self._call(url, "POST", THAW_ROUTE.format(instance_id=instance_id), FreezeResult, body)

    async def sleep(self, url: str) -> NodeResources:
        return await self._call(url, "POST", NC_SLEEP_ROUTE, NodeResources)

    async def wake(self, url: str) -> NodeResources:
        return await self._call(url, "POST", NC_WAKE_ROUTE, NodeResources)

    async def forget(self, url: str) -> None:
        """Close the client of `url`'s process (when no other node of it is registered)."""
        client = self._clients.pop(split_url(url)[0], None)
        self._turns.pop(split_url(url)[0], None)
        if client is not None:
            await client.aclose()

    async def aclose(self) -> None:
        for root in list(self._clients):
            client = self._clients.pop(root)
            await client.aclose()
