"""The replayer: the workload's requests as a user would make them, through the CLC's EC2
API with boto3 — RunInstances at each arrival, TerminateInstances at each departure — at the
workload's times divided by the speed. Before the events of each time it samples the cloud
(recorder.py); after a departure it waits until its instances are terminated, and after an
arrival until they left `pending`, so the next event meets a settled cloud whatever the
machine's load: that is what makes a seed give the same table."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from services.experiment.cloud import ExperimentCloud
from services.experiment.recorder import Recording, sample_of
from services.experiment.schedule import ScheduledFault
from services.experiment.timescale import TimeScale
from services.experiment.workload import Request
from services.messages.cluster import NodeList

SETTLE_TIMEOUT_S = 30.0

# (time, order at that time, sequence, what): departures before faults before arrivals.
_DEPART, _FAULT, _ARRIVE = 0, 1, 2

FaultHook = Callable[[ScheduledFault, bool], None]   # (fault, True to inject / False to clear)


@dataclass(order=True)
class _Event:
    t: float
    order: int
    seq: int
    what: Any = field(compare=False)


class Replayer:
    def __init__(self, cloud: ExperimentCloud, scale: TimeScale, policy: str,
                 faults: list[ScheduledFault] = (), fault_hook: FaultHook | None = None) -> None:  # type: ignore[assignment]
        self.cloud = cloud
        self.scale = scale
        self.ec2 = boto3.client("ec2", endpoint_url=cloud.clc_url, region_name=cloud.config.REGION,
                                aws_access_key_id=cloud.admin.access_key,
                                aws_secret_access_key=cloud.admin.secret_key,
                                config=Config(retries={"max_attempts": 1}, read_timeout=300))
        self.cc = cloud.internal("cc")
        self.recording = Recording(policy, cloud.config.NC_SIMULATED_NODES)
        self._faults = list(faults)
        self._fault_hook = fault_hook
        self._running = 0
        self._refused = 0
        self._seq = 0

    def close(self) -> None:
        self.cc.close()

    def _push(self, heap: list[_Event], t: float, order: int, what: Any) -> None:
        self._seq += 1
        heapq.heappush(heap, _Event(t, order, self._seq, what))

    def run(self, workload: list[Request]) -> Recording:
        heap: list[_Event] = []
        for request in workload:
            self._push(heap, request.arrival_s, _ARRIVE, request)
        for fault in self._faults:
            self._push(heap, fault.at_s, _FAULT, (fault, True))
            if fault.for_s is not None:
                self._push(heap, fault.at_s + fault.for_s, _FAULT, (fault, False))
        began = time.monotonic()
        last_t = 0.0
        self._sample(0.0)
        while heap:
            t = heap[0].t
            due = began + self.scale.real(t)
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            else:
                self.recording.lag_s = max(self.recording.lag_s, now - due)
            if t > 0:
                self._sample(t)
            while heap and heap[0].t == t:
                event = heapq.heappop(heap)
                if event.order == _DEPART:
                    self._depart(event.what)
                elif event.order == _FAULT:
                    if self._fault_hook is not None:
                        self._fault_hook(*event.what)
                else:
                    ids = self._arrive(event.what)
                    if ids:
                        self._push(heap, t + event.what.duration_s, _DEPART, ids)
            last_t = t
        self._sample(last_t)
        return self.recording

    def _sample(self, t: float) -> None:
        nodes = self.cc.call("GET", "/internal/nodes", None, NodeList).nodes
        self.recording.add(sample_of(t, self._running, self._refused, nodes))

    def _arrive(self, request: Request) -> list[str]:
        started = time.monotonic()
        try:
            answer = self.ec2.run_instances(ImageId=self.cloud.image_id, InstanceType=request.instance_type,
                                            MinCount=request.count, MaxCount=request.count)
        except ClientError as exc:
            # Capacity, and anything else the cloud says no with: counted, by code, not fatal.
            self._refused += request.count
            self.recording.refusals[exc.response["Error"]["Code"]] += request.count
            return []
        ids = [i["InstanceId"] for i in answer["Instances"]]
        states = self._settle(ids, lambda s: s != "pending")
        self.recording.latencies_s.append(time.monotonic() - started)
        live = [i for i in ids if states.get(i) == "running"]
        failed = [i for i in ids if i not in live]
        self._refused += len(failed)
        if failed:
            self.recording.refusals["failed after admission"] += len(failed)
        if failed:
            self._terminate(failed)
        self._running += len(live)
        return live

    def _depart(self, ids: list[str]) -> None:
        self._terminate(ids)
        self._running -= len(ids)

    def _terminate(self, ids: list[str]) -> None:
        self.ec2.terminate_instances(InstanceIds=ids)
        self._settle(ids, lambda s: s == "terminated")

    def _settle(self, ids: list[str], done: Callable[[str], bool]) -> dict[str, str]:
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        pause = 0.005
        while True:
            states = {i["InstanceId"]: i["State"]["Name"]
                      for r in self.ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]}
            if all(done(states.get(i, "terminated")) for i in ids) or time.monotonic() > deadline:
                return states
            time.sleep(pause)
            pause = min(0.1, pause * 2)
