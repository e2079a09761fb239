"""The compiled kernel gives the Python transform's ChunkResult, byte for byte, on any rows.

Differential: the same arbitrary chunk (hostile cells included: Unicode, Python-only whitespace,
quotes, commas, CR, tabs, control characters, formula starts, empty cells, huge and odd numbers,
undecodable and over-long lines) through `transform_chunk` and `kernel_transform_chunk`, under
varied contexts (headers, home regions, blacklists, salts, record limits). The kernel's own
formatting rules (Python's repr, orjson's floats and strings, str.strip) are held to Python's.
Without the kernel these skip (locally) or fail (CI=true): tests/support/kernel.py.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.json_codec import exact_dumps
from adapters.row_kernel import _country_table, build_kernel, kernel_transform_chunk
from domain.models import DEFAULT_BAND_TIERS, BandTier, Campaign
from domain.scoring.bands import BandScale
from domain.scoring.columns import parse_header
from domain.scoring.transform import Chunk, TransformContext, transform_chunk
from tests.support.kernel import require_kernel


@pytest.fixture(scope="module")
def kernel() -> Any:
    return require_kernel()


HEADERS = (
    "globalUserId\temail\tphone\tscore",
    "globalUserId\temail\tphone\tscore\tphoneConfirmed\tmemberId\tcity",
    'Score\tcity\tPHONE\temail\tfirstName\tglobalUserId\tphoneConfirmed\tlocale\tx"y\t\u00e9t\u00e9',
)
PAD = st.sampled_from(["", "", "", " ", "  ", "\u00a0", "\u3000", "\x1f", "\x0b", "\u2028", "\x85"])
HOSTILE = st.sampled_from(
    [
        "", '"', '"q"', "a,b", "\r", "x\ry", "=cmd", "+1", "-2", "+\u0661\u0662", "@x", "-",
        "\x00", "\x1f", "\\", "\u00e9", "\U0001f600", "\u200b", "\ufeff", "'", "+1e5", "-.5",
        "=HYPERLINK(\"http://x\")", "\u2028", "\x7f",
    ]
)  # fmt: skip
TEXT = st.text(
    alphabet=st.characters(exclude_characters="\n\t", exclude_categories=["Cs"]), max_size=10
)
GIDS = st.one_of(st.text(alphabet="abcdef0123456789", min_size=1, max_size=8), HOSTILE, TEXT)
EMAILS = st.one_of(
    st.sampled_from(
        [
            "fan@gmail.com", "Fan.Name+tag@Example.co.uk", "x@mailinator.com",
            "y@sub.mailinator.com", "banned@x.org", "BANNED@X.ORG", "a@b.test", "a@b.localhost",
            "bad email", "", "a@" + "b" * 64 + ".com", "a" * 65 + "@x.com", "a@b--c.com",
            "a@xn--bcher-kva.ch", "\uff46an@gmail.com", "fan@gmail\uff0ecom", "a@b.c",
            '"quoted"@x.com', "a..b@x.com", "a@-b.com", "user@yahoo.com", "a@b.co1",
            "x@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 60 + ".com",
        ]
    ),
    HOSTILE,
    TEXT,
)  # fmt: skip
PHONES = st.one_of(
    st.sampled_from(
        [
            "(212) 555-0123", "212-555-0123", "212.555.0123", "2125550123", "+1 212 555 0123",
            "+12125550123", "1-212-555-0123", "1 (212) 555-0123", "+1(212)555-0123",
            "555-1234", "(604) 555-0123", "+1 604 555 0123", "+44 20 7946 0958",
            "+33 1 42 68 53 00", "000-000-0000", "n/a", "",
            "\u0662\u0661\u0662555\u0660\u0661\u0662\u0663",
            "(800) 555-0199", "911", "+1 900 555 0123", "212 555 01234", "12125550123",
        ]
    ),
    st.from_regex(r"\A\+?1?[ .-]?\(?[2-9]\d\d\)?[ .-]?\d{3}[ .-]?\d{4}\Z"),
    HOSTILE,
    TEXT,
)  # fmt: skip
SCORES = st.one_of(
    st.floats(min_value=0, max_value=1).map(repr),
    st.floats(min_value=0, max_value=1).map(str),
    st.sampled_from(
        [
            "0.5", "1", "1.0", "0", "0.0", ".5", "5.", "1e-3", "1E-3", "-0", "nan", "inf",
            "1_0", "\uff12", "0.50", "", "1e-7", "0.00001", "123456789012345678901234567890",
            "1e400", "0.1234567890123456789", "1.0000000000000001", "2", "-0.1", "0x1",
            "1e-400", "00.25", "+0.5",
        ]
    ),
    HOSTILE,
)  # fmt: skip
CONFIRMED = st.one_of(st.sampled_from(["true", "TRUE", "Yes", "y", "t", "1", "no", ""]), HOSTILE)
OTHER = st.one_of(HOSTILE, TEXT)


# Most cells are what a scorer writes, so that most rows are the kernel's to decide (a hostile
# cell in every row would hand every row back and prove nothing about the kernel's own path).
COMMON = {
    "globaluserid": st.text(alphabet="abcdefXYZ0123456789-_\u00e9", min_size=1, max_size=8),
    "email": st.one_of(
        st.sampled_from(
            [
                "fan@gmail.com", "Fan.Name+tag@Example.co.uk", "x@mailinator.com", "", "a@b.test",
                "y@sub.mailinator.com", "BANNED@X.ORG", "ok@yahoo.com", "q@x.io", "bad email",
                "x@mail.gmail.com", "Listed.At.X.org", "LISTED@", "x@mailinator.com.",
            ]
        ),
        # Invalid the ways real files are (the kernel decides these): no '@', nothing before
        # or after it, a space before it; and near misses it must leave to email-validator.
        st.tuples(
            st.sampled_from(["fan1", "fan 1", "", "a.b", " x", "a b.c", "f<n", '"f"', "a@b"]),
            st.sampled_from(["@", ".at.", " @ ", "@@", ""]),
            st.sampled_from(
                ["gmail.com", "", "nobody", "x.com", "Mailinator.com", "x.test", "[1.2.3.4]"]
            ),
        ).map("".join),
    ),
    "phone": st.one_of(
        st.sampled_from(["(212) 555-0123", "2125550123", "+1 212 555 0123", "", "(604) 555-0123"]),
        st.from_regex(r"\A(\+1 ?|1-)?\(?[2-9]\d\d\)?[ .-]?\d{3}[ .-]?\d{4}\Z"),
        # Invalid the ways real files are (the kernel decides those it can prove invalid), and
        # near misses it must leave to phonenumbers (a 7-digit Canadian UAN, IDD, vanity).
        st.sampled_from(
            [
                "n/a", "none", "-", "12345", "555-1234", "310-1234", "1 310 1234", "911",
                "0114420794609", "(212) 555-012", "555-CALL-NOW", "+1 000 000 0000", "1",
                "21255501234", "12125550123456", "+", "x",
                # '+' numbers: validated from phonenumbers' tables per calling code, except
                # where a national prefix might be stripped or the code is non-geographic.
                "+447123456789", "+44 7123 456789", "+44-20-7946-0958", "+4420", "+44 07911 123456",
                "+33 1 42 68 53 00", "+1 310 1234", "+1 604 555 0123", "+800 1234 5678", "+0 123",
                "+999 12345", "+7 912 345 67 89", "+39 06 1234 5678", "+352 123", "+12", "+1 -2",
                "+44  7123 456789", "+44 7123 456789 ", "+1242 357 1234",
            ]
        ),
        st.from_regex(r"\A[0-9 .()-]{1,16}\Z"),
        st.from_regex(r"\A\+[0-9]{1,3}[ -]?[0-9]{1,12}\Z"),
    ),
    "score": st.one_of(
        st.floats(min_value=0, max_value=1).map(repr), st.sampled_from(["0.5", "1", "0", ".5"])
    ),
    "phoneconfirmed": st.sampled_from(["true", "TRUE", "Yes", "no", ""]),
}  # fmt: skip
COMMON_OTHER = st.one_of(
    st.text(alphabet="abc XYZ019.\u00e9\u4e2d", max_size=6),
    st.sampled_from(["=1+1", "+1", "-2.5e3", "@x", "-x", "+", ""]),
)
HOSTILE_OF = {
    "globaluserid": GIDS,
    "email": EMAILS,
    "phone": PHONES,
    "score": SCORES,
    "phoneconfirmed": CONFIRMED,
}


def _cell(kind: str) -> st.SearchStrategy[str]:
    folded = kind.casefold()
    common = COMMON.get(folded, COMMON_OTHER)
    hostile = st.tuples(PAD, HOSTILE_OF.get(folded, OTHER), PAD).map("".join)
    return st.one_of(common, common, common, common, common, common, hostile)


@st.composite
def chunks(draw: st.DrawFn) -> tuple[str, Chunk]:
    header = draw(st.sampled_from(HEADERS))
    names = header.split("\t")
    row = st.tuples(*(_cell(name) for name in names)).map(lambda cells: "\t".join(cells).encode())
    line = st.one_of(
        row,
        row,
        row,
        row.map(lambda b: b + b"\r"),
        st.lists(OTHER, max_size=len(names) + 1).map(lambda c: "\t".join(c).encode()),
        st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")),
    )
    lines = draw(st.lists(line, min_size=1, max_size=30))
    overlong = draw(st.sets(st.integers(0, len(lines) - 1), max_size=2))
    for offset in overlong:
        lines[offset] = b""
    first_row = draw(st.integers(min_value=2, max_value=2**40))
    chunk = Chunk(first_row, b"\n".join(lines), tuple((o, 70_000 + o) for o in sorted(overlong)))
    return header, chunk


@st.composite
def contexts(draw: st.DrawFn) -> dict[str, Any]:
    """The context's varied parts (drawn small: a failing example prints them, not the
    10,000-domain policy)."""
    region = draw(st.sampled_from(["US", "US", "CA", "GB", "PR"]))
    tiers = draw(
        st.sampled_from(
            [
                DEFAULT_BAND_TIERS,
                (BandTier("all", 0.0, 1.0),),
                (BandTier("lo,w", 0.1, 0.5), BandTier('h"i', 0.5, 1.0)),
            ]
        )
    )
    salt = draw(st.binary(min_size=1, max_size=80))
    campaign = Campaign(
        draw(st.sampled_from(["c9", "c\u00e9", 'c"1'])),
        home_region=region,
        allow_intl_phones=draw(st.booleans()),
        band_salt=salt,
    )
    return {
        "campaign": campaign,
        "tiers": tiers,
        "source_uri": draw(st.sampled_from(["s3://b/scored/c9.1.txt", 's3://b/"\u00e9\\.txt'])),
        "encode": draw(st.sampled_from([orjson.dumps, exact_dumps])),
        "max_record_bytes": draw(st.sampled_from([1_048_576, 600, 450])),
    }


def _context(header: str, campaign: Campaign, tiers: Any, **rest: Any) -> TransformContext:
    return TransformContext.for_campaign(
        campaign,
        layout=parse_header(header.encode()).unwrap(),
        bands=BandScale.build(campaign.campaign_id, tiers, campaign.band_salt).unwrap(),
        blacklist=frozenset({"banned@x.org", "fan@gmail.com", "", "listed.at.x.org", "listed@"}),
        **rest,
    )


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_kernel_gives_the_python_transforms_result_on_any_rows(kernel: Any, data: Any) -> None:
    header, chunk = data.draw(chunks())
    ctx = _context(header, **data.draw(contexts()))
    expected = transform_chunk(ctx, chunk)
    assert kernel_transform_chunk(ctx, chunk) == expected
    # Again: the calling codes' tables the first run asked for are the kernel's now.
    assert kernel_transform_chunk(ctx, chunk) == expected


def test_the_kernel_decides_the_common_rows_itself(kernel: Any) -> None:
    """Not a vacuous equality: plain rows (US or no phone, plain or no email) never reach
    Python."""
    header = HEADERS[1]
    rows = [
        "g1\tfan@gmail.com\t(212) 555-0123\t0.5\ttrue\tm1\tParis",
        "g2\t\t\t0.1\tno\t\t=1+1",
        "g3\tA.B@Example.co.uk\t+1 212 555 0123\t1\t\t\t-3",
        "  g4 \t x@y.com\t2125550123\t0.00001\tY\t\u00e9\t\U0001f600",
    ]
    ctx = _plain_context(header)
    made: Any = build_kernel(kernel, ctx)
    chunk = Chunk(2, "\n".join(rows).encode())
    _, cuts, keys, *_ = made.run(chunk.data, chunk.first_row, [])
    assert cuts == []
    assert keys == ["g1", "g2", "g3", "g4"]
    assert kernel_transform_chunk(ctx, chunk) == transform_chunk(ctx, chunk)


def test_rows_the_kernel_cannot_decide_are_handed_back_in_runs(kernel: Any) -> None:
    header = HEADERS[0]
    rows = [
        "g1\tfan@gmail.com\t2125550123\t0.5",
        "g2\tfan@gmail.com\t+44 20 7946 0958\t0.5",  # non-US phone: phonenumbers decides
        'g3\t"q"@x.com\t\t0.5',  # a quote: the csv module writes the line
        "g4\tfan@b\u00fccher.de\t\t0.5",  # IDN: email-validator decides
        "g5\tok@x.com\t\t0.5",
    ]
    ctx = _plain_context(header)
    chunk = Chunk(10, "\n".join(rows).encode())
    made: Any = build_kernel(kernel, ctx)
    _, cuts, keys, *_ = made.run(chunk.data, chunk.first_row, [])
    assert [(start, end) for _, start, end, _, _ in cuts] == [(1, 4)]
    assert keys == ["g1", "g5"]
    assert kernel_transform_chunk(ctx, chunk) == transform_chunk(ctx, chunk)


def test_the_kernel_rejects_blocked_and_blacklisted_rows_and_tags_invalid_emails_and_phones(
    kernel: Any,
) -> None:
    """Blocked domains, the blacklist, the common invalid addresses (no '@', nothing before
    or after it, a space in the local part) and phones surely invalid (no digit, no NANP
    length) are the kernel's: nothing handed back."""
    header = HEADERS[0]
    rows = [
        "g1\tx@mailinator.com\t2125550123\t0.5",  # blocked
        "g2\tBANNED@x.org\t\t0.5",  # blacklisted
        "g3\tfan3.at.gmail.com\t\t0.5",  # no '@': invalid_email
        "g4\tfan4@\t\t0.5",
        "g5\t@nobody\t\t0.5",
        "g6\tfan 6@mailinator.com\t\t0.5",  # invalid and blocked: rejected
        "g7\tok@x.com\t\t0.5",
        "g8\tok@x.com\tn/a\t0.5",  # no digit: invalid_phone
        "g9\tok@x.com\t12345\t0.5",  # no NANP length: invalid_phone
    ]
    ctx = _plain_context(header)
    chunk = Chunk(10, "\n".join(rows).encode())
    made: Any = build_kernel(kernel, ctx)
    _, cuts, keys, *_, rejected, _ = made.run(chunk.data, chunk.first_row, [])
    assert cuts == []
    assert keys == ["g3", "g4", "g5", "g7", "g8", "g9"]
    assert list(rejected) == [2, 1, 0]
    assert kernel_transform_chunk(ctx, chunk) == transform_chunk(ctx, chunk)
    assert kernel_transform_chunk(ctx, chunk) == transform_chunk(ctx, chunk)


