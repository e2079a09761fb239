"""The compiled lake decoder gives fastavro + `fan_from_scoring`'s fans and Failures, exactly.

Differential: arbitrary `scoring` records (hostile text included: Unicode, Python-only
whitespace, empty, NUL, other campaigns) under arbitrary writer schemas the lake may hold after
schema evolution (fields added, removed, reordered, retyped: unions with null, numbers of every
width, complex fields to skip: records, enums, fixed, arrays, maps, logical types), written by
fastavro with either codec in blocks of any size and read from chunks cut anywhere, through
`kernel_fans` and through the reference. Without the kernel these skip (locally) or fail
(CI=true): tests/support/kernel.py.
"""

from __future__ import annotations

import io
import itertools
import json
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.avro import iter_container
from adapters.avro_fans import LakeObjectDamaged, kernel_fans, scoring_plan
from adapters.aws.lake_fans import fan_from_scoring
from tests.support.kernel import require_kernel

CAMPAIGN = "c1"


@pytest.fixture(scope="module")
def kernel() -> Any:
    return require_kernel()


NULL_TEXT = ["null", "string"]
# Per needed field: the writer types it may have; None = not in the writer schema.
NEEDED: dict[str, list[Any]] = {
    "campaignId": ["string", NULL_TEXT, ["null", "string", "long"]],
    "globalUserId": ["string", NULL_TEXT, ["null", "string", "long"], None],
    "score": ["double", "float", "long", "int", ["null", "double"], "string", "boolean", None],
    "band_score": [["null", "double"], ["null", "float", "long"], "boolean", None],
    "verdict": [["null", "boolean"], "boolean", ["null", "boolean", "string"], None],
}
for _name in ("marketId", "memberId", "firstName", "lastName", "email", "phone", "locale"):
    NEEDED[_name] = [NULL_TEXT, "string", ["null", "string", "bytes"], ["null", "long"], None]

# Fields a wave does not read, which the kernel must skip by type (named types named once:
# each name is defined inline by the one field using it).
SKIPPED: list[Any] = [
    "string",
    "bytes",
    "float",
    {"type": "array", "items": "string"},
    {"type": "map", "values": "string"},
    ["null", {"type": "map", "values": "string"}],
    ["null", {"type": "long", "logicalType": "timestamp-millis"}],
    {"type": "enum", "name": "Colour", "symbols": ["RED", "GREEN", "BLUE"]},
    {"type": "fixed", "name": "Hash", "size": 4},
    {
        "type": "record",
        "name": "Nested",
        "fields": [
            {"name": "a", "type": ["null", "int", "string"]},
            {"name": "b", "type": {"type": "array", "items": {"type": "map", "values": "long"}}},
            {"name": "c", "type": "boolean"},
        ],
    },
]

PAD = st.sampled_from(["", "", " ", "\u00a0", "\u3000", "\x1f", "\x0b", "\u2028", "\x85", "\t"])
HOSTILE = st.sampled_from(
    ["", " ", "\x00", "\u200b", "\ufeff", "\U0001f600", "\u00e9t\u00e9", "a\x1cb", "\r\n", "-"]
)
TEXT = st.one_of(
    st.builds(lambda p, t, q: p + t + q, PAD, st.text(max_size=8), PAD),
    HOSTILE,
    st.sampled_from(["g1", "g2", "m1", "en-US"]),
)


def value_for(schema: Any, field: str) -> st.SearchStrategy[Any]:
    if isinstance(schema, list):
        return st.one_of([value_for(branch, field) for branch in schema])
    kind = schema["type"] if isinstance(schema, dict) else schema
    if isinstance(schema, dict) and schema.get("logicalType") == "timestamp-millis":
        return st.integers(0, 2**41)
    simple: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "float": st.floats(width=32),
        "double": st.floats(),
        "bytes": st.binary(max_size=6),
        "string": st.sampled_from([CAMPAIGN, " c1", "c2"]) if field == "campaignId" else TEXT,
    }
    if kind in simple:
        return simple[kind]
    if kind == "array":
        return st.lists(value_for(schema["items"], field), max_size=3)
    if kind == "map":
        return st.dictionaries(TEXT, value_for(schema["values"], field), max_size=3)
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "fixed":
        return st.binary(min_size=schema["size"], max_size=schema["size"])
    return st.fixed_dictionaries({f["name"]: value_for(f["type"], field) for f in schema["fields"]})


