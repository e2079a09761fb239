"""EligibleFans over the data lake this project writes (the AWS-native alternative to the entry
service): the `scoring` records under `avro/scoring/`, and `codeAssignment` records under
`avro/codeAssignment/` for who already holds a code.

What a scoring record gives a wave: `globalUserId`, `memberId` (as the user id), names, email,
phone (E.164 when valid), locale, `verdict` (false = rejected; null = not judged, competes),
`band_score` (the score selection orders by; the raw `score` when no band was drawn) and one
`marketId` (the lake keeps the primary market only, so from the lake a fan has no later
preferences). Records of other campaigns are skipped; a record that does not fit is a Failure
naming the field.

Streaming: one object at a time, decoded block by block by fastavro from the store's chunks
(never a whole object in memory). Memory: the set of fans already coded in this campaign
(bounded by the codes assigned so far, not by the fans). The lake may hold a fan twice (a
scored file processed twice): the selection never places a fan twice (see its docstring).
For a lake too large to read on one machine, run the same query in Athena.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from returns.result import Failure, Result, Success

from adapters.avro import iter_container
from domain.chunk_reader import ChunkReader
from domain.ports import ObjectStore
from domain.wave_prep.fans import EligibilityQuery, EligibleFan

SCORING_PREFIX = "avro/scoring/"
CODE_ASSIGNMENT_PREFIX = "avro/codeAssignment/"


def _text(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    return value.strip() if isinstance(value, str) else ""


def fan_from_scoring(record: dict[str, Any], coded: set[str]) -> Result[EligibleFan, str]:
    # Field by field without a helper call each: 2 M records a wave (benchmarks/README.md).
    get = record.get
    gid = get("globalUserId")
    gid = gid.strip() if isinstance(gid, str) else ""
    if not gid:
        return Failure("scoring record without globalUserId")
    score = get("band_score")
    if score is None:
        score = get("score")
    if not isinstance(score, int | float) or isinstance(score, bool):
        return Failure(f"scoring record {gid}: neither band_score nor score is a number")
    # Unrolled, no generator over the seven fields: ~1 µs a record less (benchmarks/README.md).
    market = get("marketId")
    market = market.strip() if isinstance(market, str) else ""
    member = get("memberId")
    member = member.strip() if isinstance(member, str) else ""
    first = get("firstName")
    first = first.strip() if isinstance(first, str) else ""
    last = get("lastName")
    last = last.strip() if isinstance(last, str) else ""
    email = get("email")
    email = email.strip() if isinstance(email, str) else ""
    phone = get("phone")
    phone = phone.strip() if isinstance(phone, str) else ""
    locale = get("locale")
    locale = locale.strip() if isinstance(locale, str) else ""
    return Success(
        EligibleFan(
            gid,
            float(score),
            (market,) if market else (),
            get("verdict") is not False,
            gid in coded,
            member,
            first,
            last,
            email,
            phone,
            locale,
        )
    )


class LakeEligibleFans:
    def __init__(self, store: ObjectStore, bucket: str) -> None:
        self._store = store
        self._bucket = bucket

    def _records(self, prefix: str) -> Iterator[dict[str, Any]]:
        for info in self._store.list_objects(self._bucket, prefix):
            if not info.ref.key.endswith(".avro"):
                continue
            stream = io.BufferedReader(ChunkReader(self._store.iter_chunks(info.ref)))
            yield from iter_container(stream)

    def coded_fans(self, campaign_id: str) -> set[str]:
        return {
            str(r["globalUserId"])
            for r in self._records(CODE_ASSIGNMENT_PREFIX)
            if r.get("campaignId") == campaign_id and r.get("globalUserId") and r.get("code")
        }

    def eligible_fans(
        self, campaign_id: str, query: EligibilityQuery
    ) -> Iterator[Result[EligibleFan, str]]:
        coded = set() if query.reassign else self.coded_fans(campaign_id)
        for record in self._records(SCORING_PREFIX):
            if record.get("campaignId") == campaign_id:
                yield fan_from_scoring(record, coded)
