"""One cloud for the isolation tests (tests/hardening/test_internal_routes.py and
test_accounts.py): starting a whole cloud costs 20-30 s on a loaded machine, so they share it
rather than start one each. Each module makes its own resources (and accounts) in it.

The cloud stops after the last test that uses it, not at the end of the session: the modules
between and after them (crashes, fuzzing) should not run beside an idle cloud's pollers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.support.cloud import Cloud, running_cloud

ISOLATION_POOL = "10.111.220.1-10.111.220.9"
_FIXTURE = "isolation_cloud"
_cloud_stack = ExitStack()
_last_user: list[pytest.Item] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    users = [item for item in items if _FIXTURE in getattr(item, "fixturenames", ())]
    _last_user[:] = users[-1:]


def pytest_runtest_teardown(item: pytest.Item) -> None:
    if _last_user and item is _last_user[0]:
        _cloud_stack.close()


@pytest.fixture(scope="session")
def isolation_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    cloud = _cloud_stack.enter_context(running_cloud(
        tmp_path_factory.mktemp("isolation"), nodes=1, VNET_PUBLICIPS=ISOLATION_POOL,
        SC_MAX_STORAGE=50))
    yield cloud
    _cloud_stack.close()


@pytest.fixture(scope="session")
def isolation_image(isolation_cloud: Cloud) -> str:
    """A machine image of the admin's that no other account may launch."""
    return isolation_cloud.register_image(public=False)
