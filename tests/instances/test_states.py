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
    # A final state never changes, not even its reason.
    assert transition(instance, "terminated", server_error("later news")) is False
    assert instance.state_reason_message == "Server.InternalError: node went away"


def test_news_about_a_live_instance_changes_its_reason_not_its_state():
    instance = _instance("running")
    down = server_error("node node-1 is down")
    assert transition(instance, "running", down) is True
    assert (instance.state, instance.state_reason_code) == ("running", "Server.InternalError")
    assert transition(instance, "running", down) is False
    assert transition(instance, "running") is True  # the node came back: no reason any more
    assert instance.state_reason_code is None and instance.state_reason_message is None


def test_a_stale_report_never_moves_an_instance_back():
    instance = _instance("running")
    with pytest.raises(TransitionError):
        transition(instance, "pending")
    assert instance.state == "running"


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