@st.composite
def lake_files(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    fields = []
    for name, types in NEEDED.items():
        writer_type = draw(st.sampled_from(types))
        if writer_type is not None:
            fields.append({"name": name, "type": writer_type})
    skipped_fields = draw(st.lists(st.sampled_from(SKIPPED), max_size=4, unique_by=str))
    for i, skipped in enumerate(skipped_fields):
        fields.append({"name": f"x{i}", "type": skipped})
    fields = draw(st.permutations(fields))
    schema = {"type": "record", "name": "Scoring", "namespace": "lake", "fields": fields}
    row = st.fixed_dictionaries({f["name"]: value_for(f["type"], f["name"]) for f in fields})
    return schema, draw(st.lists(row, max_size=30))


def write(schema: dict[str, Any], records: list[dict[str, Any]], codec: str, block: int) -> bytes:
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(schema), records, codec=codec, sync_interval=block)
    return out.getvalue()


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def reference(data: bytes, coded: set[str]) -> list[str]:
    return [
        repr(fan_from_scoring(record, coded))
        for record in iter_container(io.BytesIO(data))
        if record.get("campaignId") == CAMPAIGN
    ]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    lake_files(),
    st.sampled_from(["null", "deflate"]),
    st.integers(1, 400),
    st.lists(st.integers(0, 10**6), max_size=6),
    st.sets(st.sampled_from(["g1", "g2", "a"])),
)
def test_the_kernel_gives_the_references_fans_and_failures_for_any_writer_schema(
    kernel: Any,
    lake: tuple[dict[str, Any], list[dict[str, Any]]],
    codec: str,
    block: int,
    points: list[int],
    coded: set[str],
) -> None:
    schema, records = lake
    data = write(schema, records, codec, block)
    fans = kernel_fans(kernel, "avro/scoring/k.avro", iter(cut(data, points)), CAMPAIGN, coded)
    assert fans is not None, "every schema drawn here is one the kernel reads"
    # repr: a NaN score is equal to itself only by its text
    assert [repr(f) for f in fans] == reference(data, coded)


def test_the_lakes_own_scoring_schema_is_read_by_the_kernel() -> None:
    with open("adapters/schemas/scoring.avsc", encoding="utf-8") as f:
        assert scoring_plan(json.load(f)) is not None


