"""Message parts as carriers count them: GSM-7 160/153, UCS-2 70/67, an escape character or a
surrogate pair never split across parts, greedy packing, the parts joined are the text."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from domain.sms_parts import (
    _GSM_BASIC,
    _GSM_EXTENSION,
    Encoding,
    split_parts,
    text_parts,
)

gsm_chars = st.sampled_from(sorted(_GSM_BASIC | _GSM_EXTENSION))
gsm_texts = st.text(alphabet=gsm_chars, max_size=700)
any_texts = st.text(
    alphabet=st.one_of(gsm_chars, st.characters(codec="utf-8", exclude_categories=["Cs"])),
    max_size=500,
)


def septets(text: str) -> int:
    return sum(2 if c in _GSM_EXTENSION else 1 for c in text)


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@given(any_texts)
def test_the_parts_joined_are_the_text_and_each_fits_its_part(text: str) -> None:
    parts = split_parts(text)
    info = text_parts(text)
    assert "".join(parts) == text
    assert info.parts == len(parts)
    size = septets if info.encoding is Encoding.GSM7 else utf16_units
    limit = (160, 153) if info.encoding is Encoding.GSM7 else (70, 67)
    if len(parts) == 1:
        assert size(text) <= limit[0]
    else:
        assert size(text) > limit[0]
        assert all(0 < size(p) <= limit[1] for p in parts)
        # greedy: the next part's first character did not fit in the part before it
        for before, after in itertools.pairwise(parts):
            assert size(before) + size(after[0]) > limit[1]


@given(gsm_texts)
def test_a_gsm_text_counts_septets_with_escapes_as_two(text: str) -> None:
    info = text_parts(text)
    assert info.encoding is Encoding.GSM7
    assert info.units == septets(text)
    assert info.non_gsm == ""


@given(st.text(alphabet=st.sampled_from("ab€^"), min_size=150, max_size=400))
def test_an_escape_pair_is_never_split(text: str) -> None:
    # every part is a whole number of characters, so no part ends on a lone ESC: its septets
    # are the sum of whole characters and within 153
    for part in split_parts(text):
        assert septets(part) <= (160 if len(split_parts(text)) == 1 else 153)


@given(st.text(alphabet=st.sampled_from("a😀é中"), min_size=60, max_size=300))
def test_a_surrogate_pair_is_never_split(text: str) -> None:
    for part in split_parts(text):
        encoded = part.encode("utf-16-le")
        assert encoded.decode("utf-16-le") == part  # no half pair at either end


def test_one_curly_apostrophe_turns_a_160_character_text_into_three_parts() -> None:
    plain = "a" * 159 + "'"
    curly = "a" * 159 + "\u2019"
    assert text_parts(plain).parts == 1
    info = text_parts(curly)
    assert (info.encoding, info.parts, info.non_gsm) == (Encoding.UCS2, 3, "\u2019")


def test_the_boundaries() -> None:
    assert text_parts("a" * 160).parts == 1
    assert text_parts("a" * 161).parts == 2
    assert text_parts("a" * 306).parts == 2
    assert text_parts("a" * 307).parts == 3
    assert text_parts("€" * 80).parts == 1  # 160 septets
    assert text_parts("€" * 81).parts == 2  # 162 septets: 76 pairs (152) a part
    assert split_parts("a" * 152 + "€" + "a" * 10)[0] == "a" * 152  # never 152 + ESC
    assert text_parts("é" * 161).parts == 2  # é is GSM-7
    assert text_parts("中" * 70).parts == 1
    assert text_parts("中" * 71).parts == 2
    assert text_parts("😀" * 35).parts == 1  # 70 units
    assert text_parts("😀" * 36).parts == 2  # 72 units: 33 pairs (66 units) a part