def test_the_kernel_validates_plus_numbers_once_it_has_their_calling_codes_table(
    kernel: Any,
) -> None:
    """A '+' number of a calling code the kernel has no table for goes to Python once; its
    table is then given to the kernel, which decides the next chunk's such rows itself:
    international (rejected here: the campaign does not allow them) or invalid."""
    header = HEADERS[0]
    rows = [
        "g1\tok@x.com\t+447123456789\t0.5",  # valid, GB: rejected as international
        "g2\tok@x.com\t+44 20 7946 095\t0.5",  # invalid
        "g3\tok@x.com\t+1 000 000 0000\t0.5",  # invalid
    ]
    ctx = _plain_context(header)
    chunk = Chunk(10, "\n".join(rows).encode())
    made: Any = build_kernel(kernel, ctx)
    first = made.run(chunk.data, chunk.first_row, [])
    assert [(start, end) for _, start, end, _, _ in first[1]] == [(0, 3)]
    assert sorted(first[-1]) == [1, 44]
    for code in first[-1]:
        made.add_country(code, _country_table(code))
    second = made.run(chunk.data, chunk.first_row, [])
    assert second[1] == []
    assert list(second[2]) == ["g2", "g3"]
    assert list(second[-2]) == [0, 0, 1]
    assert kernel_transform_chunk(ctx, chunk) == transform_chunk(ctx, chunk)
    assert kernel_transform_chunk(ctx, chunk) == transform_chunk(ctx, chunk)


