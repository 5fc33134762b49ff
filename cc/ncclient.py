"""The CC's side of the NC internal API (services/messages/node.py): one signed async client
per node URL, kept open so that polling a hundred nodes reuses connections."""

from __future__ import annotations

from services.internal import AsyncInternalClient
from services.messages.node import (ConsoleOutput, InstanceList, InstanceReport, NodeResources,
                                    RunInstance)


class NodeClients:
    def __init__(self, secret: str, timeout: float) -> None:
        self._secret = secret
        self._timeout = timeout
        self._clients: dict[str, AsyncInternalClient] = {}

    def _for(self, url: str) -> AsyncInternalClient:
        client = self._clients.get(url)
        if client is None:
            client = AsyncInternalClient(url, self._secret, timeout=self._timeout)
            self._clients[url] = client
        return client

    async def resources(self, url: str) -> NodeResources:
        return await self._for(url).call("GET", "/internal/resources", response=NodeResources)

    async def instances(self, url: str) -> InstanceList:
        return await self._for(url).call("GET", "/internal/instances", response=InstanceList)

    async def run(self, url: str, spec: RunInstance) -> InstanceReport:
        return await self._for(url).call("POST", "/internal/instances", spec, InstanceReport)

    async def terminate(self, url: str, instance_id: str) -> InstanceReport:
        return await self._for(url).call("POST", f"/internal/instances/{instance_id}/terminate",
                                         response=InstanceReport)

    async def reboot(self, url: str, instance_id: str) -> InstanceReport:
        return await self._for(url).call("POST", f"/internal/instances/{instance_id}/reboot",
                                         response=InstanceReport)

    async def console(self, url: str, instance_id: str) -> ConsoleOutput:
        return await self._for(url).call("GET", f"/internal/instances/{instance_id}/console",
                                         response=ConsoleOutput)

    async def sleep(self, url: str) -> NodeResources:
        return await self._for(url).call("POST", "/internal/power/sleep", response=NodeResources)

    async def wake(self, url: str) -> NodeResources:
        return await self._for(url).call("POST", "/internal/power/wake", response=NodeResources)

    async def forget(self, url: str) -> None:
        client = self._clients.pop(url, None)
        if client is not None:
            await client.aclose()

    async def aclose(self) -> None:
        for url in list(self._clients):
            await self.forget(url)
