"""smsWaveSend: every fan of a wave reached once, as fast as the carriers allow, never texted
twice. Input `{waveName}` (a Step Functions execution the scheduler started, or the CLI).

One run per wave at a time: the run takes the wave's lease first (Leases port); a second run
is refused naming the holder. The config is `smsWaves/triggered/{wave}_csv.json` (options
`channels`, `allowIntlPhones`; domain/sms.py), the fans `smsWaves/csv/{wave}.csv`, streamed
`chunk_rows` rows at a time.

Never twice (domain/once.py): per chunk, a ledger entry per (wave, fan, `sms`) is claimed in
one call; each group of `start_batch` texts is STARTED in one call right before their provider
calls, and each text's outcome is queued and FINISHED with others (`close_batch` a call, or
after `close_after_seconds`): the provider's message id (DONE), the refusal (FAILED;
`opted_out` is its own reason and outcome) or, when the call ended without an answer, UNKNOWN.
A crash between a start and its record (before the call, or before the group's close) leaves
the entry STARTED, which the next run turns UNKNOWN and never resends: it is reported
(`detail.sms.unknown`). A re-run that took the lease over from a run proven dead (killed on this
machine: Lease.taken_from_dead) takes that run's claims over at once (its claimed texts sent,
its started ones UNKNOWN) instead of skipping them until their ttl (`held_by_another_run`).
A throttling answer slows every sender down (SendPacer.throttled) and the same entry is tried
again; a provider that keeps throttling past `throttle_budget_seconds` stops the run
(retryable, the entry released so a re-run sends it).
Emails go in the main thread 10 at a time (EmailQueue), under entries `email#{wave}#{fan}`
claimed, started, then finished with the queue's message id; each carries a deterministic
dedupe id.

Counts (the result): every row is one of `total`; a row that is not a registrant (wrong
number of fields, no globalUserId, doNotText neither true nor false, the same fan twice in a
chunk) is `failed`, listed with its row number and reason; a registrant is `ok` when one of
its channels was sent (by this run or an earlier one), else `failed`. Per channel every
registrant lands in exactly one of sent, failed, skipped, opted_out, unknown.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from itertools import islice
from typing import Any

from returns.result import Failure, Result, Success

from domain.lease import leased
from domain.models import Notification, ObjectNotFound, ObjectRef
from domain.once import SETTLED, Done, Entry, EntryState, Unsure
from domain.once import Failed as LedgerFailed
from domain.once import Outcome as LedgerOutcome
from domain.ports import (
    EmailQueue,
    Lease,
    Leases,
    MonotonicClock,
    Notifier,
    ObjectStore,
    OnceLedger,
    SendPacer,
    SmsGateway,
    TaskRunner,
)
from domain.sms import (
    Accepted,
    Channels,
    NoAnswer,
    OptedOut,
    Outcome,
    Refused,
    Registrant,
    SendCounts,
    SendExchange,
    SmsAnswer,
    SmsMessage,
    Throttled,
    WaveOptions,
    email_request,
    ledger_key,
    parse_wave_options,
    read_registrant,
)
from domain.sms_parts import Encoding, text_parts
from domain.streaming import DependencyUnavailable
from domain.waves import CsvProblem, WaveRow, read_wave_csv, wave_csv_key

SEND_LEASE_PREFIX = "smsWaves/leases/send/"
MAX_REJECTS_LISTED = 100
DUPLICATE_ROW = "the same globalUserId as an earlier row"
OPTED_OUT = "opted_out"
JSON = "application/json"


def config_key(state: str, wave: str) -> str:
    return f"smsWaves/{state}/{wave}_csv.json"


@dataclass(frozen=True, slots=True)
class SendInput:
    wave_name: str

    @staticmethod
    def parse(event: Any) -> Result[SendInput, str]:
        """The input itself (entrypoints/events.py `unwrap` takes AWS wrappers off)."""
        name = event.get("waveName") if isinstance(event, Mapping) else event
        if not isinstance(name, str) or not name.strip() or not name.strip().isprintable():
            return Failure("input needs waveName: a non-empty printable string")
        if "/" in name or "\\" in name:
            return Failure(f"waveName {name!r} contains '/' or '\\'")
        return Success(SendInput(name.strip()))


@dataclass(frozen=True)
class SendOptions:
    bucket: str
    owner: str  # unique per run: the ledger's owner of this run's claims
    in_flight: int = 200
    rate_parts_per_second: float = 100.0  # for the dry run's estimate (the pacer enforces it)
    chunk_rows: int = 200
    claim_ttl: timedelta = timedelta(minutes=10)
    throttle_budget_seconds: float = 300.0
    # With less time left than this (SendPorts.time_left), no new chunk starts: the texts in
    # flight finish and are recorded (a gateway answers within its 10 s timeout), the emails are
    # queued, and the run stops as retryable. Without it, Lambda's timeout killed a big wave
    # mid-chunk and up to SMS_MAX_IN_FLIGHT texts were left `unknown`, never resent.
    stop_before_seconds: float = 60.0
    # Ledger writes in groups: texts started in one call before their calls (one transaction of
    # up to 100 on DynamoDB), outcomes closed in one call per `close_batch` or once the oldest
    # waited `close_after_seconds` (a slow rate must not hold outcomes unwritten for minutes).
    start_batch: int = 100
    close_batch: int = 100
    close_after_seconds: float = 1.0


@dataclass(frozen=True)
class SentWave:
    wave_name: str
    counts: SendCounts

    def to_json(self) -> dict[str, Any]:
        return {"waveName": self.wave_name, "count": self.counts.to_json()}


@dataclass(frozen=True)
class SendFailure:
    """kind: bad_input, not_found, bad_config, bad_csv (config moved to failed), busy (another
    run holds the wave), taken_over, throttled, unavailable, out_of_time (retryable: a re-run
    resumes)."""

    kind: str
    message: str
    retryable: bool = False
    counts: SendCounts | None = None

    def __str__(self) -> str:
        return self.message


class _Stop(Exception):
    def __init__(self, failure: SendFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass
class SendPorts:
    store: ObjectStore
    ledger: OnceLedger
    gateway: SmsGateway
    emails: EmailQueue
    runner: TaskRunner
    pacer: SendPacer
    leases: Leases
    monotonic: MonotonicClock
    notifier: Notifier | None = None
    progress: Callable[[SendCounts], None] | None = None
    # Seconds the run has left (a Lambda invocation's remaining time); None: unbounded.
    time_left: Callable[[], float] | None = None


@dataclass(frozen=True, slots=True)
class _FanResult:
    registrant: Registrant
    sms: Outcome
    reason: str = ""


# --- reading ---------------------------------------------------------------------------------


def _read_config(
    store: ObjectStore, bucket: str, wave: str, states: Sequence[str]
) -> tuple[ObjectRef, Mapping[str, Any] | str] | None:
    """The first config found among `states`: (its ref, the config or why it is bad)."""
    for state in states:
        ref = ObjectRef(bucket, config_key(state, wave))
        try:
            data = store.read_bytes(ref)
        except ObjectNotFound:
            continue
        try:
            config = json.loads(data)
        except ValueError:
            return ref, "config is not JSON"
        if not isinstance(config, Mapping):
            return ref, "config is not a JSON object"
        return ref, config
    return None


def _chunks(rows: Iterator[WaveRow], size: int) -> Iterator[list[WaveRow]]:
    while chunk := list(islice(rows, size)):
        yield chunk


# --- the dry run -----------------------------------------------------------------------------


def plan_sms_wave(
    request: SendInput, *, store: ObjectStore, options: SendOptions
) -> Result[dict[str, Any], SendFailure]:
    """What sending the wave would do, sending nothing: fans per channel, parts per text, the
    texts non-GSM characters push to UCS-2 (and which characters), the time at the rate."""
    wave = request.wave_name
    found = _read_config(store, options.bucket, wave, ("scheduled", "triggered", "completed"))
    config: Mapping[str, Any] = {}
    if found is not None:
        if isinstance(found[1], str):
            return Failure(SendFailure("bad_config", f"{found[0].uri}: {found[1]}"))
        config = found[1]
    wave_options = parse_wave_options(config)
    if isinstance(wave_options, str):
        return Failure(SendFailure("bad_config", wave_options))
    sms = email = bad = total_parts = ucs2 = 0
    parts: dict[str, int] = {}
    reasons: dict[str, int] = {}
    non_gsm: dict[str, None] = {}
    try:
        _, rows = read_wave_csv(store.iter_chunks(ObjectRef(options.bucket, wave_csv_key(wave))))
        # Every fan id, to count a repeated fan as the send does (a bad row): ~100 bytes a
        # fan, for a dry run only (the send itself keeps no such set: the ledger tells it).
        seen: set[str] = set()
        for row in rows:
            reg = read_registrant(row.number, row.values, wave_options)
            if isinstance(reg, str) or reg.fan in seen:
                bad += 1
                continue
            seen.add(reg.fan)
            email += reg.email is not None
            if reg.phone is None:
                reasons[reg.sms_reason] = reasons.get(reg.sms_reason, 0) + 1
                continue
            sms += 1
            info = text_parts(reg.text)
            parts[str(info.parts)] = parts.get(str(info.parts), 0) + 1
            total_parts += info.parts
            if info.encoding is Encoding.UCS2:
                ucs2 += 1
                non_gsm.update(dict.fromkeys(info.non_gsm))
    except ObjectNotFound:
        return Failure(SendFailure("not_found", f"no wave file {wave_csv_key(wave)}"))
    except CsvProblem as error:
        return Failure(SendFailure("bad_csv", f"{wave_csv_key(wave)}: {error}"))
    seconds = total_parts / options.rate_parts_per_second
    if wave_options.channels is Channels.EMAIL_ON_SMS_FAILURE:
        email_note = "emails go only to fans whose text is not sent"
    else:
        email_note = "every fan with an address is emailed"
    return Success(
        {
            "waveName": wave,
            "channels": wave_options.channels.value,
            "fans": {"sms": sms, "email": email, "badRows": bad},
            "smsNotSent": dict(sorted(reasons.items())),
            "partsPerText": dict(sorted(parts.items(), key=lambda kv: int(kv[0]))),
            "totalParts": total_parts,
            "ucs2Texts": ucs2,
            "nonGsmCharacters": "".join(list(non_gsm)[:40]),
            "rate": options.rate_parts_per_second,
            "estimatedSeconds": round(seconds, 1),
            "emailNote": email_note,
        }
    )


# --- the send --------------------------------------------------------------------------------


def sms_wave_send(
    request: SendInput, *, ports: SendPorts, options: SendOptions
) -> Result[SentWave, SendFailure]:
    wave = request.wave_name
    return leased(
        ports.leases,
        wave,
        lambda held: Failure(SendFailure("busy", str(held))),
        lambda lease: _send_leased(wave, lease, ports, options),
    )


def _send_leased(
    wave: str, lease: Lease, ports: SendPorts, options: SendOptions
) -> Result[SentWave, SendFailure]:
    found = _read_config(ports.store, options.bucket, wave, ("triggered", "completed"))
    if found is None:
        return Failure(
            SendFailure("not_found", f"no config {config_key('triggered', wave)}: not triggered")
        )
    config_ref, config = found
    if isinstance(config, str):
        return _failed_wave(ports, options, wave, config_ref, SendFailure("bad_config", config))
    wave_options = parse_wave_options(config)
    if isinstance(wave_options, str):
        failure = SendFailure("bad_config", wave_options)
        return _failed_wave(ports, options, wave, config_ref, failure)
    csv_ref = ObjectRef(options.bucket, wave_csv_key(wave))
    sender = _Sender(wave, wave_options, ports, options, lease)
    try:
        _, rows = read_wave_csv(ports.store.iter_chunks(csv_ref))
        sender.run(rows)
    except ObjectNotFound:
        failure = SendFailure("not_found", f"no wave file {csv_ref.key}", counts=sender.counts)
        return _failed_wave(ports, options, wave, config_ref, failure)
    except CsvProblem as error:
        failure = SendFailure("bad_csv", f"{csv_ref.key}: {error}", counts=sender.counts)
        return _failed_wave(ports, options, wave, config_ref, failure)
    except _Stop as stop:
        return Failure(stop.failure)
    sent = SentWave(wave, sender.counts)
    _move_config(ports.store, config_ref, config_key("completed", wave), config, sent.to_json())
    _notify(ports.notifier, wave, sender.counts)
    return Success(sent)


def _failed_wave(
    ports: SendPorts, options: SendOptions, wave: str, ref: ObjectRef, failure: SendFailure
) -> Result[SentWave, SendFailure]:
    if ref.key.startswith("smsWaves/triggered/"):
        try:
            raw: Any = json.loads(ports.store.read_bytes(ref))
        except ValueError:
            raw = None
        _move_config(ports.store, ref, config_key("failed", wave), raw, {"reason": failure.message})
    return Failure(failure)


def _move_config(
    store: ObjectStore, ref: ObjectRef, key: str, config: Any, extra: Mapping[str, Any]
) -> None:
    """Written to its new state with the outcome, then the old one deleted (a crash between
    leaves both: the next run reads triggered first, and the ledger sends nothing twice)."""
    if ref.key == key:
        return
    body = dict(config) if isinstance(config, Mapping) else {"unreadableConfig": True}
    body["sendResult"] = dict(extra)
    store.put_bytes(ObjectRef(ref.bucket, key), json.dumps(body).encode(), JSON)
    store.delete(ref)


def _notify(notifier: Notifier | None, wave: str, counts: SendCounts) -> None:
    if notifier is None:
        return
    fields = [("wave", wave), ("total", str(counts.total)), ("ok", str(counts.ok))]
    fields.append(("failed", str(counts.failed)))
    # "texts" and "emails", not "sms" and "email": a field named `email` is a sensitive key to
    # the log masking, which blanked the email counts in the log's copy of the summary.
    for channel, detail in (("texts", counts.sms), ("emails", counts.email)):
        fields.append((channel, ", ".join(f"{k} {v}" for k, v in detail.items())))
    unknown = counts.sms[Outcome.UNKNOWN]
    notifier.notify(
        Notification(f"SMS wave {wave} sent", fields=tuple(fields), ok=unknown == 0)
    )  # its Result is the notifier's to log: a Slack outage does not fail a sent wave


class _Sender:
    def __init__(
        self,
        wave: str,
        wave_options: WaveOptions,
        ports: SendPorts,
        options: SendOptions,
        lease: Lease,
    ) -> None:
        self.wave, self.wave_options, self.ports, self.options = wave, wave_options, ports, options
        self.lease = lease
        self.counts = SendCounts()
        self._emails: list[_FanResult] = []
        # Fans whose row is between its claim and its last channel (bounded by a chunk, the
        # texts in flight and an email batch): the same fan's later row is a duplicate. Once a
        # row is done, its settled entries (owned by this run) tell a later row so instead.
        self._open: dict[str, int] = {}
        self._out_of_time = False
        self._closes: list[tuple[Entry, LedgerOutcome]] = []
        self._closes_since = 0.0
        self._closes_lock = threading.Lock()

    def _claim(self, keys: Sequence[str]) -> Mapping[str, Entry]:
        """This run's claims. When the lease was taken over from a run proven dead (kill -9 on
        this machine), that run's name owns its claims: they count as expired at once (claimed
        ones taken over, started ones UNKNOWN, never resent) instead of being skipped as
        `held_by_another_run` until the claim ttl ends."""
        ledger, owner, ttl = self.ports.ledger, self.options.owner, self.options.claim_ttl
        dead = self.lease.taken_from_dead
        if dead is not None and dead != owner:
            return ledger.claim(keys, owner, ttl, frozenset({dead}))
        return ledger.claim(keys, owner, ttl)

    # main thread: rows -> claims -> tasks; results -> counts and emails

    def run(self, rows: Iterator[WaveRow]) -> None:
        results = self.ports.runner.run(
            self._tasks(rows), self.options.in_flight, self.ports.gateway, self.ports.pacer
        )
        try:
            for result in results:
                self._texted(result)
                self._flush_closes(force=False)
        except Exception:
            # The texts that were sent (those in flight finished before the runner raised)
            # are recorded before the stop; a failing ledger here raises its own _Stop.
            self._flush_closes(force=True)
            raise
        self._flush_closes(force=True)
        self._flush_emails()
        self._progress()
        if self._out_of_time:
            raise _Stop(
                SendFailure(
                    "out_of_time",
                    f"wave {self.wave}: stopped before the invocation's end after "
                    f"{self.counts.total} fans, every text in flight recorded; a re-run "
                    "continues (the ledger skips each fan already sent)",
                    retryable=True,
                    counts=self.counts,
                )
            )

    def _tasks(self, rows: Iterator[WaveRow]) -> Iterator[SendExchange[_FanResult]]:
        for chunk in _chunks(rows, self.options.chunk_rows):
            time_left = self.ports.time_left
            if time_left is not None and time_left() < self.options.stop_before_seconds:
                self._out_of_time = True
                return  # the tasks already started finish and are counted by run()
            if not self.lease.keep():
                raise _Stop(
                    SendFailure(
                        "taken_over",
                        f"another run took wave {self.wave} over (this one stalled past its "
                        "lease): this run stopped; that run goes on",
                        counts=self.counts,
                    )
                )
            registrants = self._registrants(chunk)
            keys = [ledger_key("sms", self.wave, r.fan) for r in registrants if r.phone]
            entries = self._ledger(partial(self._claim, keys))
            registrants = [
                r
                for r in registrants
                if r.phone is None
                or not self._done_earlier(r, entries[ledger_key("sms", self.wave, r.fan)])
            ]
            for start in range(0, len(registrants), self.options.start_batch):
                group = registrants[start : start + self.options.start_batch]
                started = self._start(group, entries)
                for registrant in group:
                    if registrant.phone is None:
                        why = registrant.sms_reason.partition(":")
                        outcome = Outcome.FAILED if why[0] == "failed" else Outcome.SKIPPED
                        yield _settled(_FanResult(registrant, outcome, why[2]))
                    else:
                        key = ledger_key("sms", self.wave, registrant.fan)
                        yield self._text(registrant, entries[key], started.get(key))
            self._progress()

    def _start(self, group: list[Registrant], entries: Mapping[str, Entry]) -> Mapping[str, Entry]:
        """The group's claims STARTED in one ledger call, right before their calls (one
        conditional write per text cost ~2.4 ms of client CPU on DynamoDB, 20x the call). A
        crash before a started text's call leaves it UNKNOWN, never sent: at most
        `start_batch` more texts unknown than one start per call left."""
        owner = self.options.owner
        claimed = [
            entry
            for r in group
            if r.phone is not None
            and (entry := entries[ledger_key("sms", self.wave, r.fan)]).state is EntryState.CLAIMED
            and entry.owner == owner
        ]
        if not claimed:
            return {}
        answers: Mapping[str, Entry] = self._ledger(partial(self.ports.ledger.start_many, claimed))
        return {
            k: e for k, e in answers.items() if e.state is EntryState.STARTED and e.owner == owner
        }

    def _registrants(self, chunk: list[WaveRow]) -> list[Registrant]:
        out: list[Registrant] = []
        for row in chunk:
            reg = read_registrant(row.number, row.values, self.wave_options)
            if isinstance(reg, Registrant) and reg.fan in self._open:
                reg = DUPLICATE_ROW
            if isinstance(reg, str):
                self._reject(row.number, reg)
                continue
            self._open[reg.fan] = reg.row
            out.append(reg)
        return out

    def _done_earlier(self, registrant: Registrant, entry: Entry) -> bool:
        """True (the row rejected) when this run already settled the fan's entry: an earlier
        row of the same fan, done before this one was read."""
        if entry.owner != self.options.owner or entry.state not in SETTLED:
            return False
        self._open.pop(registrant.fan, None)
        self._reject(registrant.row, DUPLICATE_ROW)
        return True

    def _reject(self, row: int, reason: str) -> None:
        self.counts.total += 1
        self.counts.failed += 1
        self.counts.reason("row", reason)
        if len(self.counts.rejected) < MAX_REJECTS_LISTED:
            self.counts.rejected.append({"row": row, "reason": reason})

    def _texted(self, result: _FanResult) -> None:
        registrant = result.registrant
        if registrant.email is None:
            self._fan_done(result, Outcome.SKIPPED, "no_email")
        elif self.wave_options.channels is Channels.EMAIL_ON_SMS_FAILURE and result.sms in (
            Outcome.SENT,
            Outcome.UNKNOWN,
        ):
            self._fan_done(result, Outcome.SKIPPED, f"sms_{result.sms}")
        else:
            self._emails.append(result)
            if len(self._emails) >= self.ports.emails.max_batch:
                self._flush_emails()

    def _fan_done(self, result: _FanResult, email: Outcome, email_reason: str = "") -> None:
        """Both channels answered: the fan's outcomes counted (only now, so that a row found a
        duplicate at its email counts as that alone)."""
        self._open.pop(result.registrant.fan, None)
        self.counts.sms[result.sms] += 1
        if result.reason:
            self.counts.reason("sms", result.reason)
        self.counts.email[email] += 1
        if email_reason:
            self.counts.reason("email", email_reason)
        self.counts.total += 1
        if Outcome.SENT in (result.sms, email):
            self.counts.ok += 1
        else:
            self.counts.failed += 1

    def _progress(self) -> None:
        if self.ports.progress is not None:
            self.ports.progress(self.counts)

    def _ledger(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except DependencyUnavailable as error:
            raise _Stop(
                SendFailure("unavailable", f"the send ledger: {error}", True, self.counts)
            ) from error

    # the email batch (main thread)

    def _flush_emails(self) -> None:
        if not self._emails:
            return
        pending, self._emails = self._emails, []
        keys = {r.registrant.fan: ledger_key("email", self.wave, r.registrant.fan) for r in pending}
        ledger = self.ports.ledger
        entries: Mapping[str, Entry] = self._ledger(partial(self._claim, list(keys.values())))
        sending: list[tuple[_FanResult, Entry]] = []
        for result in pending:
            entry = entries[keys[result.registrant.fan]]
            if entry.state is EntryState.CLAIMED and entry.owner == self.options.owner:
                sending.append((result, self._ledger(partial(ledger.start, entry))))
            elif result.registrant.phone is None and self._done_earlier(result.registrant, entry):
                continue  # an email-only repeat of a fan this run finished: rejected as a row
            else:  # a texted row counts as itself, its email as the earlier row's
                self._fan_done(result, *_settled_outcome(entry, self.options.owner))
        if not sending:
            return
        requests = [email_request(self.wave, r.registrant) for r, _ in sending]
        settlements: list[tuple[Entry, LedgerOutcome]] = []
        try:
            ids: Mapping[str, str | None] = self.ports.emails.send(requests)
        except DependencyUnavailable as error:
            ids, unsure = {}, str(error)
        else:
            unsure = ""
        for (result, entry), request in zip(sending, requests, strict=True):
            message_id = ids.get(request.dedupe_id)
            if unsure:
                settlement: LedgerOutcome = Unsure(unsure)
                outcome = Outcome.UNKNOWN
            elif message_id:
                settlement, outcome = Done(message_id), Outcome.SENT
            else:
                settlement, outcome = LedgerFailed("queue_refused"), Outcome.FAILED
            settlements.append((entry, settlement))
            self._fan_done(result, outcome, "" if outcome is Outcome.SENT else "queue")
        self._ledger(partial(ledger.finish, settlements))

    # a fan's text: an exchange the runner drives (a thread's, or the event loop's), sending
    # each message it yields through the pacer and the gateway and sending the answer back in

    def _text(
        self, registrant: Registrant, entry: Entry, started: Entry | None
    ) -> SendExchange[_FanResult]:
        owner = self.options.owner
        if not (entry.state is EntryState.CLAIMED and entry.owner == owner):
            return _FanResult(registrant, *_settled_outcome(entry, owner))
        if started is None:
            # Claimed but its start lost: the claim lapsed before its turn and was taken
            # (never started: a re-run sends it).
            return _FanResult(registrant, Outcome.SKIPPED, "claim_lapsed")
        parts = text_parts(registrant.text).parts
        message = SmsMessage(entry.key, registrant.phone or "", registrant.text, parts)
        answer = yield from self._call(message, started)
        if isinstance(answer, Accepted):
            settlement: LedgerOutcome = Done(answer.message_id)
            result = _FanResult(registrant, Outcome.SENT)
        elif isinstance(answer, OptedOut):
            settlement = LedgerFailed(OPTED_OUT)
            result = _FanResult(registrant, Outcome.OPTED_OUT)
        elif isinstance(answer, Refused):
            settlement = LedgerFailed(answer.reason)
            result = _FanResult(registrant, Outcome.FAILED, answer.reason)
        else:
            settlement = Unsure(answer.reason)
            result = _FanResult(registrant, Outcome.UNKNOWN, answer.reason)
        self._close(started, settlement)
        return result

    # the texts' outcomes, written to the ledger in groups (main thread)

    def _close(self, started: Entry, settlement: LedgerOutcome) -> None:
        """Queues the text's outcome for the next flush (any thread: the runner's). Until it is
        flushed the entry stays STARTED: a crash before then leaves it UNKNOWN on a re-run,
        never resent (as a crash between the call and a single finish did)."""
        with self._closes_lock:
            if not self._closes:
                self._closes_since = self.ports.monotonic.monotonic()
            self._closes.append((started, settlement))

    def _flush_closes(self, *, force: bool) -> None:
        with self._closes_lock:
            due = len(self._closes) >= self.options.close_batch or (
                self._closes
                and self.ports.monotonic.monotonic() - self._closes_since
                >= self.options.close_after_seconds
            )
            if not (force or due):
                return
            closes, self._closes = self._closes, []
        for start in range(0, len(closes), self.options.close_batch):
            batch = closes[start : start + self.options.close_batch]
            self._ledger(partial(self.ports.ledger.finish, batch))

    def _call(
        self, message: SmsMessage, started: Entry
    ) -> Generator[SmsMessage, SmsAnswer, Accepted | OptedOut | Refused | NoAnswer]:
        pacer, clock = self.ports.pacer, self.ports.monotonic
        deadline = clock.monotonic() + self.options.throttle_budget_seconds
        while True:
            answer = yield message  # sent by the runner under pacer.slot(message.parts)
            if not isinstance(answer, Throttled):
                if isinstance(answer, Accepted):
                    pacer.accepted()
                return answer
            pacer.throttled(answer.retry_after)
            if clock.monotonic() > deadline:
                self._ledger(partial(self.ports.ledger.release, started))
                raise _Stop(
                    SendFailure(
                        "throttled",
                        f"the SMS provider throttled one text for over "
                        f"{self.options.throttle_budget_seconds:.0f} s ({answer.reason}): "
                        "stopped; a re-run goes on where this one stopped",
                        True,
                        self.counts,
                    )
                )


def _settled(result: _FanResult) -> SendExchange[_FanResult]:
    """An exchange that sends nothing: the fan's outcome is known without a call."""
    yield from ()
    return result


def _settled_outcome(entry: Entry, owner: str) -> tuple[Outcome, str]:
    """What an entry this run did not claim says (an earlier run's record, or a live claim)."""
    if entry.state is EntryState.DONE:
        return Outcome.SENT, "earlier_run"
    if entry.state is EntryState.FAILED:
        if entry.detail == OPTED_OUT:
            return Outcome.OPTED_OUT, ""
        return Outcome.FAILED, entry.detail or "earlier_run"
    if entry.state is EntryState.UNKNOWN:
        return Outcome.UNKNOWN, entry.detail
    if entry.owner == owner:
        # This run's own: the same fan in an earlier chunk (its row started it first).
        return Outcome.SKIPPED, "duplicate_fan"
    # CLAIMED or STARTED by another owner whose claim is live: never texted by this run.
    return Outcome.SKIPPED, "held_by_another_run"
