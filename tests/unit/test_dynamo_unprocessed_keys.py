"""DynamoUserDirectory retries only the keys BatchGetItem left unprocessed, within its backoff."""

from __future__ import annotations

from typing import Any

from returns.result import Failure, Success

from adapters.aws.dynamo_entries import DynamoUserDirectory
from domain.backoff import Backoff


class ThrottledDynamo:
    """BatchGetItem that leaves the last key of every request unprocessed `throttled` times."""

    def __init__(self, users: dict[str, str], throttled: int) -> None:
        self.users = users
        self.throttled = throttled
        self.requested: list[list[str]] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        (table, request), *_ = RequestItems.items()
        keys = [key["globalUserId"]["S"] for key in request["Keys"]]
        self.requested.append(keys)
        answered, unprocessed = keys, []
        if self.throttled > 0:
            self.throttled -= 1
            answered, unprocessed = keys[:-1], keys[-1:]
        items = [
            {"globalUserId": {"S": g}, "userId": {"S": self.users[g]}}
            for g in answered
            if g in self.users
        ]
        answer: dict[str, Any] = {"Responses": {table: items}}
        if unprocessed:
            left = {**request, "Keys": [{"globalUserId": {"S": g}} for g in unprocessed]}
            answer["UnprocessedKeys"] = {table: left}
        return answer


USERS = {"g1": "u1", "g2": "u2", "g3": "u3"}


def test_unprocessed_keys_are_retried_alone_after_jittered_waits() -> None:
    slept: list[float] = []
    dynamo = ThrottledDynamo(USERS, throttled=2)
    backoff = Backoff(0.1, 2.0, retries=2, sleep=slept.append, random=lambda: 0.5)
    users = DynamoUserDirectory(dynamo, "users", backoff=backoff)
    assert users.user_ids_for(["g1", "g2", "g3"]) == Success(USERS)
    assert dynamo.requested == [["g1", "g2", "g3"], ["g3"], ["g3"]]
    assert slept == [0.05, 0.1]  # full jitter (here half) of 0.1, 0.2 s


def test_keys_still_unprocessed_after_the_budget_are_an_unavailable_failure() -> None:
    dynamo = ThrottledDynamo(USERS, throttled=100)
    users = DynamoUserDirectory(dynamo, "users", backoff=Backoff(retries=3, sleep=lambda _s: None))
    outcome = users.user_ids_for(["g1", "g2"])
    assert isinstance(outcome, Failure)
    assert outcome.failure().kind == "unavailable"
    assert "unprocessed keys" in outcome.failure().detail
    assert len(dynamo.requested) == 4  # the first try and three retries
