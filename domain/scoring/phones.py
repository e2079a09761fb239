"""Phone checks: E.164 normalisation and validity, with a fast path for North American numbers.

`phonenumbers.parse` + `is_valid_number` cost about 35 µs a row, more than the whole rest of the
transform. Most fans' numbers are North American (NANP, country code 1) in a handful of shapes,
so `check_phone` first tries `_fast_nanp`: one shape regex, then the region/validity decision
made with the *same* metadata patterns phonenumbers uses (compiled once into one regex per NANP
region, in phonenumbers' own region order). Anything the fast path does not recognise goes to
phonenumbers itself. A hypothesis property (tests/property/test_scoring_phones.py) checks that
the fast path and phonenumbers agree on E.164, validity, region and country code.

Decisions:
- International means "a country calling code other than the home region's": NANP numbers are
  domestic for a US campaign (the original's `isNorthAmericaNumber = /^\\+?1/`), a +44 number is
  not. Only valid numbers are judged international; an invalid one is tagged invalid only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import NamedTuple

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat
from phonenumbers.phonemetadata import PhoneMetadata, PhoneNumberDesc

NANP_COUNTRY_CODE = 1
_NSN_LENGTH = 10


class PhoneCheck(NamedTuple):
    """What we learned about one phone cell (a NamedTuple: built per row, it must be cheap).

    `e164` is None when the text is not a phone number at all (phonenumbers cannot parse it);
    `region` is None when no region's patterns claim the number.
    """

    e164: str | None
    country_code: int | None
    region: str | None
    valid: bool


UNPARSEABLE = PhoneCheck(None, None, None, False)

# Shapes a person or a form typically writes: 2125550123, (212) 555-0123, 212.555.0123,
# 1-212-555-0123, +1 212 555 0123, +12125550123. The area code starts with 2-9, so neither a
# national prefix nor an international prefix (011) can hide inside it.
# Groups: prefix, area code in parentheses, area code bare, exchange, line number.
_NANP_SHAPE = re.compile(
    r"(\+1[ .-]?|1[ .-]?)?(?:\(([2-9]\d\d)\)[ .-]?|([2-9]\d\d)[ .-]?)(\d\d\d)[ .-]?(\d{4})"
)
_SLOW_CACHE_LIMIT = 50_000

_TYPE_FIELDS = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)


def _fits_length(desc: PhoneNumberDesc | None) -> bool:
    if desc is None or not desc.national_number_pattern:
        return False
    return not desc.possible_length or _NSN_LENGTH in desc.possible_length


def _valid_pattern(metadata: PhoneMetadata) -> re.Pattern[str] | None:
    """One regex equal to phonenumbers' `_number_type_helper(nsn) != UNKNOWN` for 10-digit nsn:
    the general description must match and at least one number type must."""
    general = metadata.general_desc
    if general is None or not _fits_length(general):
        return None
    types = [getattr(metadata, name) for name in _TYPE_FIELDS]
    alternatives = [d.national_number_pattern for d in types if _fits_length(d)]
    if not alternatives:
        return None
    body = "|".join(f"(?:{a})" for a in alternatives)
    return re.compile(f"(?=(?:{general.national_number_pattern})\\Z)(?:{body})\\Z")


def nanp_region_patterns() -> list[tuple[str | None, tuple[str, str] | None]]:
    """For each NANP region in phonenumbers' order: its leading-digits pattern (matched at the
    start) and its (general, number types) patterns (a 10-digit number both match fully is
    valid there), as `nanp_region_and_validity` uses them. For the compiled kernel
    (adapters/row_kernel.py), which must decide exactly as it does."""
    patterns: list[tuple[str | None, tuple[str, str] | None]] = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[NANP_COUNTRY_CODE]:
        metadata = PhoneMetadata.metadata_for_region(region)
        if metadata is None:  # pragma: no cover - phonenumbers ships all NANP regions
            continue
        patterns.append((metadata.leading_digits or None, _valid_parts(metadata)))
    return patterns


def _valid_parts(metadata: PhoneMetadata) -> tuple[str, str] | None:
    """`_valid_pattern`'s parts: the general pattern and the number types' alternatives."""
    general = metadata.general_desc
    if general is None or not _fits_length(general) or general.national_number_pattern is None:
        return None
    types = [getattr(metadata, name) for name in _TYPE_FIELDS]
    alternatives = [d.national_number_pattern for d in types if _fits_length(d)]
    if not alternatives:
        return None
    return general.national_number_pattern, "|".join(f"(?:{a})" for a in alternatives)


@dataclass(frozen=True, slots=True)
class _NanpRegion:
    region: str
    leading_digits: re.Pattern[str] | None
    valid: re.Pattern[str] | None


@cache
def _nanp_regions() -> tuple[_NanpRegion, ...]:
    regions = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[NANP_COUNTRY_CODE]:
        metadata = PhoneMetadata.metadata_for_region(region)
        if metadata is None:  # pragma: no cover - phonenumbers ships all NANP regions
            continue
        leading = re.compile(metadata.leading_digits) if metadata.leading_digits else None
        regions.append(_NanpRegion(region, leading, _valid_pattern(metadata)))
    return tuple(regions)


@cache
def _home_parses_like_us(home_region: str) -> bool:
    """True when a number without '+' parsed for `home_region` is read exactly as NANP: the home
    region has calling code 1 and strips a plain '1' as its national prefix."""
    metadata = PhoneMetadata.metadata_for_region(home_region.upper())
    return (
        metadata is not None
        and metadata.country_code == NANP_COUNTRY_CODE
        and metadata.national_prefix_for_parsing in (None, "1")
    )


def nanp_region_and_validity(nsn: str) -> tuple[str | None, bool]:
    """phonenumbers' `region_code_for_number` and `is_valid_number` for a 10-digit NANP nsn:
    the first region (in phonenumbers' order) whose leading digits match, or, for regions without
    leading digits, whose number types match; valid when that region's types match."""
    for entry in _nanp_regions():
        if entry.leading_digits is not None:
            if entry.leading_digits.match(nsn):
                return entry.region, entry.valid is not None and bool(entry.valid.match(nsn))
        elif entry.valid is not None and entry.valid.match(nsn):
            return entry.region, True
    return None, False


def fast_nanp(raw: str, home_region: str) -> PhoneCheck | None:
    """The NANP fast path; None means "not a shape I decide exactly: ask phonenumbers"."""
    shape = _NANP_SHAPE.fullmatch(raw)
    if shape is None:
        return None
    prefix, npa_in_parens, npa, nxx, line = shape.groups()
    if (prefix is None or prefix[0] != "+") and not _home_parses_like_us(home_region):
        return None
    nsn = (npa_in_parens or npa) + nxx + line
    region, valid = nanp_region_and_validity(nsn)
    return PhoneCheck("+1" + nsn, NANP_COUNTRY_CODE, region, valid)


def slow_check(raw: str, home_region: str) -> PhoneCheck:
    """The reference: phonenumbers, as a straightforward implementation would call it."""
    try:
        number = phonenumbers.parse(raw, home_region)
    except NumberParseException:
        return UNPARSEABLE
    return PhoneCheck(
        phonenumbers.format_number(number, PhoneNumberFormat.E164),
        number.country_code,
        phonenumbers.region_code_for_number(number),
        phonenumbers.is_valid_number(number),
    )


def phonenumbers_check(raw: str, home_region: str) -> PhoneCheck:
    """`slow_check`'s answer with one region look-up, not two: is_valid_number(n) is
    is_valid_number_for_region(n, region_code_for_number(n)), and that look-up (every region
    sharing the calling code tried in turn) was half of it. The hand-back rows' main cost."""
    try:
        number = phonenumbers.parse(raw, home_region)
    except NumberParseException:
        return UNPARSEABLE
    region = phonenumbers.region_code_for_number(number)
    return PhoneCheck(
        phonenumbers.format_number(number, PhoneNumberFormat.E164),
        number.country_code,
        region,
        region is not None and phonenumbers.is_valid_number_for_region(number, region),
    )


def check_phone(raw: str, home_region: str) -> PhoneCheck:
    """E.164, calling code, region and validity of `raw` (already trimmed), read in the home
    region; exactly what phonenumbers says, usually without asking it."""
    if not raw:
        return UNPARSEABLE
    fast = fast_nanp(raw, home_region)
    if fast is not None:
        return fast
    return _cached_slow_check(raw, home_region)


# Text the fast path cannot read repeats a lot in real files ("n/a", "000-000-0000"): remember
# phonenumbers' answers (a pure function of the text and home region), within a fixed size.
_cached_slow_check = lru_cache(maxsize=_SLOW_CACHE_LIMIT)(phonenumbers_check)


@cache
def country_code_for_region(region: str) -> int:
    return int(phonenumbers.country_code_for_region(region.upper()))


class PhoneReader:
    """`check_phone` for one home region, with the per-call look-ups done once: the transform's
    hot loop calls it for every row. Same answers as `check_phone` (a property test checks)."""

    def __init__(self, home_region: str) -> None:
        self.home_region = home_region
        self.plain_is_nanp = _home_parses_like_us(home_region)
        first = _nanp_regions()[0]
        # phonenumbers tries the NANP regions in order and US comes first with no leading-digits
        # rule: a number matching US's patterns is US and valid, nothing else to ask.
        self.first_region = first.region if first.leading_digits is None else ""
        self.first_valid = first.valid if first.leading_digits is None else None

    def read(self, raw: str) -> PhoneCheck:
        if not raw:
            return UNPARSEABLE
        shape = _NANP_SHAPE.fullmatch(raw)
        if shape is not None:
            prefix, npa_in_parens, npa, nxx, line = shape.groups()
            if self.plain_is_nanp or (prefix is not None and prefix[0] == "+"):
                nsn = (npa_in_parens or npa) + nxx + line
                first_valid = self.first_valid
                if first_valid is not None and first_valid.match(nsn):
                    return PhoneCheck("+1" + nsn, NANP_COUNTRY_CODE, self.first_region, True)
                region, valid = nanp_region_and_validity(nsn)
                return PhoneCheck("+1" + nsn, NANP_COUNTRY_CODE, region, valid)
        return _cached_slow_check(raw, self.home_region)


# _NANP_SHAPE for a whole column at once, one cell per line: each line yields the groups
# (area code in parentheses, area code bare, exchange, line number), all "" when the line is not
# one of the shapes, so that "".join(groups) is the 10-digit number or "". The prefix group is
# non-capturing. (A cell holds no tab or newline: lines and cells were split on them.)
_SHAPE_BODY = r"(?:\(([2-9]\d\d)\)[ .-]?|([2-9]\d\d)[ .-]?)(\d\d\d)[ .-]?(\d{4})"
_NANP_SHAPE_LINES = re.compile(rf"(?m)^(?:(?:\+1[ .-]?|1[ .-]?)?{_SHAPE_BODY}|.*)$")
_NANP_PLUS_SHAPE_LINES = re.compile(rf"(?m)^(?:\+1[ .-]?{_SHAPE_BODY}|.*)$")


def read_phone_column(
    reader: PhoneReader, raws: Sequence[str]
) -> tuple[list[str], dict[int, PhoneCheck]]:
    """`reader.read` over a whole column, in a few C-level passes: for each cell its E.164 when
    the number is valid, else "", and the full PhoneCheck of every row that is *not* a valid
    number of the first NANP region (those are country code 1, region `reader.first_region`).
    Same answers as `read` (the transform's property test compares the two paths)."""
    shapes = _NANP_SHAPE_LINES if reader.plain_is_nanp else _NANP_PLUS_SHAPE_LINES
    found = shapes.findall("\n".join(raws))
    if len(found) != len(raws):  # pragma: no cover - one match per line, by construction
        found = [shapes.findall(raw)[0] for raw in raws]
    nsns = list(map("".join, found))
    first_valid = reader.first_valid
    if first_valid is not None:
        matches = list(map(first_valid.match, nsns))
        e164s = [
            "+1" + nsn if hit is not None and nsn else ""
            for nsn, hit in zip(nsns, matches, strict=True)
        ]
    else:  # pragma: no cover - US leads phonenumbers' NANP regions with no leading digits
        e164s = [""] * len(raws)
    others: dict[int, PhoneCheck] = {}
    for row in [row for row, e164 in enumerate(e164s) if not e164]:
        nsn = nsns[row]
        if nsn:
            region, valid = nanp_region_and_validity(nsn)
            check = PhoneCheck("+1" + nsn, NANP_COUNTRY_CODE, region, valid)
        else:
            check = reader.read(raws[row])
        others[row] = check
        if check.valid and check.e164 is not None:
            e164s[row] = check.e164
    return e164s, others
