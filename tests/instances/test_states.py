"""The one function that moves instance states, and the metadata service's IMDSv2 tokens."""

from __future__ import annotations

import pytest

from clc.instances import USER_SHUTDOWN, TransitionError, request_termination, server_error, transition
from clc.metadata import Tokens
from clc.models.instances import Instance


def _instance(state: str = "pending", node: str | None = "node-1") -> Instance:
    return Instance(id="i-0000000a", state=state, desired_state="running", node=node,
                    state_transition_reason="")


def test_transitions_record_reasons_and_refuse_what_ec2_never_does():
    instance = _instance()
    assert transition(instance, "running") is True
    assert transition(instance, "running") is False
    assert transition(instance, "terminated", server_error("node went away")) is True
    assert instance.state_reason_code == "Server.InternalError"
    assert instance.state_reason_message == "Server.InternalError: node went away"
    assert instance.terminated_at is not None and instance.desired_state == "terminated"
    with pytest.raises(TransitionError):
        transition(instance, "running")


def test_terminating_a_placed_instance_shuts_it_down_first():
    instance = _instance("running")
    assert request_termination(instance) == "running"
    assert instance.state == "shutting-down" and instance.desired_state == "terminated"
    assert instance.state_reason_code == USER_SHUTDOWN.code
    assert instance.state_transition_reason.startswith("User initiated (")
    never_placed = _instance("pending", node=None)
    request_termination(never_placed)
    assert never_placed.state == "terminated"


def test_tokens_belong_to_one_instance_and_expire():
    tokens = Tokens("secret")
    token = tokens.issue("i-0000000a", 60)
    assert tokens.valid_for(token, "i-0000000a")
    assert not tokens.valid_for(token, "i-0000000b")
    assert not Tokens("other secret").valid_for(token, "i-0000000a")
    assert not tokens.valid_for(token[:-4] + "AAAA", "i-0000000a")
    assert not tokens.valid_for("not a token", "i-0000000a")
    expired = tokens.issue("i-0000000a", -1)
    assert not tokens.valid_for(expired, "i-0000000a")
