"""Who may see and launch an image: private by default, shared with one account, public, reset;
only the owner changes that; and `resolve_for_launch`, the contract RunInstances uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from clc.boot_images import resolve_for_launch
from services.errors import EC2Error
from tests.images.conftest import ImageCloud


def _code(call, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value.response["Error"]["Code"])


def _ids(ec2, **kwargs) -> list[str]:  # type: ignore[no-untyped-def]
    return [i["ImageId"] for i in ec2.describe_images(**kwargs)["Images"]]


def _launch_error(cloud: ImageCloud, account_id: str, image_id: str, kernel: str | None = None) -> str:
    db = cloud.db()
    with pytest.raises(EC2Error) as caught, db.session() as session:
        resolve_for_launch(session, account_id, image_id, kernel, None)
    return caught.value.code


def test_share_with_one_account_then_public_then_reset(cloud: ImageCloud, tmp_path: Path) -> None:
    owner = cloud.ec2()
    bob_key, carol_key = cloud.new_account("bob"), cloud.new_account("carol")
    bob, carol = cloud.ec2(bob_key), cloud.ec2(carol_key)
    emi = cloud.register(tmp_path)

    assert emi not in _ids(bob)
    assert _code(bob.describe_images, ImageIds=[emi]) == "InvalidAMIID.NotFound"
    assert _launch_error(cloud, bob_key.account_id, emi) == "InvalidAMIID.NotFound"
    assert owner.describe_image_attribute(ImageId=emi, Attribute="launchPermission")["LaunchPermissions"] == []

    owner.modify_image_attribute(ImageId=emi, LaunchPermission={"Add": [{"UserId": bob_key.account_id}]})
    assert owner.describe_image_attribute(ImageId=emi, Attribute="launchPermission")["LaunchPermissions"] \
        == [{"UserId": bob_key.account_id}]
    assert _ids(bob, ImageIds=[emi]) == [emi]
    assert emi in _ids(bob, ExecutableUsers=["self"])
    assert emi not in _ids(bob, Owners=["self"])
    assert emi in _ids(bob, Owners=[cloud.admin.account_id])
    assert emi not in _ids(carol)
    db = cloud.db()
    with db.session() as session:
        images = resolve_for_launch(session, bob_key.account_id, emi, None, None)
        assert images.machine.id == emi and images.kernel is None

    # Only the owner may change who launches it, even once it is shared.
    assert _code(bob.modify_image_attribute, ImageId=emi,
                 LaunchPermission={"Add": [{"Group": "all"}]}) == "AuthFailure"
    assert _code(bob.describe_image_attribute, ImageId=emi, Attribute="launchPermission") == "AuthFailure"
    assert _code(carol.modify_image_attribute, ImageId=emi,
                 LaunchPermission={"Add": [{"Group": "all"}]}) == "InvalidAMIID.NotFound"

    # The older flat form (UserGroups + OperationType), as euca2ools sends it.
    owner.modify_image_attribute(ImageId=emi, Attribute="launchPermission", OperationType="add",
                                 UserGroups=["all"])
    assert owner.describe_images(ImageIds=[emi])["Images"][0]["Public"] is True
    assert emi in _ids(carol) and emi in _ids(carol, ExecutableUsers=["all"])
    assert emi in _ids(carol, Filters=[{"Name": "is-public", "Values": ["true"]}])

    owner.modify_image_attribute(ImageId=emi, LaunchPermission={"Remove": [{"UserId": bob_key.account_id}]})
    assert owner.describe_image_attribute(ImageId=emi, Attribute="launchPermission")["LaunchPermissions"] \
        == [{"Group": "all"}]
    owner.modify_image_attribute(ImageId=emi, LaunchPermission={"Add": [{"UserId": bob_key.account_id}]})
    owner.reset_image_attribute(ImageId=emi, Attribute="launchPermission")
    assert owner.describe_image_attribute(ImageId=emi, Attribute="launchPermission")["LaunchPermissions"] == []
    assert emi not in _ids(bob) and emi not in _ids(carol)


def test_bad_launch_permission_changes_change_nothing(cloud: ImageCloud, tmp_path: Path) -> None:
    owner = cloud.ec2()
    friend = cloud.new_account("friend")
    emi = cloud.register(tmp_path)
    assert _code(owner.modify_image_attribute, ImageId=emi, LaunchPermission={
        "Add": [{"UserId": friend.account_id}, {"UserId": "999999999999"}]}) == "InvalidAMIAttributeItemValue"
    assert _code(owner.modify_image_attribute, ImageId=emi, Attribute="launchPermission",
                 OperationType="add", UserGroups=["everyone"]) == "InvalidAMIAttributeItemValue"
    assert _code(owner.modify_image_attribute, ImageId=emi) == "InvalidParameterCombination"
    assert _code(owner.reset_image_attribute, ImageId=emi, Attribute="kernel") == "InvalidParameterValue"
    assert owner.describe_image_attribute(ImageId=emi, Attribute="launchPermission")["LaunchPermissions"] == []


def test_description_attribute(cloud: ImageCloud, tmp_path: Path) -> None:
    owner = cloud.ec2()
    emi = cloud.register(tmp_path, Description="first")
    assert owner.describe_image_attribute(ImageId=emi, Attribute="description")["Description"] == {"Value": "first"}
    owner.modify_image_attribute(ImageId=emi, Description={"Value": "second"})
    assert owner.describe_images(ImageIds=[emi])["Images"][0]["Description"] == "second"
    owner.modify_image_attribute(ImageId=emi, Attribute="description", Value="third")
    assert owner.describe_image_attribute(ImageId=emi, Attribute="description")["Description"] == {"Value": "third"}
    assert _code(owner.describe_image_attribute, ImageId=emi, Attribute="colour") == "InvalidParameterValue"


def test_resolve_for_launch_checks_kinds_and_gives_walrus_urls(cloud: ImageCloud, tmp_path: Path) -> None:
    eki = cloud.register(tmp_path / "k", kind="kernel")
    eri = cloud.register(tmp_path / "r", kind="ramdisk")
    emi = cloud.register(tmp_path / "m", KernelId=eki, RamdiskId=eri)
    account = cloud.admin.account_id
    db = cloud.db()
    with db.session() as session:
        images = resolve_for_launch(session, account, emi, None, None)
        assert (images.kernel.id, images.ramdisk.id) == (eki, eri)  # type: ignore[union-attr]
        machine, kernel, ramdisk = images.refs("http://walrus.internal:8777")
        assert machine.image_id == emi and machine.size_bytes == 64 * 1024
        assert machine.url is not None and machine.url.startswith("http://walrus.internal:8777/internal/images/")
        assert machine.url.endswith(".manifest.xml")
        assert machine.checksum is not None and machine.checksum.startswith("sha256:")
        assert kernel is not None and kernel.image_id == eki and ramdisk is not None
    assert _launch_error(cloud, account, eki) == "InvalidParameterValue"          # not a machine image
    assert _launch_error(cloud, account, emi, kernel=eri) == "InvalidParameterValue"
    assert _launch_error(cloud, account, "emi-0000000g") == "InvalidAMIID.Malformed"
    assert _launch_error(cloud, account, "emi-00000000") == "InvalidAMIID.NotFound"
    cloud.ec2().deregister_image(ImageId=emi)
    assert _launch_error(cloud, account, emi) == "InvalidAMIID.Unavailable"


def test_tags_on_images_are_per_account(cloud: ImageCloud, tmp_path: Path) -> None:
    owner = cloud.ec2()
    dave_key = cloud.new_account("dave")
    dave = cloud.ec2(dave_key)
    emi = cloud.register(tmp_path)
    owner.create_tags(Resources=[emi], Tags=[{"Key": "team", "Value": "owners"}])
    assert _code(dave.create_tags, Resources=[emi], Tags=[{"Key": "x", "Value": "y"}]) == "InvalidAMIID.NotFound"
    owner.modify_image_attribute(ImageId=emi, LaunchPermission={"Add": [{"UserId": dave_key.account_id}]})
    dave.create_tags(Resources=[emi], Tags=[{"Key": "team", "Value": "users"}])
    assert owner.describe_images(ImageIds=[emi])["Images"][0]["Tags"] == [{"Key": "team", "Value": "owners"}]
    assert dave.describe_images(ImageIds=[emi])["Images"][0]["Tags"] == [{"Key": "team", "Value": "users"}]
    tags = owner.describe_tags(Filters=[{"Name": "resource-id", "Values": [emi]}])["Tags"]
    assert [(t["ResourceType"], t["Value"]) for t in tags] == [("image", "owners")]
