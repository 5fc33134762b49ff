import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL server for the whole run (tests/support/postgres.py), started the
    first time a test asks for it; each user creates databases of its own in it."""
    from tests.support.postgres import available, postgres_server

    if not available():
        # `make test` installs Debian's postgresql (TESTDEBS): its absence is a broken set-up.
        pytest.fail("PostgreSQL 15 is not installed (/usr/lib/postgresql/15/bin); `make test-debs`")
    with postgres_server() as server:
        yield server
