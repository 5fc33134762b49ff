"""Where a node is: the URL the CC reaches it at, from how NODES or a registration names it,
and which NC process serves it (a simulated NC process serves many nodes under one root)."""

from __future__ import annotations

import functools
from urllib.parse import urlsplit


def node_url(entry: str, nc_port: int) -> str:
    """NODES lists hosts as Eucalyptus does (`10.0.0.5`), or `host:port`, or full URLs."""
    entry = entry.strip().rstrip("/")
    if "://" not in entry:
        entry = f"http://{entry}"
    parts = urlsplit(entry)
    if parts.port is None:
        entry = entry.replace(parts.netloc, f"{parts.netloc}:{nc_port}", 1)
    return entry


@functools.lru_cache(maxsize=1 << 16)
def split_url(url: str) -> tuple[str, str]:
    """A node URL as (the NC process's root, the node's prefix under it):
    `http://h:8775/node-3` -> (`http://h:8775`, `/node-3`); a single-node process has prefix ""."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")
