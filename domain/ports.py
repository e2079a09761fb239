"""The ports: what the domain needs from the outside world, named by need, not by AWS service.

Each is a `typing.Protocol`; adapters/ implements them with boto3 and HTTP clients,
tests/support/memory_*.py with in-process fakes for unit tests (never shipped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from returns.result import Result

from domain.codes import AssignCount, CodeRequest, CodeType, IssuedCode, Reservation
from domain.lake import (
    DropPlan,
    MergedFile,
    MergedManifest,
    MergeRefusal,
    MoveRequest,
    SourceFile,
)
from domain.models import (
    Campaign,
    LeaseHeld,
    LookupFailure,
    Notification,
    ObjectInfo,
    ObjectRef,
    OverlongLine,
    ProcessIdentity,
    PutOutcome,
    StreamRecord,
)
from domain.once import Done, Entry, Outcome, Resolution
from domain.records import AssignedCodes, CodeAssignment, LakeBatch, Verdict
from domain.sms import EmailRequest, SendExchange, SmsAnswer, SmsMessage
from domain.streaming import BatchCounts, DeadLetter, IncomingRecord
from domain.wave_prep.fans import EligibilityQuery, EligibleFan
from domain.wave_prep.markets import CampaignMarket
from domain.wave_prep.status import WaveStatus

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class ObjectWriter(Protocol):
    # memoryview too: the merge writes views of the chunks it read, not copies of them.
    def write(self, data: bytes | memoryview) -> int: ...


# The object store, split by need: a worker names the parts it uses (a reader of lines, a writer
# of blobs...), so its signature says what it touches and a fake implements only that.
# ObjectStore is all of them together: what the S3 and in-memory adapters implement.


class LineReader(Protocol):
    def iter_lines(self, ref: ObjectRef) -> Iterator[bytes | OverlongLine]:
        """The object's lines, streamed, each with its line ending removed (LF or CRLF); a line
        longer than the store's bound comes as an OverlongLine (its length, not its bytes)."""
        ...


