"""The CLC's suite runs on SQLite and on PostgreSQL (a real server, tests/support/postgres.py):
each test that uses the CLC runs once per database, against a CLC process of its own started
with that DATABASE_URL. Tests that drive the AWS CLI stay on SQLite alone: they check the
CLI's flattening of requests, the same on any database, and a CLI start costs seconds."""

import pytest

from tests.support.clc import RunningClc, running_clc

DATABASES = ("sqlite", "postgresql")


def _sqlite_only(metafunc: pytest.Metafunc) -> bool:
    return "aws_cli" in metafunc.function.__name__


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "clc" in metafunc.fixturenames:
        databases = ["sqlite"] if _sqlite_only(metafunc) else list(DATABASES)
        metafunc.parametrize("database", databases, indirect=True, scope="session")


@pytest.fixture(scope="session")
def database(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def clc(database: str, request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> RunningClc:
    overrides = {}
    if database == "postgresql":
        overrides["DATABASE_URL"] = request.getfixturevalue("postgres").database_url("clc_suite")
    with running_clc(tmp_path_factory.mktemp(f"clc-{database}"), **overrides) as cloud:
        yield cloud


@pytest.fixture(scope="session")
def ec2(clc: RunningClc):
    return clc.ec2()
