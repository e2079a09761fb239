"""SpillingKeyIndex: the merge's DuplicateIndex (domain.ports) over numpy arrays, spilled to disk
past a fixed number of keys, so a merge's memory stays flat whatever the size of the prefix.

Why numpy and not a set of keys (domain.lake.FirstWinsIndex, the rule's plain-Python reference):
measured on the benchmark's month (500,000 keys; benchmarks/README.md), a Python set costs
~230-280 ns a key (a bytes object per key, a set slot, cache misses as the set grows) and ~90 B
of memory; one sort of the keys' first 64 bits as a uint64 array costs ~50-60 ns and 16 B. The
merge's whole budget at 4,000,000 records/s is 250 ns a record.

How the duplicates are found, exactly (a repeat of the first 4 bytes is only a candidate):
1. the keys' first 4 bytes are sorted (as uint32); no two equal neighbours means no duplicate
   (the common case, decided without touching the other 12 bytes);
2. otherwise the rows whose first 4 bytes repeat are ordered by (all 128 bits, arrival) and
   every row equal to its predecessor in all 128 bits is dropped: the first by arrival stays.

Spilling: past `in_memory_keys` pending keys, rows of (key, file, position) (24 B) are written to
a run file in the spill directory, grouped by the key's top `PARTITION_BITS` bits. At the end
each group of partitions holding at most ~`in_memory_keys` rows is read from every run and
searched alone (equal keys always share a partition). Memory: the pending keys as given (16 B
a key, up to `in_memory_keys`; the same bytes the merge's key log holds), ~24 B a key of rows
while spilling, one group of partitions while searching, and 4 bytes per dropped record in the
answer; disk: 24 B per key, removed by `close`.
"""

from __future__ import annotations

import array
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

# Before numpy's first import: its OpenBLAS starts a thread per core that spun through the
# merge (measured: the merge's CPU time doubled, ~60 ms more for a month's 500 files, taken
# from the merge itself on a one-vCPU Lambda). The merge calls no BLAS routine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import numpy.typing as npt

from domain.lake import KEY_BYTES, DropPlan, check_order, split_keys

ROW = np.dtype([("hi", "<u8"), ("lo", "<u8"), ("file", "<u4"), ("pos", "<u4")])
_ROW_BYTES = np.dtype((np.void, ROW.itemsize))
PARTITION_BITS = 10
TABLE_BITS = 20
# Measured (benchmarks/README.md): 500,000 keys held cost a merge ~13-17 MiB of its own memory;
# past them the merge is bounded at ~33 MiB. 100,000 keeps it at 7-12 MiB for ~0.1 CPU µs a
# record more. So scenario 3's month (500,000) is searched in memory and a bigger prefix spills.
DEFAULT_IN_MEMORY_KEYS = 500_000

U64 = npt.NDArray[np.uint64]
# 4-byte positions in the answer ("I" is 4 bytes on every platform Lambda runs).
POSITION_TYPE = "I" if array.array("I").itemsize == 4 else "L"


