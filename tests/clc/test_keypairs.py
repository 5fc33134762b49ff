"""Key pairs through boto3 and the AWS CLI: creation (RSA, ED25519, PEM and PPK), import,
EC2's fingerprint rules, describe with filters, deletion, and the errors EC2 gives."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from tests.support.clc import RunningClc
from tests.support.clc import aws_ec2 as _aws
from tests.support.clc import error_of as _error

AWS = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "aws")


def _name(prefix: str = "kp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _names(ec2) -> set[str]:
    return {k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]}


def _ssh_keygen(*args: str, stdin: str | None = None) -> str:
    return subprocess.run(["ssh-keygen", *args], input=stdin, capture_output=True, text=True,
                          check=True, timeout=30).stdout


def test_create_rsa_key_pair_gives_pkcs1_pem_and_sha1_fingerprint_of_pkcs8(ec2):
    name = _name()
    created = ec2.create_key_pair(KeyName=name)
    assert re.fullmatch(r"key-[0-9a-f]{17}", created["KeyPairId"])
    assert created["KeyMaterial"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    private = serialization.load_pem_private_key(created["KeyMaterial"].encode(), None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    pkcs8 = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    expected = ":".join(f"{b:02x}" for b in hashlib.sha1(pkcs8).digest())
    assert created["KeyFingerprint"] == expected

    [info] = ec2.describe_key_pairs(KeyNames=[name], IncludePublicKey=True)["KeyPairs"]
    assert info["KeyPairId"] == created["KeyPairId"]
    assert info["KeyFingerprint"] == expected
    assert info["KeyType"] == "rsa"
    assert isinstance(info["CreateTime"], datetime) and info["CreateTime"].tzinfo is not None
    assert info["Tags"] == []
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()
    assert info["PublicKey"] == f"{public} {name}"


def test_create_ed25519_key_pair_matches_what_ssh_keygen_says(ec2, tmp_path: Path):
    name = _name()
    created = ec2.create_key_pair(KeyName=name, KeyType="ed25519")
    assert created["KeyMaterial"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    key_file = tmp_path / "id"
    key_file.write_text(created["KeyMaterial"] + "\n")
    key_file.chmod(0o600)
    public = _ssh_keygen("-y", "-f", str(key_file)).split()
    (tmp_path / "id.pub").write_text(" ".join(public[:2]) + "\n")
    printed = _ssh_keygen("-l", "-E", "sha256", "-f", str(tmp_path / "id.pub")).split()[1]
    assert printed == "SHA256:" + created["KeyFingerprint"]
    assert "=" not in created["KeyFingerprint"]
    [info] = ec2.describe_key_pairs(KeyPairIds=[created["KeyPairId"]],
                                    IncludePublicKey=True)["KeyPairs"]
    assert info["KeyType"] == "ed25519"
    assert info["PublicKey"].split()[:2] == public[:2]


@pytest.mark.parametrize("key_type", ["rsa", "ed25519"])
def test_create_key_pair_in_ppk_format(ec2, key_type: str):
    name = _name()
    created = ec2.create_key_pair(KeyName=name, KeyType=key_type, KeyFormat="ppk")
    lines = created["KeyMaterial"].splitlines()
    algorithm = "ssh-rsa" if key_type == "rsa" else "ssh-ed25519"
    assert lines[0] == f"PuTTY-User-Key-File-2: {algorithm}"
    assert lines[1] == "Encryption: none" and lines[2] == f"Comment: {name}"
    count = int(lines[3].split(": ")[1])
    blob = base64.b64decode("".join(lines[4:4 + count]))
    [info] = ec2.describe_key_pairs(KeyNames=[name], IncludePublicKey=True)["KeyPairs"]
    assert info["PublicKey"].split()[1] == base64.b64encode(blob).decode()
    assert lines[-1].startswith("Private-MAC: ")


def test_private_key_is_returned_once_and_never_again(ec2):
    name = _name()
    ec2.create_key_pair(KeyName=name, KeyType="ed25519")
    [info] = ec2.describe_key_pairs(KeyNames=[name], IncludePublicKey=True)["KeyPairs"]
    assert "KeyMaterial" not in info
    assert "PRIVATE" not in info["PublicKey"]


def _rsa_public(bits: int = 2048) -> rsa.RSAPublicKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()


def test_import_rsa_openssh_key_uses_md5_of_der_public_key(ec2):
    public = _rsa_public()
    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    name = _name()
    imported = ec2.import_key_pair(KeyName=name, PublicKeyMaterial=line + b" me@laptop")
    spki = public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
    expected = ":".join(f"{b:02x}" for b in hashlib.md5(spki).digest())
    assert imported["KeyFingerprint"] == expected
    assert re.fullmatch(r"key-[0-9a-f]{17}", imported["KeyPairId"])
    assert "KeyMaterial" not in imported
    [info] = ec2.describe_key_pairs(KeyNames=[name], IncludePublicKey=True)["KeyPairs"]
    assert info["KeyFingerprint"] == expected and info["KeyType"] == "rsa"
    assert info["PublicKey"] == f"{line.decode()} {name}"


def test_import_ed25519_key_uses_the_openssh_sha256_fingerprint(ec2, tmp_path: Path):
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    (tmp_path / "k.pub").write_bytes(line + b"\n")
    printed = _ssh_keygen("-l", "-E", "sha256", "-f", str(tmp_path / "k.pub")).split()[1]
    imported = ec2.import_key_pair(KeyName=_name(), PublicKeyMaterial=line)
    assert "SHA256:" + imported["KeyFingerprint"] == printed


def test_import_accepts_rfc4716_pem_and_der(ec2, tmp_path: Path):
    public = _rsa_public()
    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    (tmp_path / "k.pub").write_bytes(line + b"\n")
    rfc4716 = _ssh_keygen("-e", "-m", "RFC4716", "-f", str(tmp_path / "k.pub")).encode()
    pem = public.public_bytes(serialization.Encoding.PEM,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    der = public.public_bytes(serialization.Encoding.DER,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    prints = {ec2.import_key_pair(KeyName=_name(), PublicKeyMaterial=material)["KeyFingerprint"]
              for material in (line, rfc4716, pem, der, base64.b64encode(der))}
    assert len(prints) == 1


@pytest.mark.parametrize("material", [b"not a key", b"ssh-rsa !!!!", b"ssh-ed25519",
                                      b"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC"])
def test_malformed_public_key_is_invalid_key_format_and_stores_nothing(ec2, material: bytes):
    name = _name()
    with pytest.raises(ClientError) as excinfo:
        ec2.import_key_pair(KeyName=name, PublicKeyMaterial=material)
    assert _error(excinfo) == (400, "InvalidKey.Format")
    assert excinfo.value.response["Error"]["Message"] == \
        "Key is not in valid OpenSSH public key format"
    assert name not in _names(ec2)


def test_duplicate_name_is_refused_for_create_and_import(ec2):
    name = _name()
    first = ec2.create_key_pair(KeyName=name, KeyType="ed25519")
    with pytest.raises(ClientError) as excinfo:
        ec2.create_key_pair(KeyName=name)
    assert _error(excinfo) == (400, "InvalidKeyPair.Duplicate")
    assert excinfo.value.response["Error"]["Message"] == f"The keypair '{name}' already exists."
    line = _rsa_public().public_bytes(serialization.Encoding.OpenSSH,
                                      serialization.PublicFormat.OpenSSH)
    with pytest.raises(ClientError) as excinfo:
        ec2.import_key_pair(KeyName=name, PublicKeyMaterial=line)
    assert _error(excinfo) == (400, "InvalidKeyPair.Duplicate")
    [info] = ec2.describe_key_pairs(KeyNames=[name])["KeyPairs"]
    assert info["KeyFingerprint"] == first["KeyFingerprint"]


@pytest.mark.parametrize("kwargs, code", [
    ({"KeyName": "x" * 256}, "InvalidParameterValue"),
    ({"KeyName": "schlüssel"}, "InvalidParameterValue"),
    ({"KeyName": "ok-name", "KeyType": "dsa"}, "InvalidParameterValue"),
    ({"KeyName": "ok-name", "KeyFormat": "der"}, "InvalidParameterValue"),
    ({"KeyName": "ok-name", "TagSpecifications": [
        {"ResourceType": "security-group", "Tags": [{"Key": "a", "Value": "b"}]}]},
     "InvalidParameterValue"),
    ({"KeyName": "ok-name", "TagSpecifications": [
        {"ResourceType": "key-pair", "Tags": [{"Key": "aws:x", "Value": "b"}]}]},
     "InvalidParameterValue"),
])
def test_invalid_create_requests_are_refused_and_create_nothing(ec2, kwargs: dict, code: str):
    before = _names(ec2)
    with pytest.raises(ClientError) as excinfo:
        ec2.create_key_pair(**kwargs)
    assert _error(excinfo) == (400, code)
    assert _names(ec2) == before


def test_describe_unknown_names_and_ids_is_not_found(ec2):
    name = _name()
    ec2.create_key_pair(KeyName=name, KeyType="ed25519")
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_key_pairs(KeyNames=[name, "no-such-key"])
    assert _error(excinfo) == (400, "InvalidKeyPair.NotFound")
    assert excinfo.value.response["Error"]["Message"] == "The key pair 'no-such-key' does not exist"
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_key_pairs(KeyPairIds=["key-0123456789abcdef0"])
    assert _error(excinfo) == (400, "InvalidKeyPair.NotFound")


def test_describe_filters_and_tags(ec2):
    tag = uuid.uuid4().hex[:8]
    rsa_key = ec2.create_key_pair(KeyName=_name("filt"), TagSpecifications=[
        {"ResourceType": "key-pair", "Tags": [{"Key": "suite", "Value": tag},
                                              {"Key": "kind", "Value": "rsa"}]}])
    assert {t["Key"] for t in rsa_key["Tags"]} == {"suite", "kind"}
    ed_key = ec2.create_key_pair(KeyName=_name("filt"), KeyType="ed25519", TagSpecifications=[
        {"ResourceType": "key-pair", "Tags": [{"Key": "suite", "Value": tag}]}])

    def ids(*filters: dict) -> set[str]:
        return {k["KeyPairId"] for k in ec2.describe_key_pairs(Filters=list(filters))["KeyPairs"]}

    both = {rsa_key["KeyPairId"], ed_key["KeyPairId"]}
    assert ids({"Name": "tag:suite", "Values": [tag]}) == both
    assert ids({"Name": "tag:suite", "Values": [tag]},
               {"Name": "key-type", "Values": ["ed25519"]}) == {ed_key["KeyPairId"]}
    assert ids({"Name": "tag-key", "Values": ["kind"]}, {"Name": "tag:suite", "Values": [tag]}) \
        == {rsa_key["KeyPairId"]}
    assert ids({"Name": "fingerprint", "Values": [rsa_key["KeyFingerprint"]]}) == \
        {rsa_key["KeyPairId"]}
    assert ids({"Name": "key-pair-id", "Values": list(both)}) == both
    assert ids({"Name": "key-name", "Values": [rsa_key["KeyName"][:-3] + "*"]}) == \
        {rsa_key["KeyPairId"]}
    [info] = ec2.describe_key_pairs(KeyPairIds=[rsa_key["KeyPairId"]])["KeyPairs"]
    assert info["Tags"] == [{"Key": "kind", "Value": "rsa"}, {"Key": "suite", "Value": tag}]
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_key_pairs(Filters=[{"Name": "colour", "Values": ["blue"]}])
    assert _error(excinfo) == (400, "InvalidParameterValue")


def test_delete_by_name_and_by_id_and_missing_name_succeeds(ec2):
    by_name, by_id = _name(), _name()
    first = ec2.create_key_pair(KeyName=by_name, KeyType="ed25519", TagSpecifications=[
        {"ResourceType": "key-pair", "Tags": [{"Key": "gone", "Value": "soon"}]}])
    second = ec2.create_key_pair(KeyName=by_id, KeyType="ed25519")
    deleted = ec2.delete_key_pair(KeyName=by_name)
    assert deleted["Return"] is True and deleted["KeyPairId"] == first["KeyPairId"]
    assert ec2.delete_key_pair(KeyPairId=second["KeyPairId"])["KeyPairId"] == second["KeyPairId"]
    assert not {by_name, by_id} & _names(ec2)
    assert ec2.delete_key_pair(KeyName=by_name)["Return"] is True  # EC2: deleting nothing is fine
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [first["KeyPairId"]]}])
    assert tags["Tags"] == []
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_key_pairs(KeyNames=[by_name])
    assert _error(excinfo) == (400, "InvalidKeyPair.NotFound")
    # The name is free again.
    ec2.create_key_pair(KeyName=by_name, KeyType="ed25519")


def test_describe_returns_all_of_250_key_pairs_without_paging(clc: RunningClc):
    ec2 = clc.ec2(clc.new_account(_name("many")))
    line = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    names = {f"bulk-{i:03d}" for i in range(250)}
    for name in names:
        ec2.import_key_pair(KeyName=name, PublicKeyMaterial=line)
    answer = ec2.describe_key_pairs()
    assert {k["KeyName"] for k in answer["KeyPairs"]} == names
    assert "NextToken" not in answer


def test_key_pairs_through_the_aws_cli(clc: RunningClc):
    name = _name("cli")
    created = _aws(clc, "create-key-pair", "--key-name", name, "--key-type", "ed25519")
    assert created.returncode == 0, created.stderr
    made = json.loads(created.stdout)
    assert made["KeyName"] == name and made["KeyMaterial"].startswith("-----BEGIN OPENSSH")
    described = _aws(clc, "describe-key-pairs", "--key-names", name, "--include-public-key")
    assert described.returncode == 0, described.stderr
    [info] = json.loads(described.stdout)["KeyPairs"]
    assert info["KeyPairId"] == made["KeyPairId"] and info["KeyFingerprint"] == made["KeyFingerprint"]
    assert info["PublicKey"].startswith("ssh-ed25519 ")
    deleted = _aws(clc, "delete-key-pair", "--key-name", name)
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout)["KeyPairId"] == made["KeyPairId"]

