"""What the per-chunk transform takes and gives: the chunk, the per-file context, the result,
(the reason and tag codes are in domain/scoring/reasons.py).

Separate from the transforms so that the production one (domain/scoring/transform.py) and the
reference (domain/scoring/reference.py) share them without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.models import Campaign
from domain.scoring.bands import BandScale
from domain.scoring.columns import ColumnLayout
from domain.scoring.emails import DomainPolicy, default_domain_policy
from domain.scoring.phones import country_code_for_region
from domain.scoring.reasons import Reason

OPTIONAL_RECORD_FIELDS = ("memberId", "firstName", "lastName", "marketId", "locale")


@dataclass(frozen=True, slots=True)
class Chunk:
    """Consecutive lines of the scored file, line ends removed, joined with b"\\n" (one bytes
    object pickles far faster than thousands). `first_row` is the first line's number."""

    first_row: int
    data: bytes
    # (offset in the chunk, length in bytes) of lines longer than the reader's bound: their
    # place in `data` is an empty line; the transform rejects them as line_too_long.
    overlong: tuple[tuple[int, int], ...] = ()
    # Each line's number, when the lines are not consecutive (the rows the compiled kernel
    # hands back, adapters/row_kernel.py); empty: first_row, first_row + 1, ...
    row_numbers: tuple[int, ...] = ()

    @property
    def line_count(self) -> int:
        return self.data.count(b"\n") + 1


@dataclass(frozen=True)
class TransformContext:
    """Everything the transform needs besides the lines; built once per file. Large (the
    blacklist) and so installed once per worker process by a parallel mapper."""

    campaign_id: str
    source_uri: str
    layout: ColumnLayout
    bands: BandScale
    home_region: str
    home_country_code: int
    allow_intl_phones: bool
    blacklist: frozenset[str]
    domains: DomainPolicy
    encode: Callable[[Mapping[str, Any]], bytes]
    max_record_bytes: int

    @classmethod
    def for_campaign(
        cls,
        campaign: Campaign,
        *,
        source_uri: str,
        layout: ColumnLayout,
        bands: BandScale,
        blacklist: frozenset[str],
        encode: Callable[[Mapping[str, Any]], bytes],
        max_record_bytes: int,
    ) -> TransformContext:
        """The context for one file of `campaign`: region facts derived from its settings."""
        return cls(
            campaign_id=campaign.campaign_id,
            source_uri=source_uri,
            layout=layout,
            bands=bands,
            home_region=campaign.home_region.upper(),
            home_country_code=country_code_for_region(campaign.home_region),
            allow_intl_phones=campaign.allow_intl_phones,
            blacklist=blacklist,
            domains=default_domain_policy(),
            encode=encode,
            max_record_bytes=max_record_bytes,
        )


@dataclass(slots=True)
class ChunkResult:
    """One chunk's output. rows = accepted + sum(rejected.values()). `tags`, `tagged` and
    `bands` count accepted rows only (what flows downstream)."""

    rows: int
    csv: bytes
    partition_keys: list[str]
    payloads: list[bytes]
    # The line number of each payload's row (so a resumed run can put exactly the rows whose
    # records the stream had not acknowledged).
    record_rows: list[int] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    tags: dict[str, int] = field(default_factory=dict)
    tagged: int = 0
    bands: dict[str, int] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return len(self.payloads)


@dataclass(frozen=True, slots=True)
class TooLong:
    """A line the reader did not hold: `length` bytes."""

    length: int


Line = str | tuple[bytes, int] | TooLong


def decode_lines(chunk: Chunk) -> list[Line]:
    """Lines as text; an undecodable line stays bytes, with the offset of its first bad byte;
    an over-long one is a TooLong."""
    data = chunk.data
    lines: list[Line]
    try:
        lines = list(data.decode("utf-8").split("\n"))
    except UnicodeDecodeError:
        lines = []
        for raw in data.split(b"\n"):
            try:
                lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError as error:
                lines.append((raw, error.start))
    for offset, length in chunk.overlong:
        lines[offset] = TooLong(length)
    return lines


def too_long_reason(line: TooLong) -> str:
    """The CSV reason of an over-long line: its size, never its content."""
    return f"{Reason.LINE_TOO_LONG}: line is {line.length} bytes, longer than the reader takes"


def parse_score(text: str) -> float | None:
    """A score: ASCII digits only, as its producer writes them. float() also takes "1_0"
    (= 10.0), a typo, and fullwidth or other Unicode digits (U+FF11 = 1.0), which no scorer
    writes: both are not numbers here. "-0" is 0 (streamed as 0.0, never -0.0)."""
    if not text or "_" in text or not text.isascii():
        return None
    try:
        return float(text) + 0.0  # + 0.0 turns -0.0 into 0.0
    except ValueError:
        return None
