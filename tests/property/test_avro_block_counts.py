"""The merge's count check (adapters/avro_container.iter_block_counts) counts what walk_blocks
walks: for any blocks, cut into any chunks, truncated anywhere or with any byte changed, the
same counts in the same order and the same refusal at the same point."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from adapters.avro_container import (
    SCHEMA_META,
    ChunkReader,
    NotAnAvroFile,
    WrittenBlockCounts,
    block_bytes,
    header_bytes,
    iter_block_counts,
    read_header,
    walk_blocks,
)

SYNC = bytes(range(16))


@st.composite
def container(draw: st.DrawFn) -> tuple[bytes, int]:
    header = header_bytes({SCHEMA_META: b'"string"'}, SYNC)
    blocks = draw(st.lists(st.tuples(st.integers(0, 300), st.binary(max_size=90)), max_size=6))
    data = bytearray(header + b"".join(block_bytes(n, body, SYNC) for n, body in blocks))
    match draw(st.sampled_from(["as written", "cut", "changed"])):
        case "cut":
            del data[draw(st.integers(len(header), len(data))) :]
        case "changed" if len(data) > len(header):
            data[draw(st.integers(len(header), len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data), draw(st.integers(1, 64))


def outcome(counts: object, data: bytes, chunk: int) -> tuple[list[int], str | None]:
    reader = ChunkReader([data[i : i + chunk] for i in range(0, len(data), chunk)])
    header = read_header(reader)
    seen: list[int] = []
    try:
        for count in counts(reader, header):  # type: ignore[operator]
            seen.append(count)
    except NotAnAvroFile as refused:
        return seen, str(refused).split(" at byte")[0]
    return seen, None


@given(container())
def test_the_count_walk_counts_and_refuses_as_the_block_walk_does(made: tuple[bytes, int]) -> None:
    data, chunk = made

    def walked(reader: ChunkReader, header: object) -> object:
        return (count for count, _, _ in walk_blocks(reader, SYNC))

    assert outcome(iter_block_counts, data, chunk) == outcome(walked, data, chunk)


@given(container(), st.lists(st.integers(0, 200), max_size=20))
def test_the_written_bytes_count_as_the_stored_file_reads_for_any_cut_of_the_writes(
    made: tuple[bytes, int], cuts: list[int]
) -> None:
    """The merge counts its merged file's records from the bytes as it writes them (in place of
    reading the stored file back): the same records, and a refusal wherever the read-back
    refuses (a cut sync marker is "ends inside a block" here, a missing one there), however the
    writes cut the bytes."""
    data, chunk = made
    counts, refused = outcome(iter_block_counts, data, chunk)
    check = WrittenBlockCounts()
    position = 0
    try:
        for cut in [*cuts, len(data)]:
            check.feed(data[position : position + cut])
            position += cut
        check.feed(memoryview(data)[position:])
        assert (check.finish(), None) == (sum(counts), refused)
    except NotAnAvroFile as bad:
        assert refused is not None, bad
