"""Compressed time: a workload second lasts 1/speed real seconds, and so do the cloud's own
timers, so policies that depend on time (POWERSAVE's idle threshold, the grace a dead node's
instances get) behave as they would at full length. The CC's polling cannot go below
MIN_POLL_S (a poll of thousands of simulated nodes takes a while); the other timers are
scaled as they are."""

from __future__ import annotations

from dataclasses import dataclass

MIN_POLL_S = 0.1
# eucalyptus.conf defaults, in workload seconds.
POLL_S = 6.0
IDLE_THRESHOLD_S = 270.0      # not a multiple of the generator's 60 s tick (workload.py)
NODE_LOST_GRACE_S = 600.0


@dataclass(frozen=True)
class TimeScale:
    speed: float

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError("--speed must be above 0")

    def real(self, workload_s: float) -> float:
        return workload_s / self.speed

    def workload(self, real_s: float) -> float:
        return real_s * self.speed

    def settings(self, idle_threshold_s: float = IDLE_THRESHOLD_S) -> dict[str, str]:
        """eucalyptus.conf keys for a cloud that lives at this speed."""
        return {"NC_POLLING_FREQUENCY": f"{max(MIN_POLL_S, self.real(POLL_S)):g}",
                "POWER_IDLETHRESH": f"{self.real(idle_threshold_s):g}",
                "NODE_LOST_GRACE": f"{self.real(NODE_LOST_GRACE_S):g}"}
