"""Issue 17 item 7: no phone, email or secret reaches a log line at any level. Arbitrary
structures hold generated emails and phones as dictionary keys (a dict keyed by entry id and
email once logged an email), as values, nested, in lists, in % arguments and in exception
messages; the finished JSON line, read back and as written, holds none of them."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from typing import Any

import phonenumbers
from hypothesis import given
from hypothesis import strategies as st

from adapters.logging import configure_logging, mask_value

_REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
_FORMATS = [
    phonenumbers.PhoneNumberFormat.E164,
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.NATIONAL,
]


@st.composite
def phones(draw: st.DrawFn) -> str:
    """A valid number of some region (its example with the last digits varied), as written."""
    region = draw(st.sampled_from(_REGIONS))
    example = phonenumbers.example_number(region)
    if example is None:
        example = phonenumbers.parse("+14155550100")
    national = str(example.national_number)
    tail = draw(st.text("0123456789", min_size=2, max_size=2))
    number = phonenumbers.parse(f"+{example.country_code}{national[:-2]}{tail}")
    text = phonenumbers.format_number(number, draw(st.sampled_from(_FORMATS)))
    digits = sum(ch.isdigit() for ch in text)
    # Shorter national forms (7-9 digits, no +) are not told apart from counts: written with
    # their country code, as the stream's records and the services hold them.
    return (
        text
        if text.startswith("+") or digits >= 10
        else phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    )


# `*@x.io` would be found inside its own mask (`****@x.io`): the only email left out.
pii = st.one_of(st.emails().filter(lambda e: e.split("@")[0].strip("*") != ""), phones())
words = st.text("abcdefghij XYZ_-:", max_size=8)


@st.composite
def structures(draw: st.DrawFn) -> tuple[Any, list[str]]:
    """A structure of dicts, lists and tuples holding generated emails and phones (as keys,
    whole values, and inside text), and the emails and phones it holds."""
    held: list[str] = []

    def one() -> str:
        value = draw(pii)
        held.append(value)
        return value

    def leaf() -> Any:
        kind = draw(st.sampled_from(["pii", "text", "int", "none", "word"]))
        if kind == "pii":
            return one()
        if kind == "text":
            return f"{draw(words)} {one()} {draw(words)}"
        return {"int": 7, "none": None, "word": draw(words)}[kind]

    def build(depth: int) -> Any:
        kind = draw(st.sampled_from(["leaf", "list", "dict", "tuple"])) if depth < 4 else "leaf"
        if kind == "leaf":
            return leaf()
        size = draw(st.integers(min_value=0, max_value=3))
        if kind == "dict":
            return {
                (one() if draw(st.booleans()) else draw(words)): build(depth + 1)
                for _ in range(size)
            }
        items = [build(depth + 1) for _ in range(size)]
        return tuple(items) if kind == "tuple" else items

    return build(0), held


def _log_lines(emit: Any) -> list[str]:
    out = io.StringIO()
    root = logging.getLogger()
    level = root.level
    try:
        with contextlib.redirect_stderr(out):
            configure_logging("DEBUG")
            emit(logging.getLogger("campaign.masking-test"))
    finally:
        root.setLevel(level)
    return out.getvalue().splitlines()


@given(structures(), pii, pii)
def test_no_generated_email_or_phone_reaches_a_log_line_at_any_level(
    generated: tuple[Any, list[str]], first: str, second: str
) -> None:
    structure, held = generated

    def emit(log: logging.Logger) -> None:
        log.debug("fan records that do not parse: %s", structure, extra={"byEntry": structure})
        log.info("cannot reserve for %s %s", first, second, extra={first: second})
        try:
            raise ValueError(f"cannot reserve for {first} {second}: {structure!r}")
        except ValueError:
            log.exception("wave prep failed", extra={"error": {first: [structure]}})

    lines = _log_lines(emit)
    assert len(lines) == 3
    for line in lines:
        reread = json.dumps(json.loads(line), ensure_ascii=False)
        leaked = [s for s in {first, second, *held} if s in line or s in reread]
        assert not leaked, line


def test_keys_are_masked_at_every_level() -> None:
    masked = mask_value({"entry-1": {"fan@fanmail.net": {"+13125550100": "x"}}})
    assert masked == {"entry-1": {"f***@fanmail.net": {"+1******0100": "x"}}}


def test_keys_that_mask_alike_both_stay() -> None:
    assert len(mask_value({"ann@x.io": 1, "amy@x.io": 2})) == 2
