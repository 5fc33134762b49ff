"""verify_ec2 / verify_s3 against the AWS CLI (its own vendored botocore), run in-process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from auth_clients import ACCESS_KEY, SECRET_KEY, lookup, url_view, view_of
from awscli.clidriver import create_clidriver

from services.auth import SCHEME_V4_HEADER, verify_ec2, verify_s3


class Cli:
    """One in-process AWS CLI, stopped at its send boundary; built once (it is slow to build)."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.driver = create_clidriver()
        self.driver.session.register("before-send", self._stop)

    def _stop(self, request: Any, **_: Any) -> None:
        self.sent.append(request)
        raise RuntimeError("stopped before sending")

    def request(self, *args: str) -> Any:
        """Run `aws <args>` and return the request it would have sent."""
        self.sent.clear()
        self.driver.main(list(args))
        assert self.sent, f"aws {' '.join(args)} sent nothing"
        return self.sent[0]


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    home = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(home / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        }.items():
            patch.setenv(name, value)
        yield Cli()


def test_cli_ec2_call_verifies(cli: Cli) -> None:
    request = cli.request("ec2", "describe-instances", "--instance-ids", "i-1", "i-2",
                          "--endpoint-url", "http://127.0.0.1:8773/services/compute")  # fmt: skip
    identity = verify_ec2(view_of(request), lookup)
    assert identity.scheme == SCHEME_V4_HEADER and identity.service == "ec2"


def test_cli_s3api_put_object_verifies(cli: Cli, tmp_path: Any) -> None:
    body = tmp_path / "body.txt"
    body.write_bytes(b"payload")
    request = cli.request("s3api", "put-object", "--bucket", "b", "--key", "dir/a b(1)!.txt",
                          "--body", str(body), "--endpoint-url", "http://127.0.0.1:8777")  # fmt: skip
    identity = verify_s3(view_of(request, with_body=False), lookup)
    assert identity is not None and identity.scheme == SCHEME_V4_HEADER


def test_cli_s3_presign_verifies(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    cli.driver.main(["s3", "presign", "s3://b/a key.txt", "--endpoint-url", "http://127.0.0.1:8777"])
    url = capsys.readouterr().out.strip()
    assert url.startswith("http://127.0.0.1:8777/b/a%20key.txt?")
    identity = verify_s3(url_view(url), lookup)
    assert identity is not None and identity.access_key == ACCESS_KEY
