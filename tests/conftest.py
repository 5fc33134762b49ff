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


@pytest.fixture(scope="session")
def ceph():
    """One throwaway Ceph cluster (mon, memstore OSD, radosgw) for the whole run of a test worker
    (tests/support/ceph.py), on a loopback address of its own; torn down by pid."""
    from tests.support.ceph import available, ceph_cluster

    if not available():
        # `make test` installs Debian's Ceph packages (TESTDEBS): their absence is a broken set-up.
        pytest.fail("Ceph 16 is not installed (ceph-mon, ceph-osd, radosgw, rbd); `make test-debs`")
    with ceph_cluster() as cluster:
        yield cluster
