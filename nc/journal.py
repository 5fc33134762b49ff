"""The simulated console: no guest runs under libvirt's test driver, so nothing would ever
print. Instead the NC writes, into the instance's console.log, what it truly did (domain
defined, disks made with their sizes and paths, started at …). In real mode the guest owns
console.log and the NC writes nothing there."""

from __future__ import annotations

import threading
from pathlib import Path

from services.clock import utcnow


class ConsoleJournal:
    def __init__(self, enabled: bool, node_id: str) -> None:
        self.enabled = enabled
        self.node_id = node_id
        self._lock = threading.Lock()

    def note(self, console_log: Path, *lines: str) -> None:
        if not self.enabled:
            return
        stamp = utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        text = "".join(f"[{stamp}] eucasim-nc {self.node_id}: {line}\n" for line in lines)
        with self._lock:
            try:
                self._append(console_log, text)
            except OSError:
                pass    # the console is a courtesy; never fail an instance over it

    @staticmethod
    def _append(console_log: Path, text: str) -> None:
        try:
            stream = console_log.open("a")
        except FileNotFoundError:
            # The folder is made only the first time (a mkdir per line was a tenth of a
            # simulated launch's work).
            console_log.parent.mkdir(parents=True, exist_ok=True)
            stream = console_log.open("a")
        with stream:
            stream.write(text)
