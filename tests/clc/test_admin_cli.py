"""The `eucasim` admin commands work through the CLC's admin API, and what they create works
with boto3; `credentials` and `env` print settings for the admin."""

import re
from urllib.parse import urlparse

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.messages.identity import AccessKeyInfo
from tests.support.clc import SECRET, RunningClc

runner = CliRunner()


@pytest.fixture
def cli(clc: RunningClc):
    env = {"EUCASIM_HOME": str(clc.config.EUCASIM_HOME), "CLOUD_SECRET": SECRET,
           "CLC_PORT": str(urlparse(clc.url).port), "COLUMNS": "200"}

    def invoke(*args: str) -> str:
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output
    return invoke


def _key_from(output: str, account_id: str = "") -> AccessKeyInfo:
    access = re.search(r"AWS_ACCESS_KEY_ID=(\S+)", output).group(1)
    secret = re.search(r"AWS_SECRET_ACCESS_KEY=(\S+)", output).group(1)
    return AccessKeyInfo(access_key=access, secret_key=secret, account_id=account_id or "0" * 12,
                         account_name="", user_name="")


def test_account_user_and_key_commands(cli, clc: RunningClc):
    key = _key_from(cli("account", "create", "cli-team"))
    assert clc.ec2(key).describe_availability_zones()["AvailabilityZones"]
    assert "cli-team" in cli("account", "list")
    assert "user bob created in account cli-team" in cli("user", "create", "cli-team", "bob")
    bob = _key_from(cli("key", "create", "cli-team", "bob"))
    groups = clc.ec2(bob).describe_security_groups(GroupNames=["default"])["SecurityGroups"]
    assert groups[0]["GroupName"] == "default"


def test_account_create_twice_is_refused(cli, clc: RunningClc):
    cli("account", "create", "twice")
    result = runner.invoke(app, ["account", "create", "twice"],
                           env={"EUCASIM_HOME": str(clc.config.EUCASIM_HOME), "CLOUD_SECRET": SECRET,
                                "CLC_PORT": str(urlparse(clc.url).port)})
    assert result.exit_code == 1 and "already exists" in result.output


def test_vmtype_set_and_list(cli, ec2):
    cli("vmtype", "set", "m1.tiny", "--cpu", "1", "--mem", "128", "--disk", "2")
    assert "m1.tiny" in cli("vmtype", "list")
    tiny = ec2.describe_instance_types(InstanceTypes=["m1.tiny"])["InstanceTypes"][0]
    assert tiny["MemoryInfo"]["SizeInMiB"] == 128


def test_credentials_and_env_print_the_admin_key(cli, clc: RunningClc):
    printed = cli("credentials")
    assert clc.admin.access_key in printed and clc.admin.secret_key in printed
    assert "EC2_URL=" in printed and "[profile eucasim]" in printed
    exports = dict(re.findall(r"export (\w+)=(\S+)", cli("env")))
    assert exports["AWS_ACCESS_KEY_ID"] == clc.admin.access_key
    assert exports["AWS_ENDPOINT_URL_EC2"] and exports["AWS_ENDPOINT_URL_S3"]
    assert exports["AWS_DEFAULT_REGION"] == "eucalyptus"
