"""Every row of any file, garbage included, is accounted for exactly once."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.clock import FixedClock
from domain.models import DEFAULT_BAND_TIERS, BandTier, Campaign, ObjectRef
from domain.scoring.bands import NO_BAND, BandScale
from domain.scoring.columns import parse_header
from domain.scoring.reference import transform_rows
from domain.scoring.transform import Chunk, TransformContext
from domain.workers.process_scored_files import process_scored_files
from tests.support.memory_objects import InMemoryObjectStore
from tests.support.memory_scored_files import (
    InMemoryCampaignDirectory,
    InMemoryRecordStream,
    RecordingNotifier,
)

SOURCE = ObjectRef("b", "scored/c9.1700000000.txt")
SCRUBBED = ObjectRef("b", "scrubbed/c9.1700000000.csv")
BLACKLIST = ObjectRef("b", "blacklist.txt")
HEADER = b"globalUserId\temail\tphone\tscore\tmarketId"

CELL = st.one_of(
    st.sampled_from(["", " ", "0.5", "1", "0", "-0.1", "nan", "1e-3", "=1+1", '"q"', "a,b", "\r"]),
    st.sampled_from(["fan@gmail.com", "x@mailinator.com", "banned@x.org", "(212) 555-0123"]),
    st.sampled_from(["+44 20 7946 0958", "555-1234", "+12125550123", "@SUM(A1)"]),
    st.text(max_size=12),
)
GOOD_ROW = st.tuples(
    st.text(alphabet="abcdef0123456789", min_size=1, max_size=8),
    st.sampled_from(["fan@gmail.com", "x@mailinator.com", "BANNED@x.org", "bad email"]),
    st.sampled_from(["(212) 555-0123", "+44 20 7946 0958", "555-1234", ""]),
    st.floats(min_value=0, max_value=1).map(repr),
    st.text(max_size=4),
).map(lambda cells: "\t".join(cells).encode())
GARBAGE_ROW = st.one_of(
    st.lists(CELL, max_size=7).map(lambda cells: "\t".join(cells).encode()),
    st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")),
)
# A line never holds a line feed: that is what ends it.
FILES = st.lists(st.one_of(GOOD_ROW, GARBAGE_ROW).map(lambda b: b.replace(b"\n", b"")), max_size=40)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(FILES, st.integers(min_value=1, max_value=9), st.booleans())
def test_in_equals_out_plus_rejected_and_each_row_appears_once(
    chunk_transform, rows: list[bytes], rows_per_chunk: int, crlf: bool
) -> None:
    end = b"\r\n" if crlf else b"\n"
    data = end.join([HEADER, *rows]) + end
    store = InMemoryObjectStore({SOURCE: data, BLACKLIST: b"banned@x.org\n"})
    stream = InMemoryRecordStream(max_record_bytes=600)
    counts = process_scored_files(
        SOURCE,
        store=store,
        stream=stream,
        campaigns=InMemoryCampaignDirectory([Campaign("c9", band_salt=b"k")]),
        notifier=RecordingNotifier(),
        clock=FixedClock(datetime(2024, 1, 1, tzinfo=UTC)),
        encode=orjson.dumps,
        blacklist=BLACKLIST,
        rows_per_chunk=rows_per_chunk,
        transform=chunk_transform,
    ).unwrap()

    lines_in_file = len(store.objects[SOURCE].split(end)) - 2  # minus header, minus final ""
    assert counts.rows_in == lines_in_file
    assert counts.rows_in == counts.rows_out + counts.rows_rejected
    assert counts.rows_rejected == sum(counts.rejected_by_reason.values())
    assert counts.rows_out == len(stream.records)

    scrubbed = list(csv.DictReader(io.StringIO(store.objects[SCRUBBED].decode())))
    assert [int(r["row"]) for r in scrubbed] == list(range(2, 2 + counts.rows_in))
    assert sum(r["verdict"] == "true" for r in scrubbed) == counts.rows_out
    assert all(r["reason"] for r in scrubbed if r["verdict"] == "false")
    streamed_rows = [json.loads(r.data)["__meta"]["row"] for r in stream.records]
    assert streamed_rows == [int(r["row"]) for r in scrubbed if r["verdict"] == "true"]
    for row in scrubbed:
        for cell in row.values():
            assert cell[:1] not in ("=", "@") or cell.startswith("'")


@given(FILES)
def test_the_transform_alone_accounts_for_every_line(chunk_transform, rows: list[bytes]) -> None:
    chunk = Chunk(2, b"\n".join(rows))
    result = chunk_transform(_context(), chunk)
    assert result.rows == chunk.line_count
    assert result.rows == result.accepted + sum(result.rejected.values())
    assert len(result.csv.split(b"\r\n")) >= result.rows


def _context() -> TransformContext:
    return TransformContext.for_campaign(
        Campaign("c9"),
        source_uri=SOURCE.uri,
        layout=parse_header(HEADER).unwrap(),
        bands=BandScale.build("c9", DEFAULT_BAND_TIERS, b"k").unwrap(),
        blacklist=frozenset({"banned@x.org"}),
        encode=orjson.dumps,
        max_record_bytes=600,
    )


@settings(max_examples=100)
@given(FILES)
def test_the_production_transform_gives_the_references_result(
    chunk_transform, rows: list[bytes]
) -> None:
    chunk = Chunk(2, b"\n".join(rows))
    fast = chunk_transform(_context(), chunk)
    slow = transform_rows(_context(), chunk)
    assert fast == slow


# Band names are the campaign's, typed by an operator: a comma, quote or line break in one must
# be quoted like any other cell, or every column after it shifts for the spreadsheet reading it.
TIER_NAMES = st.one_of(
    st.sampled_from(["lo,w", 'h"i', "a\r\nb", "x\ny", ",", '"', "plain", " sp ace "]),
    st.text(min_size=1, max_size=6),
)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(TIER_NAMES, min_size=2, max_size=2, unique=True),
    st.lists(GOOD_ROW.map(lambda b: b.replace(b"\n", b"")), min_size=1, max_size=20),
)
def test_any_band_name_lands_in_its_own_column_of_the_scrubbed_file(
    chunk_transform, names: list[str], rows: list[bytes]
) -> None:
    tiers = (BandTier(names[0], 0.0, 0.5), BandTier(names[1], 0.5, 1.0))
    store = InMemoryObjectStore({SOURCE: b"\n".join([HEADER, *rows]) + b"\n", BLACKLIST: b""})
    stream = InMemoryRecordStream(max_record_bytes=600)
    process_scored_files(
        SOURCE,
        store=store,
        stream=stream,
        campaigns=InMemoryCampaignDirectory([Campaign("c9", band_tiers=tiers, band_salt=b"k")]),
        notifier=RecordingNotifier(),
        clock=FixedClock(datetime(2024, 1, 1, tzinfo=UTC)),
        encode=orjson.dumps,
        blacklist=BLACKLIST,
        transform=chunk_transform,
    ).unwrap()

    reader = csv.reader(io.StringIO(store.objects[SCRUBBED].decode(), newline=""))
    header, *lines = list(reader)
    assert len(lines) == len(rows)
    assert all(len(line) == len(header) for line in lines)
    bands = {row: band for row, band in ((int(x[0]), x[header.index("band")]) for x in lines)}
    assert set(bands.values()) <= {*names, NO_BAND, ""}  # "": a row rejected before scoring
    for record in stream.records:
        fields = json.loads(record.data)
        assert bands[fields["__meta"]["row"]] == fields["band"]
