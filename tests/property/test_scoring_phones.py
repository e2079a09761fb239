"""The NANP fast path says exactly what phonenumbers says, for every shape it accepts."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from domain.scoring.phones import (
    PhoneReader,
    check_phone,
    fast_nanp,
    phonenumbers_check,
    slow_check,
)

HOME_REGIONS = st.sampled_from(["US", "CA", "JM", "PR", "GB", "DE", "MX"])
SEPARATOR = st.sampled_from(["", " ", "-", ".", "  ", "/", "--"])
PREFIX = st.sampled_from(["", "1", "+1", "+", "1 ", "+1 ", "+1-", "1-", "1.", "01", "011", "+44"])
DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=5)


@st.composite
def nanp_like(draw: st.DrawFn) -> str:
    """Numbers shaped like North American ones, valid or not, with the separators people use."""
    npa = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    nxx = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    line = draw(st.from_regex(r"[0-9]{4}", fullmatch=True))
    if draw(st.booleans()):
        npa = f"({npa})"
    s1, s2, s3 = draw(SEPARATOR), draw(SEPARATOR), draw(SEPARATOR)
    return f"{draw(PREFIX)}{s1}{npa}{s2}{nxx}{s3}{line}"


@st.composite
def phone_like(draw: st.DrawFn) -> str:
    """Anything a phone cell might hold: digits, separators, a plus, letters, extensions."""
    parts = draw(
        st.lists(
            st.one_of(DIGITS, SEPARATOR, st.sampled_from(["(", ")", "+", "x", "ext", "a", "#"])),
            max_size=10,
        )
    )
    return "".join(parts)


@settings(max_examples=1500)
@given(nanp_like(), HOME_REGIONS)
@example("(212) 555-0123", "US")
@example("+1 268 464 1234", "US")
@example("12125550123", "US")
@example("2125550123", "GB")
@example("+1 416 555 0199", "DE")
def test_fast_path_agrees_with_phonenumbers_on_nanp_shapes(raw: str, home: str) -> None:
    fast = fast_nanp(raw, home)
    if fast is not None:
        assert fast == slow_check(raw, home)


INTERNATIONAL = st.builds(
    "{}{}{}".format,
    st.sampled_from(["+44", "+7", "+39", "+61", "+262", "+590", "+47", "+1", "00", "0", ""]),
    SEPARATOR,
    st.from_regex(r"[0-9]{4,11}", fullmatch=True),
)


@settings(max_examples=1500)
@given(st.one_of(INTERNATIONAL, phone_like(), nanp_like()), HOME_REGIONS)
@example("+44 7700 900123", "US")  # GB, sharing +44 with GG, IM and JE
@example("+44 1481 256789", "US")  # GG
@example("+7 701 123 4567", "US")  # KZ, sharing +7 with RU
@example("+590 690 00 12 34", "US")  # GP, sharing +590 with BL and MF
def test_the_one_lookup_check_equals_phonenumbers_plain_calls(raw: str, home: str) -> None:
    assert phonenumbers_check(raw, home) == slow_check(raw, home)


@settings(max_examples=1000)
@given(st.one_of(nanp_like(), phone_like()), HOME_REGIONS)
def test_check_phone_always_equals_phonenumbers(raw: str, home: str) -> None:
    raw = raw.strip()
    assert check_phone(raw, home) == slow_check(raw, home)


@settings(max_examples=300)
@given(
    st.from_regex(r"[2-9][0-9]{2}", fullmatch=True),
    st.from_regex(r"[0-9]{3}", fullmatch=True),
    st.from_regex(r"[0-9]{4}", fullmatch=True),
)
def test_the_common_shapes_take_the_fast_path(npa: str, nxx: str, line: str) -> None:
    for raw in (f"({npa}) {nxx}-{line}", f"{npa}-{nxx}-{line}", f"+1{npa}{nxx}{line}"):
        assert fast_nanp(raw, "US") is not None


@settings(max_examples=800)
@given(st.one_of(nanp_like(), phone_like()), HOME_REGIONS)
def test_the_transform_phone_reader_equals_check_phone(raw: str, home: str) -> None:
    raw = raw.strip()
    assert PhoneReader(home).read(raw) == check_phone(raw, home)
