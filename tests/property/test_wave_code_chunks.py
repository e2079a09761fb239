"""code_chunks, the one reading of a wave CSV's code column for process_scheduled_wave (chunks
of so many codes) and load_code_assignments_to_stream (chunks of so many rows, resumed at a
row): every row from the resume point on is in one chunk, in order, as a code or a drop."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.codes import TM_PLACEHOLDER_CODE
from domain.waves import CODE_COLUMN, CodeChunk, WaveRow, code_chunks

cells = st.sampled_from(["", "  ", TM_PLACEHOLDER_CODE, f" {TM_PLACEHOLDER_CODE} ", "K1", " K2 "])


def wave_rows(codes: list[str | None]) -> list[WaveRow]:
    """None: a row with the wrong number of fields (no values at all)."""
    return [
        WaveRow(n, None if code is None else {CODE_COLUMN: code, "x": "1"}, 2)
        for n, code in enumerate(codes, 1)
    ]


@given(
    st.lists(st.one_of(st.none(), cells), max_size=60),
    st.integers(1, 7),
    st.booleans(),
    st.integers(1, 70),
)
def test_every_row_from_the_resume_point_is_in_one_chunk_as_a_code_or_a_drop(
    codes: list[str | None], size: int, by_codes: bool, from_row: int
) -> None:
    rows = wave_rows(codes)

    def full(chunk: CodeChunk) -> bool:
        return (len(chunk.coded) if by_codes else chunk.rows) >= size

    chunks = list(code_chunks(iter(rows), full, from_row=from_row))

    expected = [r for r in rows if r.number >= from_row]
    assert sum(c.rows for c in chunks) == len(expected)
    assert all(c.rows > 0 for c in chunks)
    assert all(full(c) for c in chunks[:-1])  # only the last may be short
    assert [c.last_row for c in chunks] == sorted({c.last_row for c in chunks})
    if chunks:
        assert chunks[-1].last_row == expected[-1].number
    for chunk in chunks:
        assert chunk.rows == len(chunk.coded) + chunk.without_code + chunk.placeholder
    coded = [(row.number, code) for c in chunks for row, code in c.coded]
    real = [
        (r.number, (r.values or {})[CODE_COLUMN].strip())
        for r in expected
        if (r.values or {}).get(CODE_COLUMN, "").strip() not in ("", TM_PLACEHOLDER_CODE)
    ]
    assert coded == real
    placeholders = sum(
        1 for r in expected if (r.values or {}).get(CODE_COLUMN, "").strip() == TM_PLACEHOLDER_CODE
    )
    assert sum(c.placeholder for c in chunks) == placeholders