# Phones at the edges of the kernel's rules: each one the kernel decides must get the Python
# transform's answer, each one it cannot prove must go to Python.
EDGE_PHONES = (
    "n/a", "12345", "911", "555-1234", "310-1234", "1 310 1234", "1-310-1234", "0114420794609",
    "555-CALL-NOW", "(212) 555-012", "21255501234", "12125550123", "1 212 555 01234",
    "+1 000 000 0000", "+1 100 000 0000", "+1 310 1234", "+1242 357 1234", "+447123456789",
    "+44 7123 456789", "+44 07911 123456", "+44-20-7946-0958", "+4420", "+800 1234 5678",
    "+39 06 1234 5678", "+7 912 345 67 89", "+352 123", "+0 123", "+999 12345", "+12", "+",
    "+1 -2", "+44  7123 456789", "+33 1 42 68 53 00", "+61 4 1234 5678", "+86 138 0013 8000",
)  # fmt: skip


@pytest.mark.parametrize("region", ["US", "CA", "GB", "PR"])
@pytest.mark.parametrize("allow_intl", [False, True])
def test_the_kernel_gives_pythons_answer_on_phones_at_the_edges_of_its_rules(
    kernel: Any, region: str, allow_intl: bool
) -> None:
    header = HEADERS[0]
    rows = [f"g{i}\tok@x.com\t{phone}\t0.5" for i, phone in enumerate(EDGE_PHONES)]
    ctx = TransformContext.for_campaign(
        Campaign("c9", home_region=region, allow_intl_phones=allow_intl, band_salt=b"k"),
        source_uri="s3://b/scored/c9.1.txt",
        layout=parse_header(header.encode()).unwrap(),
        bands=BandScale.build("c9", DEFAULT_BAND_TIERS, b"k").unwrap(),
        blacklist=frozenset(),
        encode=orjson.dumps,
        max_record_bytes=1_048_576,
    )
    chunk = Chunk(2, "\n".join(rows).encode())
    expected = transform_chunk(ctx, chunk)
    assert kernel_transform_chunk(ctx, chunk) == expected
    assert kernel_transform_chunk(ctx, chunk) == expected  # with the calling codes' tables


