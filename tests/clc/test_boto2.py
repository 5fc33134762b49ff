"""boto 2, the library euca2ools 2.x was built on, lists zones and groups with SigV2 and SigV4."""

from urllib.parse import urlparse

import pytest
from boto.ec2.connection import EC2Connection
from boto.ec2.regioninfo import RegionInfo

from tests.support.clc import RunningClc


class SigV2Connection(EC2Connection):
    """euca2ools' way: the plain `ec2` (SigV2) signer instead of boto 2's SigV4 default."""

    def _required_auth_capability(self):  # noqa: D401
        return ["ec2"]


def _connect(clc: RunningClc, cls: type[EC2Connection], path: str) -> EC2Connection:
    url = urlparse(clc.url)
    return cls(aws_access_key_id=clc.admin.access_key, aws_secret_access_key=clc.admin.secret_key,
               is_secure=False, port=url.port, path=path,
               region=RegionInfo(name=clc.config.REGION, endpoint=url.hostname))


@pytest.mark.parametrize("cls", [SigV2Connection, EC2Connection], ids=["sigv2", "sigv4"])
@pytest.mark.parametrize("path", ["/", "/services/compute"])
def test_boto2_lists_zones_and_groups(clc: RunningClc, cls: type[EC2Connection], path: str):
    conn = _connect(clc, cls, path)
    assert [z.name for z in conn.get_all_zones()] == ["zone-1"]
    assert "default" in [g.name for g in conn.get_all_security_groups()]
