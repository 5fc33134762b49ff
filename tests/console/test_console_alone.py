"""The console when the CLC is all that answers: a real CLC whose Walrus, SC, CC and NC are at
an address nothing listens on. Every page still draws, says which services are down, and says
the zone's cluster controller did not answer instead of failing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.support import signed_in
from tests.support.clc import RunningClc, running_clc

NOBODY = "http://127.0.0.1:1"   # a port no service uses: connections are refused at once


@pytest.fixture(scope="module")
def clc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningClc]:
    with running_clc(tmp_path_factory.mktemp("console-alone"), WALRUS_URL=NOBODY, SC_URL=NOBODY,
                     CC_URL=NOBODY, NC_URL=NOBODY) as running:
        yield running


def test_every_page_draws_and_names_what_is_down(clc: RunningClc, tmp_path: Path) -> None:
    with signed_in(clc.url, clc.admin) as client:
        topology = client.get("/console/topology")
        assert topology.status_code == 200
        assert topology.text.count('class="state state-down"') == 4   # walrus, sc, cc, nc
        assert 'class="state state-up"' in topology.text              # the CLC itself
        for path in ("/console/nodes", "/console/network", "/console/topology?fragment=1"):
            page = client.get(path)
            assert page.status_code == 200, path
            assert "cluster controller of zone zone-1 did not answer" in page.text, path
        for path in ("/console/instances", "/console/volumes", "/console/trace"):
            assert client.get(path).status_code == 200, path
        trace = client.get("/console/trace?request_id=no-such-request")
        assert trace.status_code == 200 and "No service remembers this request" in trace.text
