"""One cloud for the isolation tests (tests/hardening/test_internal_routes.py and
test_accounts.py): starting a whole cloud costs 20-30 s on a loaded machine, so they share it
rather than start one each. Each module makes its own resources (and accounts) in it.

The cloud stops at the end of the session. (Stopping it after the last test that uses it, in
collection order, broke under xdist: a worker may run test_accounts.py after that test.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cloud import Cloud, running_cloud

ISOLATION_POOL = "10.111.220.1-10.111.220.9"


@pytest.fixture(scope="session")
def isolation_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("isolation"), nodes=1,
                       VNET_PUBLICIPS=ISOLATION_POOL, SC_MAX_STORAGE=50) as cloud:
        yield cloud


@pytest.fixture(scope="session")
def isolation_image(isolation_cloud: Cloud) -> str:
    """A machine image of the admin's that no other account may launch."""
    return isolation_cloud.register_image(public=False)
