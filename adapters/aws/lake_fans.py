"""EligibleFans over the data lake this project writes (the AWS-native alternative to the entry
service): the `scoring` records under `avro/scoring/`, and `codeAssignment` records under
`avro/codeAssignment/` for who already holds a code.

What a scoring record gives a wave: `globalUserId`, `memberId` (as the user id), names, email,
phone (E.164 when valid), locale, `verdict` (false = rejected; null = not judged, competes),
`band_score` (the score selection orders by; the raw `score` when no band was drawn) and one
`marketId` (the lake keeps the primary market only, so from the lake a fan has no later
preferences). Records of other campaigns are skipped; a record that does not fit is a Failure
naming the field.

Streaming: one object at a time, decoded block by block from the store's chunks (never a whole
object in memory): by the compiled kernel where it is built (adapters/avro_fans.py: only the
fields a wave reads, ~1 µs a record), else, or for a schema the kernel does not take, by
fastavro with `fan_from_scoring` (the reference). `decoder`: "auto" (the kernel when built),
"rust" (the kernel, or a clear error when it is not built), "python" (fastavro). An object that
cannot be read is a LakeObjectDamaged naming it and where.

Memory: the set of fans already coded in this campaign (bounded by the codes assigned so far,
not by the fans). The lake may hold a fan twice (a scored file processed twice): the selection
never places a fan twice (see its docstring). For a lake too large to read on one machine, run
the same query in Athena.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from typing import Any

from returns.result import Failure, Result, Success

from adapters.avro import iter_container
from adapters.avro_fans import LakeObjectDamaged, kernel_fans, load_decoder
from domain.chunk_reader import ChunkReader
from domain.models import ObjectInfo
from domain.ports import ObjectStore
from domain.wave_prep.fans import EligibilityQuery, EligibleFan

DECODERS = ("auto", "rust", "python")
# What fastavro raises on damaged data (its own errors are ValueErrors or EOFError).
_DAMAGE = (ValueError, EOFError, IndexError, zlib.error)
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


class DecoderNotBuilt(RuntimeError):
    """decoder="rust" where the compiled kernel is not installed."""


class LakeEligibleFans:
    def __init__(self, store: ObjectStore, bucket: str, decoder: str = "auto") -> None:
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, not {decoder!r}")
        self._store = store
        self._bucket = bucket
        self._kernel = None if decoder == "python" else load_decoder()
        if decoder == "rust" and self._kernel is None:
            raise DecoderNotBuilt(
                "the lake's compiled Avro decoder (scoring_kernel.ScoringPlan) is not installed: "
                "build it with `make install` (cargo), or choose the python decoder"
            )

    def _objects(self, prefix: str) -> Iterator[ObjectInfo]:
        for info in self._store.list_objects(self._bucket, prefix):
            if info.ref.key.endswith(".avro"):
                yield info

    def _read(self, info: ObjectInfo) -> Iterator[dict[str, Any]]:
        stream = io.BufferedReader(ChunkReader(self._store.iter_chunks(info.ref)))
        try:
            yield from iter_container(stream)
        except _DAMAGE as error:
            raise LakeObjectDamaged(f"lake object {info.ref.key}: {error!r}") from error

    def coded_fans(self, campaign_id: str) -> set[str]:
        return {
            str(r["globalUserId"])
            for info in self._objects(CODE_ASSIGNMENT_PREFIX)
            for r in self._read(info)
            if r.get("campaignId") == campaign_id and r.get("globalUserId") and r.get("code")
        }

    def eligible_fans(
        self, campaign_id: str, query: EligibilityQuery
    ) -> Iterator[Result[EligibleFan, str]]:
        coded = set() if query.reassign else self.coded_fans(campaign_id)
        for info in self._objects(SCORING_PREFIX):
            if self._kernel is not None:
                key, chunks = info.ref.key, self._store.iter_chunks(info.ref)
                fans = kernel_fans(self._kernel, key, chunks, campaign_id, coded)
                if fans is not None:
                    yield from fans
                    continue
            for record in self._read(info):
                if record.get("campaignId") == campaign_id:
                    yield fan_from_scoring(record, coded)