class SpillingKeyIndex:
    """domain.ports.DuplicateIndex in bounded memory (module docstring)."""

    def __init__(
        self, *, in_memory_keys: int = DEFAULT_IN_MEMORY_KEYS, spill_dir: str | None = None
    ) -> None:
        if in_memory_keys < 1:
            raise ValueError("in_memory_keys must be at least 1")
        self.in_memory_keys = in_memory_keys
        self._spill_dir = spill_dir
        self._files: dict[str, int] = {}
        # Pending keys as given, one bytes object per file, not copied: the caller's key log
        # holds the same objects (adapters/lake_sidecar.py), and copying them into one growing
        # buffer cost a month's merge 8 MB and ~5 ms of first-touched pages. Per file with
        # keys: its number and key count.
        self._pending: list[bytes] = []
        self._pending_files: list[tuple[int, int]] = []
        self._pending_keys = 0
        self._runs: list[tuple[Path, npt.NDArray[np.int64]]] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def spilled_runs(self) -> int:
        return len(self._runs)

    def add(self, file: str, keys: bytes) -> None:
        if file in self._files:
            raise ValueError(f"{file}: its keys were added twice")
        if len(keys) % KEY_BYTES:
            split_keys(keys)  # raises, naming the length
        if len(keys) // KEY_BYTES >= 2**32:
            raise ValueError(f"{file}: more than 2**32 records in one file")
        self._files[file] = len(self._files)
        if keys:
            self._pending.append(keys)
            self._pending_files.append((self._files[file], len(keys) // KEY_BYTES))
            self._pending_keys += len(keys) // KEY_BYTES
            if self._pending_keys > self.in_memory_keys:
                self._spill()

    def drops(self, order: Sequence[str], watch: frozenset[bytes] | None = None) -> DropPlan:
        check_order(order, self._files)
        names = list(self._files)
        rank = np.zeros(len(names), dtype=np.uint64)
        for position, file in enumerate(order):
            rank[self._files[file]] = position
        if self._runs:
            self._spill()
            found = [_repeats(rows, rank) for rows in self._groups()]
            dropped = np.concatenate(found) if found else np.empty(0, ROW)
        else:
            dropped = _repeats(self._candidate_rows(), rank)
        self._clear_pending()
        if watch is not None:
            keep = [_key_of(row) in watch for row in dropped]
            dropped = dropped[np.array(keep, dtype=bool)] if keep else dropped
        return _plan(dropped, names)

    def _clear_pending(self) -> None:
        self._pending, self._pending_files, self._pending_keys = [], [], 0

    def close(self) -> None:
        self._clear_pending()
        self._runs = []
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # --- building rows, spilling them, reading them back ------------------------------------------

    def _candidate_rows(self) -> npt.NDArray[np.void]:
        """The pending keys whose first 4 bytes occur more than once, as rows: decided on those
        bytes alone (a sorted copy, 4 B a key, and one index), so no row is built for a key that
        cannot repeat (rows of every key took ~100 B a key at the peak, measured)."""
        if not self._pending:
            return np.empty(0, ROW)
        firsts = np.concatenate([np.frombuffer(keys, "<u4")[0::4] for keys in self._pending])
        picked = _sharing_first_bytes(firsts)
        del firsts
        if not len(picked):
            return np.empty(0, ROW)
        counts = np.array([count for _, count in self._pending_files], dtype=np.int64)
        starts = np.cumsum(counts) - counts
        owner = np.searchsorted(starts, picked, side="right") - 1
        rows = np.empty(len(picked), ROW)
        rows["file"] = np.array([number for number, _ in self._pending_files], np.uint32)[owner]
        rows["pos"] = picked - starts[owner]
        # The halves of the picked keys, file by file (picked is ascending, so is its owner).
        owners, firsts_at = np.unique(owner, return_index=True)
        bounds = [*firsts_at.tolist(), len(picked)]
        for i, entry in enumerate(owners.tolist()):
            halves = np.frombuffer(self._pending[entry], "<u8").reshape(-1, 2)
            at = rows["pos"][bounds[i] : bounds[i + 1]]
            rows["hi"][bounds[i] : bounds[i + 1]] = halves[at, 0]
            rows["lo"][bounds[i] : bounds[i + 1]] = halves[at, 1]
        return rows

    def _pending_rows(self) -> npt.NDArray[np.void]:
        counts = np.array([count for _, count in self._pending_files], dtype=np.int64)
        total = int(counts.sum())
        rows = np.empty(total, ROW)
        if not total:
            return rows
        at = 0
        for keys, count in zip(self._pending, counts.tolist(), strict=True):
            halves = np.frombuffer(keys, "<u8").reshape(-1, 2)
            rows["hi"][at : at + count] = halves[:, 0]
            rows["lo"][at : at + count] = halves[:, 1]
            at += count
        files = np.array([number for number, _ in self._pending_files], dtype=np.uint32)
        rows["file"] = np.repeat(files, counts)
        starts = np.cumsum(counts) - counts
        rows["pos"] = np.arange(total, dtype=np.int64) - np.repeat(starts, counts)
        return rows

    def _spill(self) -> None:
        rows = self._pending_rows()
        self._clear_pending()
        if not len(rows):
            return
        # 16-bit partition numbers: numpy's stable sort of them is a radix sort, linear.
        partition = (rows["hi"] >> np.uint64(64 - PARTITION_BITS)).astype(np.uint16)
        rows = _take(rows, np.argsort(partition, kind="stable"))
        ends = np.cumsum(np.bincount(partition, minlength=2**PARTITION_BITS))
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="cw-merge-keys-", dir=self._spill_dir)
        path = Path(self._tmp.name, f"run-{len(self._runs):06d}")
        rows.tofile(path)
        self._runs.append((path, ends))

    def _groups(self) -> Iterator[npt.NDArray[np.void]]:
        """Rows of consecutive partitions from every run, at most ~`in_memory_keys` at a time
        (a single partition holding more is read alone), one group after another."""
        sizes = np.zeros(2**PARTITION_BITS, dtype=np.int64)  # rows per partition, every run
        for _, ends in self._runs:
            sizes += np.diff(ends, prepend=0)
        first = 0
        while first < len(sizes):
            last, held = first, int(sizes[first])
            while last + 1 < len(sizes) and held + int(sizes[last + 1]) <= self.in_memory_keys:
                last += 1
                held += int(sizes[last])
            # Read straight into one array: concatenating per-run reads held every row twice.
            group = np.empty(held, ROW)
            filled = 0
            for path, ends in self._runs:
                start = int(ends[first - 1]) if first else 0
                stop = int(ends[last])
                if stop > start:
                    with open(path, "rb") as run:
                        run.seek(start * ROW.itemsize)
                        view = group[filled : filled + stop - start].view(np.uint8).data
                        if run.readinto(view) != len(view):
                            raise OSError(f"{path} is shorter than the keys spilled into it")
                    filled += stop - start
            yield group
            first = last + 1


def _take(rows: npt.NDArray[np.void], index: npt.NDArray[np.intp]) -> npt.NDArray[np.void]:
    """rows[index], through a view as opaque 24-byte items: numpy's fancy indexing of a
    structured array copies field by field (~63 ms for 500,000 rows, against ~8)."""
    taken: npt.NDArray[np.void] = rows.view(_ROW_BYTES)[index].view(ROW)
    return taken


def _sharing_first_bytes(firsts: npt.NDArray[np.uint32]) -> npt.NDArray[np.intp]:
    """Positions of the keys whose first 4 bytes (`firsts`) another key shares: the only keys
    that can repeat. 32 bits and not the first 64: sorting 500,000 of them took ~16 ms against
    ~27 (benchmarks/README.md), and among random keys few share them (~30 pairs in 500,000)."""
    ordered = np.sort(firsts)
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return np.empty(0, np.intp)
    repeated = np.unique(ordered[1:][same])
    del ordered, same
    # Which keys hold a repeated value: a table of the repeated values' low 20 bits picks the
    # few that may (1 MiB, one look-up a key), and only those are checked exactly. A binary
    # search of every key in the repeated values cost ~30 ns a key; np.isin over all of them
    # sorted a copy of everything again (~40 B a key).
    table = np.zeros(1 << TABLE_BITS, dtype=bool)
    low = np.uint32((1 << TABLE_BITS) - 1)
    table[repeated & low] = True
    maybe = np.flatnonzero(table[firsts & low])
    exact: npt.NDArray[np.intp] = maybe[np.isin(firsts[maybe], repeated)]
    return exact


def _repeats(rows: npt.NDArray[np.void], rank: U64) -> npt.NDArray[np.void]:
    """The rows whose 128-bit key an earlier row (by file rank, then position) holds."""
    if len(rows) < 2:
        return np.empty(0, ROW)  # not rows[:0]: a view would keep the whole group alive
    # The key's first 4 bytes: the low half of `hi`, read little-endian (the partition is `hi`'s
    # top bits, shared by a whole group, so they would tell nothing here).
    picked = _sharing_first_bytes((rows["hi"] & np.uint64(0xFFFFFFFF)).astype(np.uint32))
    if not len(picked):
        return np.empty(0, ROW)  # not rows[:0]: a view would keep the whole group alive
    candidates = rows[picked]
    arrival = (rank[candidates["file"]] << np.uint64(32)) | candidates["pos"].astype(np.uint64)
    order = np.lexsort((arrival, candidates["lo"], candidates["hi"]))
    sorted_rows = candidates[order]
    repeat = np.zeros(len(sorted_rows), dtype=bool)
    repeat[1:] = (sorted_rows["hi"][1:] == sorted_rows["hi"][:-1]) & (
        sorted_rows["lo"][1:] == sorted_rows["lo"][:-1]
    )
    repeats: npt.NDArray[np.void] = sorted_rows[repeat]
    return repeats


def _key_of(row: np.void) -> bytes:
    return int(row["hi"]).to_bytes(8, "little") + int(row["lo"]).to_bytes(8, "little")


def _plan(dropped: npt.NDArray[np.void], names: list[str]) -> DropPlan:
    """Dropped rows as positions per file (array('I'), 4 B each)."""
    if not len(dropped):
        return DropPlan({})
    dropped = dropped[np.lexsort((dropped["pos"], dropped["file"]))]
    files, starts = np.unique(dropped["file"], return_index=True)
    bounds = [*starts.tolist(), len(dropped)]
    positions = dropped["pos"].astype("<u4")
    return DropPlan(
        {
            names[int(file)]: array.array(
                POSITION_TYPE, positions[bounds[i] : bounds[i + 1]].tobytes()
            )
            for i, file in enumerate(files)
        }
    )
