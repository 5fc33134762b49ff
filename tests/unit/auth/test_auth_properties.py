"""Properties: whatever key, query or form values botocore signs, the server agrees."""

from __future__ import annotations

from urllib.parse import quote

from auth_clients import ACCESS_KEY, SECRET_KEY, lookup, view_of
from botocore.auth import HmacV1Auth, S3SigV4Auth, SigV2Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence
from hypothesis import given, settings
from hypothesis import strategies as st

from services.auth import verify_ec2, verify_s3

CREDENTIALS = Credentials(ACCESS_KEY, SECRET_KEY)
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
keys = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30)
params = st.dictionaries(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8),
                         text, max_size=4)  # fmt: skip
subresource_values = st.fixed_dictionaries(
    {}, optional={"uploadId": text, "versionId": text, "response-content-disposition": text}
)

# Set per test, not as a profile: a loaded profile would change every other suite's settings.
few = settings(max_examples=40, deadline=None)


def _s3_url(key: str, query: dict[str, str]) -> str:
    # How botocore's rest serializer puts a key in the path: everything but "/" and "~" encoded.
    url = f"http://127.0.0.1:8777/bucket/{quote(key, safe='/~')}"
    return f"{url}?{percent_encode_sequence(query)}" if query else url


@few
@given(key=keys, query=params)
def test_any_key_and_query_signed_with_s3_sigv4_verifies(key: str, query: dict[str, str]) -> None:
    request = AWSRequest(method="GET", url=_s3_url(key, query))
    S3SigV4Auth(CREDENTIALS, "s3", "us-east-1").add_auth(request)
    assert verify_s3(view_of(request.prepare(), with_body=False), lookup) is not None


@few
@given(key=keys, query=subresource_values)
def test_any_key_and_sub_resource_signed_with_s3_sigv2_verifies(key: str, query: dict[str, str]) -> None:
    request = AWSRequest(method="GET", url=_s3_url(key, query))
    HmacV1Auth(CREDENTIALS).add_auth(request)
    assert verify_s3(view_of(request.prepare(), with_body=False), lookup) is not None


@few
@given(form=params)
def test_any_form_signed_with_ec2_sigv4_verifies(form: dict[str, str]) -> None:
    request = AWSRequest(
        method="POST", url="http://127.0.0.1:8773/services/compute",
        data={"Action": "DescribeRegions", **form},
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )  # fmt: skip
    SigV4Auth(CREDENTIALS, "ec2", "us-east-1").add_auth(request)
    assert verify_ec2(view_of(request.prepare()), lookup).access_key == ACCESS_KEY


@few
@given(form=params)
def test_any_form_signed_with_ec2_sigv2_verifies(form: dict[str, str]) -> None:
    request = AWSRequest(
        method="POST", url="http://127.0.0.1:8773/",
        data={"Action": "DescribeRegions", **{k: v for k, v in form.items() if k != "Signature"}},
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )  # fmt: skip
    SigV2Auth(CREDENTIALS).add_auth(request)
    assert verify_ec2(view_of(request.prepare()), lookup).access_key == ACCESS_KEY
