import pytest

from tests.support.clc import RunningClc, running_clc


@pytest.fixture(scope="session")
def clc(tmp_path_factory: pytest.TempPathFactory) -> RunningClc:
    with running_clc(tmp_path_factory.mktemp("clc")) as cloud:
        yield cloud


@pytest.fixture(scope="session")
def ec2(clc: RunningClc):
    return clc.ec2()
