"""One experiment: a fresh cloud with the policy under test, the workload replayed through it,
its recording. `compare` runs the same workload once per policy, each in its own cloud."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from services.experiment.cloud import ExperimentCloud, NodeShape, experiment_cloud
from services.experiment.recorder import Recording
from services.experiment.replay import Replayer
from services.experiment.schedule import ScheduledFault
from services.experiment.timescale import IDLE_THRESHOLD_S, MIN_POLL_S, POLL_S, TimeScale
from services.experiment.workload import Request

# Given the running cloud, what injects (True) or clears (False) a scheduled fault.
FaultHookFactory = Callable[[ExperimentCloud], Callable[[ScheduledFault, bool], None]]


def run_one(workload: list[Request], policy: str, nodes: int, shape: NodeShape, scale: TimeScale,
            faults: list[ScheduledFault] = [], fault_hooks: FaultHookFactory | None = None,  # noqa: B006 (read only)
            home: Path | None = None) -> Recording:
    with experiment_cloud(nodes, shape, policy, scale.settings(), home) as cloud:
        # A policy that lets idle nodes sleep has put them to sleep before the workload starts,
        # however long the cloud took to start: every run begins from the same state.
        time.sleep(scale.real(IDLE_THRESHOLD_S) + 3 * max(MIN_POLL_S, scale.real(POLL_S)))
        hook = fault_hooks(cloud) if fault_hooks and faults else None
        replayer = Replayer(cloud, scale, policy, faults, hook)
        try:
            return replayer.run(workload)
        finally:
            replayer.close()
