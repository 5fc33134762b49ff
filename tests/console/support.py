"""What the console tests share: signing in with httpx as a person's browser would (a form
post, then the session cookie), and an instance launched with boto3 and followed until it runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from services.messages.identity import AccessKeyInfo
from tests.support.cloud import Cloud

FAST = {"Delay": 0.5, "MaxAttempts": 120}


@contextmanager
def signed_in(clc_url: str, key: AccessKeyInfo) -> Iterator[httpx.Client]:
    """An HTTP client holding the console's session cookie of `key`, signed in at `clc_url`."""
    with httpx.Client(base_url=clc_url, timeout=30) as client:
        answer = client.post("/console/login", data={"access_key": key.access_key,
                                                     "secret_key": key.secret_key})
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/console/topology"
        yield client


def launch(cloud: Cloud, image: str, key: AccessKeyInfo | None = None,
           instance_type: str = "m1.small") -> tuple[str, str]:
    """(instance id, the RunInstances request id) of one instance, running."""
    ec2 = cloud.ec2(key)
    answer: dict[str, Any] = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                               InstanceType=instance_type)
    instance_id = answer["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    return instance_id, answer["ResponseMetadata"]["RequestId"]