def _plain_context(header: str) -> TransformContext:
    return TransformContext.for_campaign(
        Campaign("c9", band_salt=b"k"),
        source_uri="s3://b/scored/c9.1.txt",
        layout=parse_header(header.encode()).unwrap(),
        bands=BandScale.build("c9", DEFAULT_BAND_TIERS, b"k").unwrap(),
        blacklist=frozenset({"banned@x.org"}),
        encode=orjson.dumps,
        max_record_bytes=1_048_576,
    )


ANY_FLOAT = st.floats(allow_nan=False, allow_infinity=False)


@given(st.one_of(ANY_FLOAT, st.floats(min_value=0, max_value=1)))
def test_the_kernels_float_text_is_pythons_repr_and_orjsons(kernel: Any, x: float) -> None:
    assert kernel.py_float_repr(x) == repr(x)
    assert kernel.orjson_float(x) == orjson.dumps(x).decode()


@given(st.text())
def test_the_kernels_json_strings_are_orjsons(kernel: Any, text: str) -> None:
    try:
        expected = orjson.dumps(text).decode()
    except TypeError:  # a lone surrogate: never in a decoded line
        return
    assert kernel.json_string(text) == expected


def test_the_kernels_strip_removes_exactly_what_str_strip_does(kernel: Any) -> None:
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        assert kernel.strip(f"{char}a{char}") == f"{char}a{char}".strip(), hex(code)
