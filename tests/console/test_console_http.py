"""The console's sign-in and its walls between accounts, over plain HTTP against the whole
cloud: a wrong secret, an unknown key or a forged cookie gets no session; a signed-in account
sees its own instances and never another's (not in the instance list, not on the nodes, not in
a trace), while the cloud admin sees both."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer

from clc.console.session import COOKIE
from services.messages.identity import AccessKeyInfo
from tests.console.support import launch, signed_in
from tests.support.cloud import Cloud, running_cloud


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("console-http"), nodes=2) as c:
        yield c


@pytest.fixture(scope="module")
def people(cloud: Cloud) -> dict[str, AccessKeyInfo]:
    return {"alice": cloud.new_account("alice"), "bob": cloud.new_account("bob")}


@pytest.fixture(scope="module")
def alices(cloud: Cloud, people: dict[str, AccessKeyInfo]) -> tuple[str, str]:
    """Alice's running instance and the id of the RunInstances that launched it."""
    image = cloud.register_image(public=True)
    return launch(cloud, image, people["alice"])


def test_sign_in_refused_with_a_wrong_secret(cloud: Cloud) -> None:
    with httpx.Client(base_url=cloud.clc_url, timeout=30) as client:
        wrong = client.post("/console/login", data={"access_key": cloud.admin.access_key,
                                                    "secret_key": cloud.admin.secret_key + "x"})
        assert wrong.status_code == 401
        assert "Sign-in refused" in wrong.text
        assert COOKIE not in wrong.headers.get("set-cookie", "")
        unknown = client.post("/console/login", data={"access_key": "AKIDOESNOTEXIST00000",
                                                      "secret_key": cloud.admin.secret_key})
        assert unknown.status_code == 401
        # Still signed out: pages send to the sign-in form, fragments answer 401.
        page = client.get("/console/instances")
        assert page.status_code == 303 and page.headers["location"] == "/console/login"
        assert client.get("/console/instances?fragment=1").status_code == 401


def test_a_cookie_not_signed_with_the_cloud_secret_is_no_session(cloud: Cloud) -> None:
    forged = URLSafeTimedSerializer("not-the-cloud-secret", salt="eucasim-console-session").dumps(
        {"k": cloud.admin.access_key, "s": "0" * 32})
    answer = httpx.get(f"{cloud.clc_url}/console/instances", cookies={COOKIE: forged}, timeout=30)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/login"


def test_sign_in_and_out(cloud: Cloud) -> None:
    with signed_in(cloud.clc_url, cloud.admin) as client:
        page = client.get("/console/topology")
        assert page.status_code == 200 and "cloud admin" in page.text
        out = client.post("/console/logout")
        assert out.status_code == 303
        assert client.get("/console/topology").status_code == 303


def test_one_account_does_not_see_anothers_instances(cloud: Cloud, people: dict[str, AccessKeyInfo],
                                                     alices: tuple[str, str]) -> None:
    instance_id, request_id = alices
    with signed_in(cloud.clc_url, people["alice"]) as alice, signed_in(cloud.clc_url, people["bob"]) as bob, \
            signed_in(cloud.clc_url, cloud.admin) as admin:
        assert instance_id in alice.get("/console/instances").text
        assert instance_id in alice.get("/console/nodes").text
        assert "placed" in alice.get(f"/console/trace?request_id={request_id}").text

        for path in ("/console/instances", "/console/instances?fragment=1", "/console/nodes",
                     "/console/network"):
            seen = bob.get(path)
            assert seen.status_code == 200
            assert instance_id not in seen.text, path
        trace = bob.get(f"/console/trace?request_id={request_id}")
        assert "made by another account" in trace.text and "placed" not in trace.text
        assert request_id not in bob.get("/console/trace").text   # not among his recent requests

        everyone = admin.get("/console/instances").text
        assert instance_id in everyone and "alice" in everyone