class ChunkReader(Protocol):
    def iter_chunks(
        self, ref: ObjectRef, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        """The object's bytes from `start` to `end` (exclusive; None: its end), streamed in
        chunks; a range past the object's end yields nothing (a lake merge reads a file's header
        by its first 64 KiB, not the whole object)."""
        ...


class BlobReader(Protocol):
    def read_bytes(self, ref: ObjectRef) -> bytes:
        """A whole (small) object. Raises ObjectNotFound."""
        ...

    def head(self, ref: ObjectRef) -> ObjectInfo | None: ...


class BlobWriter(Protocol):
    """Writes are complete-or-nothing."""

    def put_bytes(self, ref: ObjectRef, data: bytes, content_type: str = ...) -> None: ...

    def open_writer(
        self, ref: ObjectRef, content_type: str = ...
    ) -> AbstractContextManager[ObjectWriter]:
        """A streaming writer; the object appears only when the block exits without error. A
        store that can check what it stored (S3: size and CRC-32 after the upload) raises
        ObjectMismatch at the block's exit when the object is not the bytes written: the merge
        counts its merged file from the bytes it wrote and relies on this, not a read-back."""
        ...


class BlobListing(Protocol):
    def list_objects(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]: ...


class BlobMover(Protocol):
    """Copy before delete: the caller copies, checks, then deletes."""

    def copy(self, source: ObjectRef, target: ObjectRef) -> None: ...

    def delete(self, ref: ObjectRef) -> None: ...


class VersionedBlobs(Protocol):
    """Compare-and-set on small objects (S3 conditional writes): claims and leases that two
    runs must not both win. A version is the object's ETag, so what is written must differ from
    what it replaces (a holder and an expiry do), or the replaced version would come back."""

    def read_versioned(self, ref: ObjectRef) -> tuple[bytes, str] | None:
        """The object's bytes and version, or None when there is none."""
        ...

    def put_versioned(
        self, ref: ObjectRef, data: bytes, expected_version: str | None
    ) -> str | None:
        """Writes only if the object's version is still `expected_version` (None: only if there
        is no object). The new version, or None when another writer got there first."""
        ...


class Lease(Protocol):
    """A run's hold on one piece of work (domain/lease.py states the rules)."""

    def keep(self) -> bool:
        """Before each step that writes: True while this run still holds it (renewing it when
        half its term is gone); False when another run took it over (this one stalled past
        its term, so it must stop and write nothing more)."""
        ...

    def release(self) -> None:
        """Done (or failed): a retry may start at once."""
        ...

    def seconds_left(self) -> float:
        """Seconds before another run may take this lease over (0 when lost or lapsed): a
        worker bounds its next step by it, so no step outlives the lease (domain/lease.py)."""
        ...

    @property
    def taken_from_dead(self) -> str | None:
        """The holder this run took the lease over from because that holder's process was
        proven dead (its exact name), else None (the lease was free, released or expired). A
        worker passes it to OnceLedger.claim's `dead_owners` where the holder's name owns the
        dead run's ledger claims."""
        ...


class ProcessLiveness(Protocol):
    """Whether a lease's holder is provably dead, so a re-run on the same machine need not wait
    out the term of a run killed with kill -9 (domain/lease.py). Production:
    adapters/process_liveness.ProcLiveness (Linux /proc); tests: a hand-written fake."""

    def identity(self) -> ProcessIdentity | None:
        """This process's identity, recorded in the leases it takes (None: not knowable here)."""
        ...

    def provably_dead(self, holder: ProcessIdentity) -> bool:
        """True only when `holder` ran on this host, this boot, this pid namespace, and no
        process with its pid and start time exists; anything unsure is False."""
        ...


class Leases(Protocol):
    """One run at a time per name (a wave prefix, a lake day): the second run is refused with
    who holds it (run id, host, pid) and since when; a crashed holder's lease is taken over
    after its term, or at once when a ProcessLiveness proves the holder dead. Production:
    adapters/leases.ObjectLeases (S3 conditional puts); tests:
    tests/support/memory_leases.MemoryLeases."""

    def acquire(self, name: str) -> Result[Lease, LeaseHeld]: ...


class ObjectReader(LineReader, ChunkReader, BlobReader, Protocol):
    """Every way of reading an object, and nothing that writes."""


class ResumableSource(ChunkReader, BlobReader, BlobWriter, Protocol):
    """An object streamed, and small ones beside it read and written whole: a worker that
    keeps a checkpoint of how far it got (load_code_assignments_to_stream)."""


class ObjectStore(ObjectReader, BlobWriter, BlobListing, BlobMover, Protocol):
    """Blobs by bucket and key, every part above but the conditional writes. Reads stream;
    writes are complete-or-nothing. Workers should take the parts they use; this whole is for
    adapters and composition."""


class BulkDelete(Protocol):
    def delete_many(self, refs: Sequence[ObjectRef]) -> None:
        """Deletes each (a missing one is no error), in as few calls as the store allows: one
        call a checkpoint cost a scored file ~1 µs a row (benchmarks/README.md). A failure may
        leave any of them undeleted."""
        ...


class ConditionalObjectStore(ObjectStore, VersionedBlobs, BulkDelete, Protocol):
    """An object store with conditional writes too (S3's and the in-memory one): for a worker
    whose runs must not overlap (process_scored_files' lease and checkpoints)."""


class ChunkMapper(Protocol):
    """Runs a transform over chunks (domain/scoring/chunks.py cuts a scored file into them):
    `fn(ctx, chunk)` for every chunk, results *in input order*, holding only a bounded number
    of chunks at a time. domain/scoring/chunks.SequentialMapper runs them one after the other
    in this process; adapters/parallel.py spreads them over worker processes."""

    def map(self, fn: Callable[[C, T], R], ctx: C, chunks: Iterable[T]) -> Iterator[R]:
        """fn(ctx, chunk) for each chunk, in order; `fn` must be a module-level function and
        `ctx` picklable, so that implementations may run them in other processes."""
        ...


class RecordStream(Protocol):
    """A Kinesis-like stream. `put_records` consumes an iterable lazily, in batches within the
    stream's limits, resends entries that failed, and reports what could not be delivered."""

    max_record_bytes: int

    def put_records(self, records: Iterable[StreamRecord]) -> PutOutcome: ...


class RecordEncoder(Protocol):
    """Serialises a record to bytes (JSON). Injected so the domain stays free of orjson."""

    # Positional-only, so `orjson.dumps` (whose first parameter is positional-only) fits.
    def __call__(self, record: Mapping[str, Any], /) -> bytes: ...


class CampaignDirectory(Protocol):
    def get_campaign(self, campaign_id: str) -> Result[Campaign, LookupFailure]: ...

    def campaign_ids_for_categories(
        self, category_ids: Sequence[str]
    ) -> Result[Mapping[str, str], LookupFailure]:
        """categoryId -> campaignId for the ids that are known; unknown ids are left out."""
        ...


class Notifier(Protocol):
    """Posts a human-readable summary (Slack). Failing to notify never fails the work."""

    def notify(self, notification: Notification) -> Result[None, str]: ...


# --- Stream consumers (issue 3): code assignment look-ups and selection -----------------------


class UserDirectory(Protocol):
    def user_ids_for(
        self, global_user_ids: Sequence[str]
    ) -> Result[Mapping[str, str], LookupFailure]:
        """globalUserId -> userId for the ids that are known; unknown ids are left out."""
        ...


# --- Stream workers (issue 3): lake archive, schemas, entries, selection, verdicts ---------------
# Value types live in domain.records; transient failures raise domain.streaming's
# DependencyUnavailable (the runtime replays the batch), expected ones come back as values.


class StreamWorker(Protocol):
    """A worker bound to its ports (bootstrap does the binding), ready for a runtime to call:
    one batch of one shard in, received = handled + filtered + dead_lettered out."""

    @property
    def name(self) -> str: ...

    def __call__(self, batch: Sequence[IncomingRecord]) -> BatchCounts: ...


class DeadLetters(Protocol):
    def send(self, letters: Sequence[DeadLetter]) -> None:
        """Stores dead letters durably; raises DependencyUnavailable when it cannot."""
        ...


class SchemaCheck(Protocol):
    def conform(
        self, record_type: str, record: Mapping[str, Any], received_at: datetime | None = None
    ) -> Result[Mapping[str, Any], str]:
        """The record in the shape its type's schema archives, or the reason it does not fit
        (naming the field, never echoing its value)."""
        ...


class RecordArchive(Protocol):
    """The data lake: one object per record type per batch, at a deterministic key."""

    def replace_batch(self, batch: LakeBatch) -> tuple[ObjectRef, ...]:
        """Writes each of the batch's types as one object at its LakeKey, replacing what an
        earlier attempt of the same batch wrote, and removes that attempt's objects for types
        this batch no longer holds. Raises DependencyUnavailable when the store fails."""
        ...


class EntryDirectory(Protocol):
    """Fans' entries: where assigned codes are recorded (entry service, or DynamoDB)."""

    # Read-only, so frozen dataclasses and class attributes fit.
    @property
    def max_assignments_per_call(self) -> int: ...

    def assign_codes(
        self, campaign_id: str, assignments: Sequence[CodeAssignment]
    ) -> Result[AssignedCodes, LookupFailure]:
        """Assigns at most `max_assignments_per_call` codes; one already assigned to that fan is
        counted in `already`, never assigned twice. kind 'unavailable' = transient."""
        ...


class SelectionLedger(Protocol):
    def record_selections(
        self, campaign_id: str, assignments: Sequence[CodeAssignment]
    ) -> Result[int, LookupFailure]:
        """Marks the fans selected (verdict true, selected events); idempotent."""
        ...


class VerdictQueue(Protocol):
    def send(self, verdicts: Sequence[Verdict]) -> None:
        """Queues each `{campaignId, count}` under its dedupe id; raises DependencyUnavailable
        when it cannot (some may have been queued: a replay sends them again, same ids)."""
        ...


# --- Access codes (issues 9 and 10): issuing, reserving and assigning --------------------------
# Expected failures come back as LookupFailure values: kind 'unavailable' is transient (the
# adapter already retried), 'invalid' and 'not_found' are the caller's to report.


class CodeIssuer(Protocol):
    """Issues one fan's code (the original's Pacman)."""

    def issue(self, request: CodeRequest) -> Result[str, LookupFailure]: ...

    def issue_many(
        self, requests: Sequence[CodeRequest], *, deadline_seconds: float | None = None
    ) -> Sequence[Result[str, LookupFailure]]:
        """One result per request, in order. Adapters issue them concurrently (a bounded number
        in flight); the caller bounds memory by the size of `requests`. With `deadline_seconds`
        the call returns within about that long: requests unanswered or not started by then
        come back 'unavailable' (the worker derives it from its lease, so a chunk cannot
        outlive the lease)."""
        ...


class IssuedCodeLedger(Protocol):
    """Codes issued per wave and fan, recorded before they are written anywhere else."""

    def recall(self, wave: str, global_user_ids: Sequence[str]) -> Mapping[str, IssuedCode]:
        """What is recorded for these fans of this wave (fans with nothing recorded left out)."""
        ...

    def record(self, wave: str, issued: Mapping[str, IssuedCode]) -> Mapping[str, IssuedCode]:
        """Records each fan's code unless one is recorded already (a conditional write), and
        returns what each fan holds afterwards: the earlier record wins a race."""
        ...


class CodeInventory(Protocol):
    """Codes per campaign: reserved (expiring after 24 h unless assigned), then assigned.

    A code belongs to at most one campaign; assigning is idempotent (a code already assigned to
    this campaign is not counted as updated again).
    """

    def reserve(
        self, campaign_id: str, count: int, code_type: CodeType, key: str
    ) -> Result[Reservation, LookupFailure]:
        """`count` codes held under `key`, or fewer when the campaign's stock of that type runs
        short (the caller decides what a short reservation means). Where the store can
        (DynamoDB), the same key again returns the same codes, renewing their 24 h; the HTTP
        code service cannot, so a caller that must reuse a reservation on retry records it
        (keyed by its natural key) before using its codes."""
        ...

    def assign(
        self, campaign_id: str, codes: Sequence[str]
    ) -> Result[AssignCount, LookupFailure]: ...

    def lookup(
        self, campaign_id: str, codes: Sequence[str]
    ) -> Result[Mapping[str, str], LookupFailure]:
        """code -> status ('available', 'reserved', 'assigned') for the codes that exist."""
        ...


# --- Wave prep (issue 10): markets, eligible fans, reservations, status, the delivery zip ------


class CampaignMarkets(Protocol):
    """The campaign's markets (campaign service `GET /campaigns/:id/markets`, or `markets` in
    the campaign's JSON config). The campaign directories implement it beside CampaignDirectory;
    it is its own port so directories that never serve a wave need not."""

    def markets(self, campaign_id: str) -> Result[tuple[CampaignMarket, ...], LookupFailure]: ...


class EligibleFans(Protocol):
    """The campaign's scoring entries that may compete in a wave, streamed.

    The source applies the query where it can (the domain checks every rule again). A record
    that does not parse comes as Failure(reason naming the field, never its value). Raises
    DependencyUnavailable when the source stays down past the adapter's retries, and
    wave_prep.fans.BrokenSource when it answers with what no retry can fix (pages that never
    end, a body that is not the contract's)."""

    def eligible_fans(
        self, campaign_id: str, query: EligibilityQuery
    ) -> Iterator[Result[EligibleFan, str]]: ...


class ReservationLedger(Protocol):
    """Code reservations a wave made, by their natural key (campaign, date key, market, batch),
    recorded before any of their codes is used, so a retry reuses them whatever the inventory
    behind (the HTTP code service cannot look a reservation up by key)."""

    def recorded(self, key: str) -> Reservation | None: ...

    def record(self, reservation: Reservation) -> Reservation:
        """Writes once: when a reservation is already recorded under the key (a concurrent
        run), that one is returned and must be used instead."""
        ...


class WaveStatusStore(Protocol):
    """The status JSON per (campaign, date key), written conditionally."""

    def read(self, campaign_id: str, date_key: str) -> tuple[WaveStatus, str] | None:
        """The status and its version, or None. Raises ValueError when it does not parse."""
        ...

    def write(self, status: WaveStatus, expected_version: str | None) -> str | None:
        """Writes only if the stored version is still `expected_version` (None: only if there
        is no status yet). The new version, or None when another writer got there first."""
        ...


class WaveSelections(Protocol):
    """Wave prep's own ledger of who each wave of a campaign selected (one entry per date key):
    a later wave reads it, so a fan coded by one wave is not selected by another, whatever has
    reached the lake yet."""

    def record(self, campaign_id: str, date_key: str, fan_ids: Sequence[str]) -> None:
        """Replaces the date key's entry (a retry of the same wave rewrites its own)."""
        ...

    def withdraw(self, campaign_id: str, date_key: str) -> None:
        """Removes the date key's entry (its zip was never published); absent is fine."""
        ...

    def selected_elsewhere(self, campaign_id: str, date_key: str) -> frozenset[str]:
        """Every fan the campaign's waves on other date keys selected."""
        ...


class PackageWriter(Protocol):
    def add(self, name: str, lines: Iterable[bytes]) -> int:
        """Adds a file of these lines; returns the bytes written (before compression)."""
        ...


class WavePackage(Protocol):
    """Builds the delivery zip in temporary space and uploads it."""

    def publish(self, ref: ObjectRef) -> AbstractContextManager[PackageWriter]:
        """The zip appears at `ref`, complete, only when the block exits without error; its
        temporary space is freed either way."""
        ...


# --- The data lake's compaction (issue 11): merge_avro_files, move_merged_avro_files ------------


class DuplicateIndex(Protocol):
    """The dedupe keys of one merge, file by file; then which records repeat an earlier one.
    domain.lake.FirstWinsIndex is the rule in plain Python; adapters/lake_keys.py holds the one
    production uses (numpy arrays, spilled to disk past a size)."""

    def add(self, file: str, keys: bytes) -> None:
        """A file's keys: 16 bytes per record (domain.lake.dedupe_key), in record order."""
        ...

    def drops(self, order: Sequence[str], watch: frozenset[bytes] | None = None) -> DropPlan:
        """With the files in arrival order, the positions of the records whose key an earlier
        record holds (the first wins); with `watch`, only records whose key is in it drop."""
        ...

    def close(self) -> None:
        """Frees what the index holds (memory, spill files)."""
        ...


class KeyLog(Protocol):
    """Every source's dedupe keys as a merge's inspection read them, file by file, kept until
    the merged file's sidecar is written from them. domain.lake.MemoryKeyLog holds them in
    memory; adapters/lake_sidecar.py spools them to disk."""

    def add(self, file: str, keys: bytes) -> None:
        """A file's keys: 16 bytes per record, in record order."""
        ...

    def read(self, file: str, start: int, stop: int) -> bytes:
        """The keys of the file's records at positions `start` to `stop` (exclusive), packed."""
        ...

    def close(self) -> None:
        """Frees what the log holds."""
        ...


class LakeCompactor(Protocol):
    """Merges one type's Avro files of a prefix into one, block by block (adapters/)."""

    def inspect(
        self,
        record_type: str,
        sources: Sequence[ObjectInfo],
        keys: DuplicateIndex,
        log: KeyLog,
        heartbeat: Callable[[], None] | None = None,
    ) -> Result[tuple[SourceFile, ...], MergeRefusal]:
        """Each source's header: its schema checked against the type's current one (or a
        compatible older one), its records counted, its arrival read, its records' dedupe keys
        given to `keys` and `log` (from its header, a merged file's trusted sidecar, or its
        records). Writes nothing. `heartbeat` is called before each source (the merge renews
        its lease there, and raises to stop when it was lost)."""
        ...

    def write_merged(
        self,
        record_type: str,
        prefix: str,
        files: Sequence[SourceFile],
        target: ObjectRef,
        drops: DropPlan,
        log: KeyLog,
        sidecar: ObjectRef,
        heartbeat: Callable[[], None] | None = None,
    ) -> Result[MergedFile, MergeRefusal]:
        """First the sidecar at `sidecar` (the kept records' keys from `log`, packed), complete;
        then the files' records in that order minus `drops`, written to `target` completely or
        not at all; its header lists the sources and seals the sidecar (MergedManifest).
        `heartbeat` is called before each source is copied; an exception from it abandons the
        merged file (the upload is aborted)."""
        ...

    def count_records(self, ref: ObjectRef) -> int:
        """A container file's records, from its block counts."""
        ...

    def reap_uploads(self, targets: Sequence[ObjectRef]) -> None:
        """Aborts the open uploads of `targets` (a merged file and its sidecar) that a run
        killed between completing its upload and reaping the others left: called under the
        prefix's lease, so no live run writes them. Best effort."""
        ...


class MergeManifests(Protocol):
    def read_manifest(self, ref: ObjectRef) -> MergedManifest | None:
        """What a merged file was built from; None when there is no merged file."""
        ...


class MoveQueue(Protocol):
    """Where a merge hands its prefix to move_merged_avro_files (SQS)."""

    def send(self, request: MoveRequest) -> None: ...


class QueryEngine(Protocol):
    """SQL over the lake (Athena): one statement at a time, run to its end."""

    def execute(self, sql: str) -> Result[str, str]:
        """Starts the statement and waits for it (polling, up to the adapter's deadline): its
        execution id, or why it did not succeed (failed, cancelled, timed out; then stopped)."""
        ...

    def rows(self, execution_id: str) -> Iterator[tuple[str | None, ...]]:
        """A finished query's data rows (no header), streamed (never all in memory)."""
        ...

    def discard(self, execution_id: str) -> None:
        """Removes the execution's output objects (results and their metadata)."""
        ...


# --- Doing an effect once, no faster than allowed (issue 19) ------------------------------------


class OnceLedger(Protocol):
    """Effects that must happen once (a text sent), keyed by their natural id. domain/once.py
    holds the rules (claimed -> started -> done | failed | unknown); implementations only
    compare and set: adapters/aws/dynamo_ledger.py, and tests/support/memory_ledger.py.

    A worker claims, starts (recorded *before* calling the outside world), calls, finishes.
    A claim whose owner died is taken over after its expiry (at once when the claimer names
    the owner proven dead: `dead_owners`); one whose attempt had started becomes UNKNOWN
    instead, never a second effect. Raises DependencyUnavailable when the
    store cannot answer; LedgerConflict for a transition the entry does not allow."""

    def claim(
        self,
        keys: Sequence[str],
        owner: str,
        ttl: timedelta,
        dead_owners: frozenset[str] = frozenset(),
    ) -> Mapping[str, Entry]:
        """Each key's entry after `owner` tried to claim it: `owner`'s claim (CLAIMED, held by
        `owner`) where it won, else what holds it (another's live claim, or a settled entry,
        including one this claim turned UNKNOWN). Entries held by `dead_owners` (proven dead:
        Lease.taken_from_dead) count as expired (domain/once.py): a CLAIMED one taken over, a
        STARTED one turned UNKNOWN. ValueError when `owner` is among them."""
        ...

    def start(self, entry: Entry) -> Entry:
        """Records that the attempt starts, on the owner's live claim `entry` (as claimed)."""
        ...

    def start_many(self, entries: Sequence[Entry]) -> Mapping[str, Entry]:
        """`start` for a group about to be called, in as few writes as the store allows: each
        key's entry afterwards, STARTED where the start won; else not started, and no error: a
        claim lapsed by the ledger's clock comes back as given, one taken over as it now is
        (absent: no entry)."""
        ...

    def finish(self, settlements: Sequence[tuple[Entry, Outcome]]) -> Mapping[str, Entry]:
        """Each owner's outcome on its started entry (also on one turned UNKNOWN meanwhile:
        the owner's answer settles it)."""
        ...

    def release(self, entry: Entry) -> None:
        """The owner gives the key back: only when the effect did not happen."""
        ...

    def record(self, results: Mapping[str, Done], owner: str) -> Mapping[str, Entry]:
        """For an effect safe to repeat under its own key (no claim, no start): each key's
        result written DONE where the key has no entry; each key's entry afterwards (the
        first record wins a race)."""
        ...

    def resolve(self, key: str, resolution: Resolution) -> Entry:
        """Reconciles an UNKNOWN entry from an outside lookup (a delivery receipt)."""
        ...

    def read(self, keys: Sequence[str]) -> Mapping[str, Entry]:
        """The entries that exist for these keys (consistent reads)."""
        ...


class MonotonicClock(Protocol):
    """Seconds that only go forward, and waiting for them (time.monotonic / sleep and
    asyncio.sleep in production; a fake whose sleeps move its time in tests)."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    async def sleep_async(self, seconds: float) -> None: ...


class RateLimiter(Protocol):
    """No more than a rate of units per second (domain/rate.py's rules): weighted (a text costs
    its message parts), callers served in the order they ask, from threads and from asyncio.
    A weight the limiter can never hold raises ValueError. Not a concurrency cap: a caller
    that must also bound its calls in flight takes its cap first, then the rate
    (adapters/rate_limiter.Throttle), so that the time it was given is the time it calls."""

    def acquire(self, weight: float = 1) -> None:
        """Blocks the calling thread until `weight` units may go, and takes them."""
        ...

    async def acquire_async(self, weight: float = 1) -> None:
        """Waits (asyncio) until `weight` units may go, and takes them."""
        ...


# --- Sending a wave (issue 20) -------------------------------------------------------------------


class SmsGateway(Protocol):
    """Sends one text (AWS End User Messaging SendTextMessage, SNS Publish to a number, the TM
    SMS service over HTTP: adapters/sms/). Never raises for what the provider answers: the
    answer says what happened (domain/sms.py: Accepted, OptedOut, Refused, Throttled, and
    NoAnswer when the call may have reached the provider without an answer)."""

    def send(self, message: SmsMessage) -> SmsAnswer: ...


class EmailQueue(Protocol):
    """The SMS wave email queue (SQS): `{data: EmailRequest}` messages, up to 10 a call, each
    carrying its deterministic dedupe id."""

    max_batch: int

    def send(self, requests: Sequence[EmailRequest]) -> Mapping[str, str | None]:
        """Each request's dedupe id -> the queue's message id, or None when the queue refused
        that one (not enqueued). Raises DependencyUnavailable when the call had no answer (the
        requests may have been enqueued)."""
        ...


class TaskRunner(Protocol):
    """Drives sends (domain/sms.py SendExchange) with up to `in_flight` at once, taking them
    from `tasks` lazily (so a worker's memory holds about `in_flight` of them): each message an
    exchange yields is sent with `gateway` inside `pacer.slot(message.parts)` and its answer sent
    back in; each exchange's result is yielded as it completes (in any order). An exception an
    exchange raises stops the run (the calls in flight finish) and is raised by the iterator.
    adapters/sms/runner.py: threads, one asyncio loop, or one at a time (tests)."""

    def run(
        self,
        tasks: Iterable[SendExchange[T]],
        in_flight: int,
        gateway: SmsGateway,
        pacer: SendPacer,
    ) -> Iterator[T]: ...


class SendPacer(Protocol):
    """The two controls of a sender: a cap on calls in flight, then a rate in message parts a
    second (adapters/rate_limiter.Throttle), slowed further while the provider throttles."""

    def slot(self, parts: int) -> AbstractContextManager[None]:
        """Held around one provider call of `parts` message parts."""
        ...

    def throttled(self, retry_after: float | None) -> None:
        """The provider throttled: every caller waits a while (longer each time in a row)."""
        ...

    def accepted(self) -> None:
        """A call went through: the throttling streak is over."""
        ...


class SendStarter(Protocol):
    """Starts the send of a wave (the scheduler's last step): a Step Functions execution named
    after the wave (StartExecution with the same name and input is idempotent on a STANDARD
    state machine), or a direct invoke. Returns a handle (an execution ARN); raises
    DependencyUnavailable when it could not."""

    def start(self, wave_name: str) -> str: ...


# --- Campaign statistics (issue 22): save_stats, slack_stats --------------------------------------


class OpenCampaigns(Protocol):
    """The campaigns open now (stats are kept for them only)."""

    def open_campaigns(self) -> Result[Sequence[Campaign], LookupFailure]: ...


class LakeRecords(Protocol):
    """The lake's records of one file, decoded one at a time (never a whole file in memory)."""

    def records(self, ref: ObjectRef) -> Iterator[Mapping[str, Any]]: ...
