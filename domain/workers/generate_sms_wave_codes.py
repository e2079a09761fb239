"""generateSmsWaveCodes: one access code per fan of a wave, from the issuer (Pacman), into the
wave CSV. Input `{waveFilePrefix, config}`; only when `config.generateOfferCode` is true.

One run at a time per wave: a run first takes the wave's lease (the Leases port: production
`smsWaves/leases/{prefix}.json`, S3 conditional puts; domain/lease.py). A second run of the
same wave meanwhile is refused (`busy`, not retryable: the first finishes the job), naming the
holder (host/pid/run id) and since when; a killed run's lease is taken over after its term.
Before anything is written the wave CSV must exist and have a globalUserId header (a bad prefix
never gets as far: GenerateInput refuses it), so a refused run leaves no litter.

Codes the wave file already holds are kept: a row whose `code` is filled keeps that code
(`0012345` stays `0012345`, leading zeros and all) and it is recorded in the ledger as the fan's
code, so a later row of the same fan is a duplicate; a `TM` placeholder stays `TM` (never
assigned nor streamed downstream). The config option `regenerateCodes: true` replaces the real
codes a file holds with issued ones; `TM` stays `TM` even then.

Steps, and what a crash after each leaves (a re-run with the same input finishes the job and
never gives a fan a second, different code):
1. The normalized config is written with `genCodes: true` (beginDate/endDate expanded;
   domain/waves.py). A normalized config without the marker means a finished wave: a re-run
   returns its counts and does nothing else.
2. The wave CSV `smsWaves/csv/{prefix}.csv` is read as a stream, `chunk_rows` rows at a time.
   For each chunk: the ledger is asked what it holds for the chunk's fans; the others get a code
   from the issuer (`issue_many`: the adapter keeps a bounded number of calls in flight); the new
   codes are RECORDED in the ledger (keyed by wave + globalUserId, a conditional write: the first
   record wins a race) before they are written anywhere else; then the chunk's rows, each with
   its fan's recorded code, go to the staged CSV `smsWaves/generated/{prefix}.csv`, which appears
   only once complete. A crash here leaves the old wave CSV untouched and the recorded codes in
   the ledger: the re-run reuses them (no issuer call for those fans). A kill in the middle of
   a chunk's issuing (codes issued, not yet recorded) leaves nothing orphaned with an issuer
   that keeps issue keys (DynamoDB, in-memory): every request carries `{wave}#{globalUserId}`,
   and the re-run's request for that fan gets the same code back. Pacman's contract has no
   such key: there a kill can leave up to one chunk's codes unused at Pacman (docs).
3. The staged counts are written beside the staged CSV; a re-run that finds them skips step 2.
4. The staged CSV is copied over the wave CSV (copy, then 5, then delete: the old wave CSV is
   replaced only by a complete new one).
5. The normalized config is written without the marker, with the counts under `codeCounts`;
   the staged objects are deleted.

Rows: in = out + errors. A row is an error (dropped, counted by reason) when it has the wrong
number of fields (`bad_row`), no globalUserId (`missing_global_user_id`), repeats a fan of an
earlier row (`duplicate_fan`: the ledger remembers the row that first held the fan, so this
holds across chunks and re-runs in bounded memory), has a globalUserId that is only control
characters or holds one (`bad_global_user_id`: a NUL, a tab, a newline), or the issuer refused
the fan (`issuer_rejected`). The first MAX_REJECTS_LISTED rejected rows are listed with their
row number and reason (`rejected` in the result). An issuer that stays unavailable past its
adapter's retries stops the run (`issuer_unavailable`, retryable): dropping every fan of a wave
because Pacman was down for a minute would lose them, and the re-run is cheap (recorded codes
are reused).

Memory bound: O(chunk_rows) rows, their requests and results; independent of the wave's size.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from returns.result import Failure, Result, Success

from domain.codes import TM_PLACEHOLDER_CODE, CodeRequest, IssuedCode
from domain.lease import leased
from domain.models import ObjectNotFound, ObjectRef
from domain.ports import CodeIssuer, IssuedCodeLedger, Lease, Leases, ObjectStore
from domain.streaming import DependencyUnavailable
from domain.waves import (
    CODE_COLUMN,
    GENERATING_MARKER,
    GLOBAL_USER_ID,
    CsvProblem,
    GenerationConfig,
    WaveRow,
    normalized_config_key,
    parse_generation_config,
    read_wave_csv,
    render_csv,
    staged_counts_key,
    staged_csv_key,
    validity_window,
    wave_csv_key,
    wave_prefix_problem,
)

DEFAULT_CHUNK_ROWS = 1_000
MAX_REJECTS_LISTED = 100
JSON = "application/json"
CSV = "text/csv; charset=utf-8"


@dataclass(frozen=True, slots=True)
class GenerateInput:
    wave_file_prefix: str
    config: GenerationConfig

    @staticmethod
    def parse(event: Any) -> Result[GenerateInput, str]:
        """The input itself (entrypoints/events.py `unwrap` takes AWS wrappers off)."""
        if not isinstance(event, Mapping):
            return Failure("input is not a JSON object with waveFilePrefix and config")
        prefix = event.get("waveFilePrefix")
        problem = wave_prefix_problem(prefix)
        if problem is not None or not isinstance(prefix, str):
            return Failure(problem or "waveFilePrefix is missing")
        config = parse_generation_config(event.get("config"))
        match config:
            case Failure(reason):
                return Failure(reason)
            case Success(parsed):
                pass
        return Success(GenerateInput(prefix.strip(), parsed))


@dataclass(frozen=True)
class GeneratedWave:
    """What a run did. rows_in = rows_out + errors."""

    wave_file_prefix: str
    generate_offer_code: bool
    rows_in: int = 0
    rows_out: int = 0
    errors: int = 0
    errors_by_reason: Mapping[str, int] = field(default_factory=dict)
    issued: int = 0  # codes the issuer made in this run
    reused: int = 0  # codes found in the ledger (an earlier, interrupted run issued them)
    kept: int = 0  # codes (and TM placeholders) the wave file already held
    rejected: tuple[tuple[int, str], ...] = ()  # (row, reason), the first MAX_REJECTS_LISTED
    already_done: bool = False

    def counts_json(self) -> dict[str, Any]:
        return {
            "in": self.rows_in,
            "out": self.rows_out,
            "errors": self.errors,
            "errorsByReason": dict(self.errors_by_reason),
        }

    def to_json(self) -> dict[str, Any]:
        """The original's `{waveFilePrefix, generateOfferCode, count: {in, out, errors}}`."""
        return {
            "waveFilePrefix": self.wave_file_prefix,
            "generateOfferCode": self.generate_offer_code,
            "count": self.counts_json(),
            "issued": self.issued,
            "reused": self.reused,
            "kept": self.kept,
            "rejected": [{"row": row, "reason": reason} for row, reason in self.rejected],
            "alreadyDone": self.already_done,
        }


