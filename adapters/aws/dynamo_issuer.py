"""CodeIssuer on the codes table without Pacman: a fresh code from a generator, written once
(`code#{CODE}`), with the issuer's intent `issuing#{issueKey}` written first so a request
killed anywhere is finished with the same code by the next request with that key."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from returns.result import Failure, Result, Success

from adapters.aws.dynamo_table import (
    DEFAULT_CONCURRENCY,
    MAX_DRAWS,
    Clock,
    _s,
    _Unavailable,
    _unavailable,
    _written_or_current,
    code_pk,
    now_utc,
)
from domain.codes import CodeRequest, CodeType
from domain.models import FailureKind, LookupFailure


class DynamoCodeIssuer:
    """CodeIssuer without Pacman: a fresh code from `generate`, written once (conditional put
    on `code#{CODE}`), recorded as issued to the fan with its product, source and window."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        generate: Callable[[], str],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        clock: Clock = now_utc,
    ) -> None:
        self._db = dynamodb
        self.table = table
        self._generate = generate
        self._clock = clock
        self._pool = ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="issuer")

    def issue(self, request: CodeRequest) -> Result[str, LookupFailure]:
        """With an `issue_key`, idempotent: the intent item `issuing#{key}` names the candidate
        code BEFORE the code is written (first writer wins), so a request killed anywhere is
        finished by the next request with that key with the same code: a kill between issuing
        and the caller's record leaves no code issued and held by nobody (QA found 602 after a
        SIGKILL when the code came first). One more PutItem per code."""
        what = f"code for fan {request.global_user_id!r}"
        key = request.issue_key
        named: str | None = None  # the code the intent names, once it names one
        try:
            for _ in range(MAX_DRAWS):
                code = self._generate()
                if key:
                    code = named = self._intend(key, code, named, what)
                current = _written_or_current(
                    self._db.put_item,
                    _unavailable(what),
                    TableName=self.table,
                    Item=self._item(code, request),
                    ConditionExpression="attribute_not_exists(pk)",
                )
                if current is None:
                    return Success(code)
                if key and current.get("issueKey", {}).get("S") == key:
                    return Success(code)  # an earlier (killed) request wrote it for this fan
                # the code exists for another: draw again
        except _Unavailable as problem:
            return Failure(problem.failure)
        return Failure(LookupFailure(what, FailureKind.INVALID, f"{MAX_DRAWS} draws all collided"))

    def _intend(self, key: str, candidate: str, named: str | None, what: str) -> str:
        """Points `issuing#{key}` at `candidate` (if it names nothing yet, or still `named`, a
        code that collided); returns the code it names afterwards."""
        condition = (
            ("attribute_not_exists(pk)", {})
            if named is None
            else ("code = :named", {"ExpressionAttributeValues": {":named": _s(named)}})
        )
        current = _written_or_current(
            self._db.put_item,
            _unavailable(what),
            TableName=self.table,
            Item={"pk": _s(f"issuing#{key}"), "code": _s(candidate)},
            ConditionExpression=condition[0],
            **condition[1],
        )
        if current is None:
            return candidate
        code = current.get("code", {}).get("S")
        return code if isinstance(code, str) and code else candidate

    def _item(self, code: str, request: CodeRequest) -> dict[str, Any]:
        return {
            "pk": _s(code_pk(code)),
            "code": _s(code),
            "type": _s(str(CodeType.EXTERNAL)),
            "status": _s("issued"),
            "globalUserId": _s(request.global_user_id),
            "productId": _s(request.product_id),
            "source": _s(request.source),
            "validFrom": _s(request.begin.isoformat()),
            "validTo": _s(request.end.isoformat()),
            "issuedAt": _s(self._clock().isoformat()),
            **({"issueKey": _s(request.issue_key)} if request.issue_key else {}),
        }

    def issue_many(
        self, requests: Sequence[CodeRequest], *, deadline_seconds: float | None = None
    ) -> Sequence[Result[str, LookupFailure]]:
        """A request not started by the deadline comes back 'unavailable' (the worker stops and
        a re-run issues it); one started finishes (its key makes the re-run get the same code)."""
        if deadline_seconds is None:
            return list(self._pool.map(self.issue, requests))
        end = time.monotonic() + deadline_seconds

        def issue_in_time(request: CodeRequest) -> Result[str, LookupFailure]:
            if time.monotonic() >= end:
                return Failure(
                    LookupFailure(
                        f"code for fan {request.global_user_id!r}",
                        FailureKind.UNAVAILABLE,
                        f"not started within the deadline of {deadline_seconds:g} s",
                    )
                )
            return self.issue(request)

        return list(self._pool.map(issue_in_time, requests))
