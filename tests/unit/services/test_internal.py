"""The internal client signs, the server side refuses anything unsigned or mis-signed, and the
request id travels with the call."""

import httpx
import pytest
from fastapi import Depends
from pydantic import BaseModel

from services.internal import InternalCallError, InternalClient
from services.service_app import make_service_app
from services.tracing import bind_request_id, unbind_request_id
from tests.support.servers import running


class Echo(BaseModel):
    text: str


def _app(secret: str):
    app, recorder = make_service_app("test", secret)

    @app.post("/internal/echo", dependencies=[Depends(app.state.internal_auth)])
    def echo(body: Echo) -> Echo:
        return Echo(text=body.text.upper())

    return app, recorder


def test_signed_call_over_a_socket_passes_and_carries_the_request_id():
    app, recorder = _app("s3cret")
    with running(app) as url:
        # A URL prefix (as several simulated nodes behind one NC have) is covered by the signature.
        client = InternalClient(url, "s3cret")
        token = bind_request_id("req-123")
        try:
            assert client.call("POST", "/internal/echo?x=1", Echo(text="hi"), Echo).text == "HI"
        finally:
            unbind_request_id(token)
        client.close()
    assert recorder.steps("req-123")[0].what.startswith("POST /internal/echo")


@pytest.mark.anyio
async def test_async_signed_call_round_trips():
    from services.internal import AsyncInternalClient
    app, recorder = _app("s3cret")
    client = AsyncInternalClient("http://svc", "s3cret", transport=httpx.ASGITransport(app=app))
    token = bind_request_id("req-abc")
    try:
        reply = await client.call("POST", "/internal/echo", Echo(text="hi"), Echo)
    finally:
        unbind_request_id(token)
    assert reply.text == "HI"
    assert [s.kind for s in recorder.steps("req-abc")] == ["replied"]


@pytest.mark.anyio
async def test_wrong_secret_and_unsigned_calls_are_refused():
    from services.internal import AsyncInternalClient
    app, _ = _app("s3cret")
    transport = httpx.ASGITransport(app=app)
    wrong = AsyncInternalClient("http://svc", "other", transport=transport)
    with pytest.raises(InternalCallError) as info:
        await wrong.call("POST", "/internal/echo", Echo(text="hi"), Echo)
    assert info.value.status == 403
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as plain:
        reply = await plain.post("/internal/echo", json={"text": "hi"})
    assert reply.status_code == 403