@dataclass(frozen=True)
class GenerateFailure:
    """kind: source_missing, bad_csv, missing_columns (nothing written), busy (another run
    holds the wave: not retryable, that run finishes it), taken_over (this run stalled past
    its lease and another took the wave over), issuer_unavailable, ledger_unavailable
    (retryable: a re-run resumes)."""

    kind: str
    message: str
    retryable: bool = False

    def __str__(self) -> str:
        return self.message


class _Stop(Exception):
    """Unwinds the staged writer so that no partial CSV appears."""

    def __init__(self, failure: GenerateFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass
class _Tally:
    rows_in: int = 0
    rows_out: int = 0
    issued: int = 0
    reused: int = 0
    kept: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def reject(self, row: int, reason: str) -> None:
        self.errors[reason] += 1
        if len(self.rejected) < MAX_REJECTS_LISTED:
            self.rejected.append((row, reason))


def generate_sms_wave_codes(
    request: GenerateInput,
    *,
    store: ObjectStore,
    issuer: CodeIssuer,
    ledger: IssuedCodeLedger,
    leases: Leases,
    bucket: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_progress: Callable[[int], None] | None = None,
) -> Result[GeneratedWave, GenerateFailure]:
    prefix, config = request.wave_file_prefix, request.config
    if not config.generate_offer_code:
        return Success(GeneratedWave(prefix, False))
    return leased(
        leases,
        prefix,
        lambda held: Failure(GenerateFailure("busy", str(held))),
        lambda lease: _generate_leased(
            request, store, issuer, ledger, lease, bucket, chunk_rows, on_progress
        ),
    )


def _generate_leased(
    request: GenerateInput,
    store: ObjectStore,
    issuer: CodeIssuer,
    ledger: IssuedCodeLedger,
    lease: Lease,
    bucket: str,
    chunk_rows: int,
    on_progress: Callable[[int], None] | None,
) -> Result[GeneratedWave, GenerateFailure]:
    prefix, config = request.wave_file_prefix, request.config
    normalized = ObjectRef(bucket, normalized_config_key(prefix))
    finished = _finished(store, normalized, prefix)
    if finished is not None:
        return Success(finished)
    staged, staged_counts = (
        ObjectRef(bucket, staged_csv_key(prefix)),
        ObjectRef(bucket, staged_counts_key(prefix)),
    )
    result = _staged_result(store, staged_counts, prefix)
    if result is None:
        refused = _check_source(store, ObjectRef(bucket, wave_csv_key(prefix)))
        if refused is not None:  # before anything is written: a refused run leaves no litter
            return Failure(refused)
        store.put_bytes(normalized, _json(config.normalized(generating=True)), JSON)
        generated = _generate(
            request, store, issuer, ledger, lease, bucket, chunk_rows, on_progress
        )
        match generated:
            case Success(result):
                if not lease.keep():  # nothing more written by a run that lost the wave
                    return Failure(_taken_over(prefix))
                store.put_bytes(staged_counts, _json(result.to_json()), JSON)
            case failed:  # a Failure; the capture keeps mypy sure `result` is set below
                return failed
    if not lease.keep():
        return Failure(_taken_over(prefix))
    store.copy(staged, ObjectRef(bucket, wave_csv_key(prefix)))
    final = config.normalized(generating=False)
    # issued/reused/kept too: save_stats counts a campaign's codes from here (docs/stats.md)
    final["codeCounts"] = {
        **result.counts_json(),
        "issued": result.issued,
        "reused": result.reused,
        "kept": result.kept,
    }
    store.put_bytes(normalized, _json(final), JSON)
    store.delete(staged)
    store.delete(staged_counts)
    return Success(result)


def _taken_over(prefix: str) -> GenerateFailure:
    return GenerateFailure(
        "taken_over",
        f"wave {prefix}: this run lost its lease (it stalled past its term and another run "
        "took the wave over); that run finishes the wave",
    )


def _check_source(store: ObjectStore, source: ObjectRef) -> GenerateFailure | None:
    """Why the wave CSV cannot be generated from (missing, unreadable header, no
    globalUserId column), read before anything is written; None when it can."""
    if store.head(source) is None:
        return GenerateFailure("source_missing", f"no wave CSV at {source.uri}")
    try:
        header, _ = read_wave_csv(store.iter_chunks(source))
    except ObjectNotFound:
        return GenerateFailure("source_missing", f"no wave CSV at {source.uri}")
    except CsvProblem as problem:
        return GenerateFailure("bad_csv", f"{source.uri}: {problem}")
    if GLOBAL_USER_ID not in header:
        return GenerateFailure("missing_columns", f"{source.uri}: no {GLOBAL_USER_ID} column")
    return None


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def _read_json(store: ObjectStore, ref: ObjectRef) -> Mapping[str, Any] | None:
    if store.head(ref) is None:
        return None
    try:
        value = json.loads(store.read_bytes(ref))
    except (ObjectNotFound, ValueError):
        return None
    return value if isinstance(value, Mapping) else None


def _from_counts(prefix: str, counts: Mapping[str, Any], **extra: Any) -> GeneratedWave:
    return GeneratedWave(
        prefix,
        True,
        rows_in=int(counts.get("in", 0)),
        rows_out=int(counts.get("out", 0)),
        errors=int(counts.get("errors", 0)),
        errors_by_reason=dict(counts.get("errorsByReason", {})),
        **extra,
    )


def _finished(store: ObjectStore, normalized: ObjectRef, prefix: str) -> GeneratedWave | None:
    """The counts of a finished wave (normalized config without the marker), else None."""
    done = _read_json(store, normalized)
    if done is None or done.get(GENERATING_MARKER) or "codeCounts" not in done:
        return None
    return _from_counts(prefix, done["codeCounts"], already_done=True)


def _staged_result(store: ObjectStore, ref: ObjectRef, prefix: str) -> GeneratedWave | None:
    staged = _read_json(store, ref)
    if staged is None:
        return None
    return _from_counts(
        prefix,
        staged["count"],
        issued=int(staged.get("issued", 0)),
        reused=int(staged.get("reused", 0)),
        kept=int(staged.get("kept", 0)),
        rejected=tuple((int(r["row"]), str(r["reason"])) for r in staged.get("rejected", [])),
    )


def _generate(
    request: GenerateInput,
    store: ObjectStore,
    issuer: CodeIssuer,
    ledger: IssuedCodeLedger,
    lease: Lease,
    bucket: str,
    chunk_rows: int,
    on_progress: Callable[[int], None] | None,
) -> Result[GeneratedWave, GenerateFailure]:
    source = ObjectRef(bucket, wave_csv_key(request.wave_file_prefix))
    tally = _Tally()
    try:
        header, rows = read_wave_csv(store.iter_chunks(source))
        if GLOBAL_USER_ID not in header:
            return Failure(
                GenerateFailure("missing_columns", f"{source.uri}: no {GLOBAL_USER_ID} column")
            )
        out_header = header if CODE_COLUMN in header else [*header, CODE_COLUMN]
        with store.open_writer(
            ObjectRef(bucket, staged_csv_key(request.wave_file_prefix)), CSV
        ) as w:
            w.write(render_csv([out_header]))
            for chunk in _chunks(rows, chunk_rows):
                if not lease.keep():
                    raise _Stop(_taken_over(request.wave_file_prefix))
                w.write(_chunk(request, chunk, out_header, issuer, ledger, lease, tally))
                if on_progress is not None:
                    on_progress(tally.rows_in)
    except ObjectNotFound:
        return Failure(GenerateFailure("source_missing", f"no wave CSV at {source.uri}"))
    except CsvProblem as problem:
        return Failure(GenerateFailure("bad_csv", f"{source.uri}: {problem}"))
    except _Stop as stop:
        return Failure(stop.failure)
    return Success(
        GeneratedWave(
            request.wave_file_prefix,
            True,
            rows_in=tally.rows_in,
            rows_out=tally.rows_out,
            errors=sum(tally.errors.values()),
            errors_by_reason=dict(tally.errors.most_common()),
            issued=tally.issued,
            reused=tally.reused,
            kept=tally.kept,
            rejected=tuple(tally.rejected),
        )
    )


def _chunks(rows: Iterator[WaveRow], size: int) -> Iterator[list[WaveRow]]:
    chunk: list[WaveRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _fan(values: Mapping[str, str]) -> str:
    return values.get(GLOBAL_USER_ID, "").strip()


def _chunk(
    request: GenerateInput,
    chunk: list[WaveRow],
    header: list[str],
    issuer: CodeIssuer,
    ledger: IssuedCodeLedger,
    lease: Lease,
    tally: _Tally,
) -> bytes:
    """One chunk: codes kept, recalled or issued and recorded, then its rows rendered (only
    while the lease holds: a run that lost it stops before writing the chunk's rows)."""
    wave = request.wave_file_prefix
    tally.rows_in += len(chunk)
    first_row: dict[str, int] = {}  # gid -> its first row in this chunk
    given: dict[str, IssuedCode] = {}  # gid -> the code its first row already holds
    for row in chunk:
        if row.values is None:
            tally.reject(row.number, "bad_row")
        elif not (gid := _fan(row.values)):
            tally.reject(row.number, "missing_global_user_id")
        elif not gid.isprintable():  # a NUL, a tab, a newline: no fan's id
            tally.reject(row.number, "bad_global_user_id")
        elif first_row.setdefault(gid, row.number) == row.number:
            code = row.values.get(CODE_COLUMN, "").strip()
            if code == TM_PLACEHOLDER_CODE or (code and not request.config.regenerate):
                given[gid] = IssuedCode(code, row.number)
    known = dict(_ledger(lambda: ledger.recall(wave, list(first_row))))
    tally.reused += sum(1 for g in known if known[g].row == first_row[g] and g not in given)
    # A fan already given a code keeps it: recorded as its code, so later rows are duplicates.
    to_keep = {g: c for g, c in given.items() if g not in known}
    if to_keep:
        known.update(_ledger(lambda: ledger.record(wave, to_keep)))
    tally.kept += len(given)
    missing = [g for g in first_row if g not in known]
    known.update(_issue(request, missing, first_row, issuer, ledger, lease, tally))
    if not lease.keep():
        raise _Stop(_taken_over(wave))
    out: list[list[str]] = []
    for row in chunk:
        if row.values is None or not (gid := _fan(row.values)) or not gid.isprintable():
            continue
        held = known.get(gid)
        if held is None:
            if first_row[gid] != row.number:  # the first row is counted as issuer_rejected
                tally.reject(row.number, "duplicate_fan")
            continue
        if held.row != row.number:
            tally.reject(row.number, "duplicate_fan")
            continue
        code = given[gid].code if gid in given else held.code
        values = {**row.values, CODE_COLUMN: code}
        out.append([values.get(name, "") for name in header])
    tally.rows_out += len(out)
    return render_csv(out)


def _issue(
    request: GenerateInput,
    gids: list[str],
    first_row: Mapping[str, int],
    issuer: CodeIssuer,
    ledger: IssuedCodeLedger,
    lease: Lease,
    tally: _Tally,
) -> Mapping[str, IssuedCode]:
    if not gids:
        return {}
    notify = request.config.notify
    assert notify is not None  # generate_offer_code implies a parsed notifyDate
    begin, end = validity_window(notify)
    config = request.config
    wave = request.wave_file_prefix
    requests = [
        CodeRequest(config.product_id, config.source, begin, end, g, issue_key=f"{wave}#{g}")
        for g in gids
    ]
    # Issuing gets half the time the lease has left (at least a quarter of its term: keep()
    # renewed it at half), the rest is for recording and writing the chunk: no step between
    # renewals outlives the lease, so another run cannot take the wave over mid-chunk.
    results = issuer.issue_many(requests, deadline_seconds=lease.seconds_left() / 2)
    fresh: dict[str, IssuedCode] = {}
    down = None
    for gid, result in zip(gids, results, strict=True):
        match result:
            case Success(code):
                fresh[gid] = IssuedCode(code, first_row[gid])
            case Failure(failure) if failure.kind == "unavailable":
                down = failure
            case Failure():
                tally.reject(first_row[gid], "issuer_rejected")
    # Record what was issued before anything else, even when the run is about to stop: the
    # re-run reuses these codes instead of asking for new ones.
    recorded = _ledger(lambda: ledger.record(request.wave_file_prefix, fresh)) if fresh else {}
    tally.issued += len(fresh)
    if down is not None:
        raise _Stop(
            GenerateFailure(
                "issuer_unavailable",
                f"wave {request.wave_file_prefix}: {down} (codes issued so far are recorded; "
                "run again to continue)",
                retryable=True,
            )
        )
    return recorded


def _ledger(call: Callable[[], Mapping[str, IssuedCode]]) -> Mapping[str, IssuedCode]:
    try:
        return call()
    except DependencyUnavailable as error:
        raise _Stop(
            GenerateFailure("ledger_unavailable", f"issued-code ledger: {error}", retryable=True)
        ) from error
