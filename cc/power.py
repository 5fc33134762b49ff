"""POWERSAVE's other half: nodes idle for POWER_IDLETHRESH seconds are put to sleep, and
sleeping nodes are woken when the scheduler needs them. Simulated nodes (libvirt's test
driver) sleep and wake through the NC API; a real host is woken by POWER_WAKE_COMMAND
(wake-on-LAN, an IPMI call…) because a sleeping host cannot answer HTTP."""

from __future__ import annotations

import asyncio
import logging
import shlex
import time
from urllib.parse import urlsplit

import httpx

from cc.ncclient import NodeClients
from cc.registry import NodeRegistry
from cc.reservations import Reservations
from services.clock import utcnow
from services.internal import InternalCallError
from services.tracing import TraceRecorder

log = logging.getLogger("eucasim.cc.power")
POWER_TRACE = "cc-power"


class PowerManager:
    def __init__(self, registry: NodeRegistry, clients: NodeClients, reservations: Reservations,
                 recorder: TraceRecorder, *, enabled: bool, idle_threshold: float,
                 wake_command: str, wake_timeout: float = 300.0) -> None:
        self._registry = registry
        self._clients = clients
        self._reservations = reservations
        self._recorder = recorder
        self.enabled = enabled
        self._idle_threshold = idle_threshold
        self._wake_command = wake_command
        self._wake_timeout = wake_timeout

    async def tick(self) -> list[str]:
        """Put to sleep the awake nodes idle for long enough; returns their URLs."""
        if not self.enabled:
            return []
        now = utcnow()
        to_sleep: list[str] = []
        with self._reservations.lock:
            held = self._reservations.held_by_node()
            for node in self._registry.nodes():
                if node.state != "up":
                    continue
                if node.live_instances() or node.url in held:
                    self._registry.set_idle_since(node.url, None)
                elif node.idle_since is None:
                    self._registry.set_idle_since(node.url, now)
                elif (now - node.idle_since).total_seconds() >= self._idle_threshold:
                    self._registry.mark_asleep(node.url)
                    to_sleep.append(node.url)
        for url in to_sleep:
            try:
                self._registry.record_resources(url, await self._clients.sleep(url))
                self._recorder.record("decided", f"{url} idle for {self._idle_threshold:g} s: asleep",
                                      request_id=POWER_TRACE)
            except (httpx.HTTPError, InternalCallError) as exc:  # the poller sees the node as it is
                log.warning("could not put %s to sleep: %s", url, exc)
        return to_sleep

    async def wake(self, url: str) -> None:
        node = self._registry.find(url)
        simulated = node is None or node.resources is None or node.resources.hypervisor.startswith("test:")
        if simulated or not self._wake_command:
            self._registry.record_resources(url, await self._clients.wake(url))
        else:
            await self._run_wake_command(url, node.name if node else url)
            await self._wait_awake(url)
        self._recorder.record("called", f"woke {url}")

    async def _run_wake_command(self, url: str, name: str) -> None:
        host = urlsplit(url).hostname or ""
        argv = [part.format(url=url, host=host, node=name) for part in shlex.split(self._wake_command)]
        process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.STDOUT)
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{argv[0]} exited {process.returncode}: {output.decode(errors='replace')[-300:]}")

    async def _wait_awake(self, url: str) -> None:
        deadline = time.monotonic() + self._wake_timeout
        while True:
            try:
                resources = await self._clients.resources(url)
                if resources.power == "awake":
                    self._registry.record_resources(url, resources)
                    return
            except (httpx.HTTPError, InternalCallError):  # still booting
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {self._wake_timeout:g} s of the wake command")
            await asyncio.sleep(1.0)