@pytest.mark.parametrize(
    "schema",
    [
        # fastavro gives an enum's symbol as text and a logical type's value as an object
        {"name": "marketId", "type": {"type": "enum", "name": "M", "symbols": ["m1"]}},
        {"name": "marketId", "type": ["null", {"type": "string", "logicalType": "uuid"}]},
        {"name": "score", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        # a type that holds itself is not flattened into a plan
        {"name": "next", "type": ["null", "Scoring"]},
        {"name": "x", "type": "NoSuchType"},
    ],
)
def test_a_schema_the_kernel_does_not_read_exactly_is_left_to_fastavro(
    kernel: Any, schema: dict[str, Any]
) -> None:
    writer = {"type": "record", "name": "Scoring", "fields": [{"name": "campaignId",
              "type": "string"}, schema]}  # fmt: skip
    assert scoring_plan(writer) is None


@pytest.mark.parametrize(
    ("damage", "where"),
    [
        (lambda d: d[: len(d) - 30], "block 0"),  # cut inside the last block
        (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "block 0"),  # a sync marker changed
        (lambda d: d.replace(b"g7", b"\xff\xfe"), "not UTF-8"),  # a broken string
        (lambda d: d[:6], "header"),
    ],
)
def test_damaged_avro_is_an_error_naming_the_object_and_where(
    kernel: Any, damage: Any, where: str
) -> None:
    with open("adapters/schemas/scoring.avsc", encoding="utf-8") as f:
        schema = json.load(f)
    records = [
        {"type": "scoring", "dedupeId": f"d{i}", "campaignId": CAMPAIGN, "globalUserId": f"g{i}",
         "score": 0.5}
        for i in range(20)
    ]  # fmt: skip
    data = damage(write(schema, records, "null", 16000))
    with pytest.raises(LakeObjectDamaged, match=rf"lake object avro/scoring/k\.avro: .*{where}"):
        fans = kernel_fans(kernel, "avro/scoring/k.avro", iter([data]), CAMPAIGN, set())
        assert fans is not None
        list(fans)


def test_named_types_used_again_by_name_are_skipped_by_their_definition(kernel: Any) -> None:
    schema = {
        "type": "record",
        "name": "Scoring",
        "namespace": "lake",
        "fields": [
            {"name": "colour", "type": {"type": "enum", "name": "Colour", "symbols": ["R", "G"]}},
            {"name": "again", "type": ["null", "Colour"]},
            {"name": "full", "type": {"type": "array", "items": "lake.Colour"}},
            {
                "name": "inner",
                "type": {
                    "type": "record",
                    "name": "Inner",
                    "namespace": "other",
                    "fields": [
                        {"name": "h", "type": {"type": "fixed", "name": "H", "size": 3}},
                        {"name": "h2", "type": "H"},  # other.H: the record's namespace
                    ],
                },
            },
            {"name": "inner2", "type": ["null", "other.Inner"]},
            {"name": "campaignId", "type": "string"},
            {"name": "globalUserId", "type": "string"},
            {"name": "score", "type": "double"},
        ],
    }
    records = [
        {"colour": "G", "again": "R" if i % 2 else None, "full": ["R", "G"][: i % 3],
         "inner": {"h": b"abc", "h2": b"def"}, "inner2": None if i % 2 else {"h": b"xyz",
         "h2": b"uvw"}, "campaignId": CAMPAIGN, "globalUserId": f"g{i}", "score": i / 7}
        for i in range(40)
    ]  # fmt: skip
    data = write(schema, records, "deflate", 200)
    fans = kernel_fans(kernel, "avro/scoring/k.avro", iter([data]), CAMPAIGN, {"g3"})
    assert fans is not None
    assert [repr(f) for f in fans] == reference(data, {"g3"})


def test_bytes_after_a_blocks_records_are_damage_not_ignored(kernel: Any) -> None:
    # fastavro reads a block's count of records and ignores what follows: a count written
    # too low would lose records silently.
    from adapters.avro_container import ChunkReader, block_bytes, header_bytes, read_header
    from adapters.avro_container import iter_blocks as blocks

    schema = {"type": "record", "name": "S", "fields": [{"name": "campaignId", "type": "string"}]}
    data = write(schema, [{"campaignId": CAMPAIGN}] * 3, "null", 16000)
    reader = ChunkReader([data])
    header = read_header(reader)
    (block,) = blocks(reader, header.sync)
    damaged = header_bytes(header.meta, header.sync) + block_bytes(
        block.count - 1, bytes(block.data), header.sync
    )
    fans = kernel_fans(kernel, "avro/scoring/k.avro", iter([damaged]), CAMPAIGN, set())
    assert fans is not None
    with pytest.raises(LakeObjectDamaged, match=r"k\.avro: block 0: .*bytes after the block's 2"):
        list(fans)


def test_a_huge_item_count_is_skipped_or_refused_without_spinning(kernel: Any) -> None:
    from adapters.avro_container import block_bytes, encode_long, header_bytes

    schema = {
        "type": "record",
        "name": "S",
        "fields": [
            {"name": "nulls", "type": {"type": "array", "items": "null"}},
            {"name": "longs", "type": {"type": "array", "items": "long"}},
            {"name": "campaignId", "type": "string"},
            {"name": "globalUserId", "type": "string"},
            {"name": "score", "type": "double"},
        ],
    }
    meta = {"avro.schema": json.dumps(schema).encode(), "avro.codec": b"null"}
    sync = bytes(range(16))
    tail = encode_long(2) + CAMPAIGN.encode() + encode_long(2) + b"g1" + bytes(8)

    def lake(record: bytes) -> list[Any]:
        data = header_bytes(meta, sync) + block_bytes(1, record, sync)
        fans = kernel_fans(kernel, "avro/scoring/k.avro", iter([data]), CAMPAIGN, set())
        assert fans is not None
        return list(fans)

    # 2**60 nulls take no bytes: valid, and skipped without walking them
    (fan,) = lake(encode_long(2**60) + encode_long(0) + encode_long(0) + tail)
    assert fan.unwrap().global_user_id == "g1"
    with pytest.raises(LakeObjectDamaged, match="more than the rest of the block holds"):
        lake(encode_long(0) + encode_long(2**60) + tail)


def test_a_codec_other_than_null_or_deflate_is_left_to_fastavro(kernel: Any) -> None:
    with open("adapters/schemas/scoring.avsc", encoding="utf-8") as f:
        schema = json.load(f)
    records = [{"type": "scoring", "dedupeId": "d", "campaignId": CAMPAIGN, "globalUserId": "g",
                "score": 0.5}]  # fmt: skip
    data = write(schema, records, "deflate", 16000).replace(b"deflate", b"zstandard"[:7])
    assert kernel_fans(kernel, "avro/scoring/k.avro", iter([data]), CAMPAIGN, set()) is None
