"""Walrus with its default key directory: the real CLC answers who an access key belongs to,
and Walrus says so plainly when the CLC cannot be reached."""

from __future__ import annotations

from pathlib import Path

from services import credentials
from tests.support.servers import listen, port_of, refused_port, running
from tests.walrus.conftest import make_config
from tests.walrus.helpers import code_and_status, s3_client, s3_error


def test_cloud_admin_key_from_the_clc(tmp_path: Path) -> None:
    from clc.app import create_app as create_clc
    from walrus.app import create_app as create_walrus

    clc_socket = listen()
    config = make_config(tmp_path, CLC_PORT=port_of(clc_socket))
    with running(create_clc(config), clc_socket):
        admin = credentials.read(tmp_path).key
        with running(create_walrus(config)) as url:
            s3 = s3_client(url, admin.access_key, admin.secret_key)
            s3.create_bucket(Bucket="snapset-0001")
            s3.put_object(Bucket="snapset-0001", Key="snap-1/part-0", Body=b"block data")
            assert s3.get_object(Bucket="snapset-0001", Key="snap-1/part-0")["Body"].read() == \
                b"block data"
            owner = s3.list_buckets()["Owner"]
            assert owner["ID"] == admin.account_id and owner["DisplayName"] == "eucalyptus"
            forged = s3_client(url, admin.access_key, "not-the-secret")
            assert code_and_status(s3_error(forged.list_buckets)) == ("SignatureDoesNotMatch", 403)
            stranger = s3_client(url, "AKIANOSUCHKEY0000000", "x")
            assert code_and_status(s3_error(stranger.list_buckets)) == ("InvalidAccessKeyId", 403)


def test_unreachable_clc_is_service_unavailable(tmp_path: Path) -> None:
    from walrus.app import create_app as create_walrus

    with refused_port() as clc_port:
        config = make_config(tmp_path, CLC_PORT=clc_port)
        with running(create_walrus(config)) as url:
            s3 = s3_client(url, "AKIASOMEONE000000000", "secret")
            assert code_and_status(s3_error(s3.list_buckets)) == ("ServiceUnavailable", 503)
