"""One real-mode lab at a time on a machine: there is one libvirtd per machine (its socket is
/run/libvirt/libvirt-sock), so two test modules that each bring a lab up (possibly on two test
workers) take turns on this lock rather than have the second refuse to start."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK = Path("/var/tmp/eucasim-lab.lock")


@contextmanager
def exclusive_lab() -> Iterator[None]:
    with open(LOCK, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)    # waits while another module's lab is up
        try:
            yield
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
