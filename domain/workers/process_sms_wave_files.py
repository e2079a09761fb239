"""processSmsWaveFiles ("wave prep"): select fans per market within capacity, give each a code,
write the delivery files, zip them, and keep the admin's status JSON.

A run:
1. claims the (campaign, date key) with a conditional write of a TRIGGERED status (attempt
   n + 1); a run already under way, or a third attempt, is refused and changes nothing;
2. reads the campaign, the market details CSV and the campaign's markets, and combines them
   (domain.wave_prep.markets), and the optional uploaded TM / non-TM code files;
3. opens the eligible fans' stream (its slow start, an Athena query, outside the lease below);
4. takes the campaign's selection lease (domain.wave_prep.turns: one wave of the campaign at a
   time, waiting its turn, else refused as busy without spending the attempt), and under it
   reads the selection ledger, streams the eligible fans once through the selection
   (domain.wave_prep.selection), fans the campaign's other waves selected counting as already
   coded unless `reassign`, renewing the lease at every fan, records who it selected in the
   ledger and releases the lease;
5. gets each market's codes: `TM` (or the uploaded TM codes) for TM markets; for external
   markets the uploaded non-TM codes, or reservations from the code inventory in batches of
   `reserve_batch`, each recorded in the reservation ledger under (campaign, date key, market,
   batch) *before* any of its codes is used, and reused from there by a retry;
6. writes sms/, email/ and masterCodes/ per market into the zip, uploaded complete (the ledger
   entry withdrawn if codes or the upload fail);
7. writes FINISHED with the counts and the zip's path, or FAILED with the error.

Memory: the selection holds one entry per place (total capacity), plus each market's codes and
the wave's email addresses while the files are written: O(total capacity), not O(fans).
Idempotent: the selection is a function of the fans, the markets and the rules (the random
draw is keyed by the campaign's salt and the date key); codes come back from the ledger in the
same order; the zip is written whole at one key. A retry after a failure at any step reserves
nothing twice and places every fan as the first attempt would have.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain
from typing import TypeVar

from returns.result import Failure, Result, Success

from domain.codes import TM_PLACEHOLDER_CODE, CodeType, Reservation
from domain.models import FailureKind, LookupFailure, ObjectNotFound, ObjectRef
from domain.ports import (
    BlobReader,
    CampaignDirectory,
    CampaignMarkets,
    Clock,
    CodeInventory,
    EligibleFans,
    Lease,
    PackageWriter,
    ReservationLedger,
    WavePackage,
    WaveSelections,
    WaveStatusStore,
)
from domain.streaming import DependencyUnavailable
from domain.wave_prep import files
from domain.wave_prep.fans import BrokenSource, EligibleFan, Ineligible, ineligibility
from domain.wave_prep.markets import (
    WaveMarket,
    combine,
    parse_code_file,
    parse_market_details,
)
from domain.wave_prep.request import WavePrepRequest
from domain.wave_prep.selection import (
    MarketSelection,
    Offer,
    Selection,
    SelectionOutcome,
    SelectionRules,
)
from domain.wave_prep.status import Refusal, WaveCount, WaveStatus, grant_attempt, next_attempt
from domain.wave_prep.turns import SelectionTurns, busy_message

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# Codes per reservation call: the newer registration workers reserve 20,000 at a time.
DEFAULT_RESERVE_BATCH = 20_000
# A TRIGGERED status older than this is a run that died without writing FAILED (Lambda's
# longest timeout is 15 minutes).
DEFAULT_STALE_AFTER = timedelta(minutes=15)
PROGRESS_EVERY = 10_000
_MAX_REASONS = 20
RETRYABLE = frozenset(
    {
        "campaign_unavailable",
        "markets_unavailable",
        "codes_unavailable",
        "dependency_unavailable",
        "campaign_busy",
    }
)
# The upload or the campaign's set-up is wrong, found before any fan is read or code reserved:
# the run is refused without spending its attempt, so the corrected upload runs.
INPUT_REFUSALS = frozenset(
    {
        "markets_missing",
        "bad_markets",
        "markets_mismatch",
        "bad_codes",
        "no_salt",
        "campaign_not_found",
        "markets_not_found",
    }
)
# Another wave of the campaign was selecting (its lease held past this wave's wait, or it took
# over this wave's lease): nothing recorded or reserved, so no attempt is spent; a retry runs.
NOT_SPENT = INPUT_REFUSALS | {"campaign_busy"}
# The deployment is wrong (no codes table): neither a retry nor a new upload can cure it.
ENVIRONMENT = frozenset({"codes_missing"})


def market_details_ref(bucket: str, campaign_id: str, date_key: str) -> ObjectRef:
    return ObjectRef(bucket, f"wavePrep/{campaign_id}/data/{date_key}.csv")


def code_file_ref(bucket: str, campaign_id: str, date_key: str, kind: str) -> ObjectRef:
    """kind: 'tmCodes' or 'nonTmCodes' (the admin's upload types)."""
    return ObjectRef(bucket, f"wavePrep/{campaign_id}/{kind}/{date_key}.csv")


def package_ref(bucket: str, campaign_id: str, date_key: str) -> ObjectRef:
    return ObjectRef(bucket, f"wavePrep/{campaign_id}/prepped/prepped.{date_key}.zip")


def reservation_key(campaign_id: str, date_key: str, market_id: str, batch: int) -> str:
    return f"{campaign_id}/{date_key}/{market_id}/{batch}"


@dataclass(frozen=True, slots=True)
class MarketCounts:
    market_id: str
    name: str
    capacity: int
    eligible: int
    selected: int
    waitlisted: int
    sms: int
    email: int
    code_type: str


@dataclass(frozen=True, slots=True)
class WavePrepCounts:
    campaign_id: str
    date_key: str
    attempt: int
    package: ObjectRef
    fans_read: int
    eligible: int
    selected: int
    waitlisted: int
    duplicates: int
    ineligible: dict[str, int]
    markets: tuple[MarketCounts, ...]
    codes_reserved: int  # reserved by this attempt
    codes_reused: int  # recorded by an earlier attempt and used again


@dataclass(frozen=True, slots=True)
class WavePrepFailure:
    kind: str
    message: str
    attempt: int | None = None  # None: refused before a run started (status unchanged)

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    @property
    def environment(self) -> bool:
        return self.kind in ENVIRONMENT


class _Failed(Exception):
    """Inside a run: stop with this failure (written as FAILED by the caller)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class _CodeUse:
    reserved: int = 0
    reused: int = 0
    seen: set[str] = field(default_factory=set)


def process_sms_wave_files(
    request: WavePrepRequest,
    *,
    bucket: str,
    store: BlobReader,
    campaigns: CampaignDirectory,
    markets: CampaignMarkets,
    fans: EligibleFans,
    codes: CodeInventory,
    ledger: ReservationLedger,
    status: WaveStatusStore,
    package: WavePackage,
    selections: WaveSelections,
    turns: SelectionTurns,
    clock: Clock,
    reserve_batch: int = DEFAULT_RESERVE_BATCH,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    deadline: datetime | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Result[WavePrepCounts, WavePrepFailure]:
    """`deadline`: when the invocation ends (a Lambda's), bounding how long this wave waits for
    another wave of its campaign to finish selecting (domain.wave_prep.turns)."""
    cid, date_key = request.campaign_id, request.date_key
    try:
        current = status.read(cid, date_key)
    except ValueError as unreadable:
        return Failure(
            WavePrepFailure(
                "status_unreadable", f"status of wave prep {cid}/{date_key}: {unreadable}"
            )
        )
    claim = next_attempt(current[0] if current else None, cid, date_key, clock.now(), stale_after)
    if isinstance(claim, Refusal):
        return Failure(WavePrepFailure(claim.kind, claim.message))
    version = status.write(claim, current[1] if current else None)
    if version is None:
        return Failure(
            WavePrepFailure("running", f"another trigger of {cid}/{date_key} started first")
        )
    log.info(
        "wave prep started",
        extra={"campaignId": cid, "dateKey": date_key, "attempt": claim.attempts},
    )
    try:
        counts = _run(
            request,
            claim.attempts,
            bucket=bucket,
            store=store,
            campaigns=campaigns,
            markets=markets,
            fans=fans,
            codes=codes,
            ledger=ledger,
            package=package,
            selections=selections,
            turns=turns,
            clock=clock,
            deadline=deadline,
            reserve_batch=reserve_batch,
            on_progress=on_progress,
        )
    except _Failed as failed:
        if failed.kind in NOT_SPENT:
            return _write_refused(status, claim, version, clock, failed.kind, failed.message)
        return _write_failed(status, claim, version, clock, failed.kind, failed.message)
    except DependencyUnavailable as down:
        return _write_failed(status, claim, version, clock, "dependency_unavailable", str(down))
    except BrokenSource as broken:
        return _write_failed(status, claim, version, clock, "broken_source", str(broken))
    except Exception as bug:
        # A bug or broken infrastructure: say FAILED (so the admin and the next trigger see it)
        # and let it propagate with its traceback.
        _write_failed(status, claim, version, clock, "internal_error", repr(bug))
        raise
    finished = claim.finish(
        clock.now(),
        counts.package.uri,
        _wave_count(counts),
        fansRead=counts.fans_read,
        ineligible=counts.ineligible,
        duplicates=counts.duplicates,
    )
    if status.write(finished, version) is None:
        return Failure(
            WavePrepFailure(
                "superseded",
                f"the status of {cid}/{date_key} changed under this run (a stale-run takeover); "
                f"its zip at {counts.package.uri} is complete but this run did not finish it",
                claim.attempts,
            )
        )
    return Success(counts)


def allow_another_attempt(
    campaign_id: str,
    date_key: str,
    *,
    by: str,
    reason: str,
    status: WaveStatusStore,
    clock: Clock,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> Result[WaveStatus, WavePrepFailure]:
    """An operator's grant of one more attempt to a wave that used all of its own, written
    conditionally into its status (`attemptGrants`: who, when, why); refused, changing nothing,
    for a wave that has attempts left, is running, or never ran."""
    try:
        current = status.read(campaign_id, date_key)
    except ValueError as unreadable:
        return Failure(WavePrepFailure("status_unreadable", f"status: {unreadable}"))
    granted = grant_attempt(
        current[0] if current else None,
        campaign_id,
        date_key,
        by=by,
        reason=reason,
        now=clock.now(),
        stale_after=stale_after,
    )
    if isinstance(granted, Refusal):
        return Failure(WavePrepFailure(granted.kind, granted.message))
    if status.write(granted, current[1] if current else None) is None:
        return Failure(
            WavePrepFailure("running", f"the status of {campaign_id}/{date_key} changed: retry")
        )
    log.warning(
        "wave prep attempt granted",
        extra={"campaignId": campaign_id, "dateKey": date_key, "by": by, "reason": reason},
    )
    return Success(granted)


def _write_failed(
    status: WaveStatusStore,
    claim: WaveStatus,
    version: str,
    clock: Clock,
    kind: str,
    message: str,
) -> Result[WavePrepCounts, WavePrepFailure]:
    log.error("wave prep failed", extra={"kind": kind, "error": message})
    status.write(claim.fail(clock.now(), f"{kind}: {message}"), version)
    return Failure(WavePrepFailure(kind, message, claim.attempts))


def _write_refused(
    status: WaveStatusStore,
    claim: WaveStatus,
    version: str,
    clock: Clock,
    kind: str,
    message: str,
) -> Result[WavePrepCounts, WavePrepFailure]:
    """FAILED in the status (the admin sees why) with the claimed attempt given back."""
    log.error("wave prep input refused", extra={"kind": kind, "error": message})
    status.write(claim.refuse(clock.now(), f"{kind}: {message}"), version)
    return Failure(WavePrepFailure(kind, message))


def _wave_count(counts: WavePrepCounts) -> WaveCount:
    return WaveCount(
        "total",
        counts.eligible,
        counts.selected,
        counts.waitlisted,
        tuple(WaveCount(m.name, m.eligible, m.selected, m.waitlisted) for m in counts.markets),
    )


def _run(
    request: WavePrepRequest,
    attempt: int,
    *,
    bucket: str,
    store: BlobReader,
    campaigns: CampaignDirectory,
    markets: CampaignMarkets,
    fans: EligibleFans,
    codes: CodeInventory,
    ledger: ReservationLedger,
    package: WavePackage,
    selections: WaveSelections,
    turns: SelectionTurns,
    clock: Clock,
    deadline: datetime | None,
    reserve_batch: int,
    on_progress: Callable[[int], None] | None,
) -> WavePrepCounts:
    cid, date_key = request.campaign_id, request.date_key
    campaign = _unwrap_lookup(campaigns.get_campaign(cid), "campaign")
    wave_markets = _wave_markets(request, bucket, store, markets)
    tm_pool = _code_pool(store, code_file_ref(bucket, cid, date_key, "tmCodes"))
    external_pool = _code_pool(store, code_file_ref(bucket, cid, date_key, "nonTmCodes"))
    if request.random_selection and not campaign.band_salt:
        raise _Failed(
            "no_salt",
            f"randomSelection needs a salt for campaign {cid!r}: set its bandSalt or BAND_SECRET",
        )
    rules = SelectionRules(
        order_by_preference=request.order_by_preference,
        single_market=request.single_market,
        random_selection=request.random_selection,
        salt=campaign.band_salt,
        date_key=date_key,
    )
    query = request.query(tuple(m.market_id for m in wave_markets))
    stream = fans.eligible_fans(cid, query)
    try:
        # The source's slow start (an Athena query polls up to 10 minutes) before the lease: a
        # step that long between renewals would outlast the lease's term.
        first = list(_take(stream, 1))
        lease = _take_turn(turns, cid, clock, deadline)
        try:
            outcome, fans_read, ineligible = _select_and_record(
                request, wave_markets, chain(first, stream), rules, selections, lease, on_progress
            )
        finally:
            _release(lease, cid)
    finally:
        _close(stream)
    try:
        use = _CodeUse()
        by_id = {m.market_id: m for m in wave_markets}
        market_files = [
            files.MarketFiles.build(
                by_id[selected.market_id],
                selected.selected,
                _market_codes(
                    request,
                    by_id[selected.market_id],
                    len(selected.selected),
                    codes,
                    ledger,
                    tm_pool,
                    external_pool,
                    reserve_batch,
                    use,
                ),
                campaign.home_region,
            )
            for selected in outcome.markets
        ]
        target = package_ref(bucket, cid, date_key)
        owners = files.email_owners(market_files)
        sms_rows: dict[str, int] = {}
        email_rows: dict[str, int] = {}
        _publish(package, target, market_files, owners, sms_rows, email_rows)
    except BaseException:
        # The ledger entry (recorded under the lease, before any code) is withdrawn when the
        # zip is not published: those fans were given nothing.
        _withdraw(selections, cid, date_key)
        raise
    return WavePrepCounts(
        campaign_id=cid,
        date_key=date_key,
        attempt=attempt,
        package=target,
        fans_read=fans_read,
        eligible=outcome.eligible,
        selected=outcome.selected,
        waitlisted=outcome.waitlisted,
        duplicates=outcome.duplicates,
        ineligible=ineligible,
        markets=tuple(
            _market_counts(by_id[m.market_id], m, sms_rows, email_rows) for m in outcome.markets
        ),
        codes_reserved=use.reserved,
        codes_reused=use.reused,
    )


def _publish(
    package: WavePackage,
    target: ObjectRef,
    market_files: Sequence[files.MarketFiles],
    owners: set[tuple[str, str]],
    sms_rows: dict[str, int],
    email_rows: dict[str, int],
) -> None:
    with package.publish(target) as writer:
        for mf in market_files:
            market_id = mf.market.market_id
            sms_rows[market_id] = _add(writer, f"sms/{market_id}.csv", files.sms_lines(mf))
            email_rows[market_id] = _add(
                writer, f"email/{market_id}.csv", files.email_lines(mf, owners)
            )
            _add(writer, f"masterCodes/{market_id}.csv", files.master_lines(mf))


def _withdraw(selections: WaveSelections, campaign_id: str, date_key: str) -> None:
    """Best effort: a withdrawal that fails leaves the entry, which a retry of this date key
    rewrites; the publishing error is the one to report."""
    try:
        selections.withdraw(campaign_id, date_key)
    except Exception as error:
        log.warning(
            "wave selection not withdrawn",
            extra={"campaignId": campaign_id, "dateKey": date_key, "error": repr(error)},
        )


def _market_counts(
    market: WaveMarket,
    selected: MarketSelection,
    sms_rows: dict[str, int],
    email_rows: dict[str, int],
) -> MarketCounts:
    return MarketCounts(
        market_id=market.market_id,
        name=market.name,
        capacity=market.capacity,
        eligible=selected.eligible,
        selected=len(selected.selected),
        waitlisted=selected.waitlisted,
        sms=sms_rows[market.market_id],
        email=email_rows[market.market_id],
        code_type=str(market.code_type),
    )


def _add(writer: PackageWriter, name: str, lines: Iterator[bytes]) -> int:
    """Adds the file; returns its rows (not counting the header)."""
    rows = -1

    def counted() -> Iterator[bytes]:
        nonlocal rows
        for line in lines:
            rows += 1
            yield line

    writer.add(name, counted())
    return rows


def _unwrap_lookup(result: Result[_T, LookupFailure], what: str) -> _T:
    """The value, or stop the run with `{what}_{kind}` (e.g. campaign_unavailable)."""
    match result:
        case Success(value):
            return value  # type: ignore[no-any-return]
        case Failure(failure):
            kind = failure.kind if failure.kind in ("unavailable", "not_found") else "invalid"
            raise _Failed(f"{what}_{kind}", str(failure))
    raise TypeError(f"not a Result: {result!r}")


def _wave_markets(
    request: WavePrepRequest, bucket: str, store: BlobReader, markets: CampaignMarkets
) -> tuple[WaveMarket, ...]:
    ref = market_details_ref(bucket, request.campaign_id, request.date_key)
    text = _text(store, ref, "bad_markets")
    if text is None:
        raise _Failed("markets_missing", f"no market details at {ref.uri}")
    match parse_market_details(text, ref.uri):
        case Failure(message):
            raise _Failed("bad_markets", message)
        case Success(details):
            pass
    campaign_markets = _unwrap_lookup(markets.markets(request.campaign_id), "markets")
    match combine(details, campaign_markets, request.campaign_id):
        case Failure(message):
            raise _Failed("markets_mismatch", f"{ref.uri}: {message}")
        case Success(combined):
            return combined  # type: ignore[no-any-return]
    raise AssertionError("unreachable")


def _text(store: BlobReader, ref: ObjectRef, bad: str) -> str | None:
    """An uploaded file's text, or None when there is none; not UTF-8 fails as `bad`."""
    try:
        raw = store.read_bytes(ref)
    except ObjectNotFound:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Failed(bad, f"{ref.uri}: not UTF-8 (byte {exc.start})") from None


def _code_pool(store: BlobReader, ref: ObjectRef) -> Iterator[str] | None:
    """The uploaded codes as one pool handed out in file order, or None without a file."""
    text = _text(store, ref, "bad_codes")
    if text is None:
        return None
    match parse_code_file(text, ref.uri):
        case Failure(message):
            raise _Failed("bad_codes", message)
        case Success(parsed):
            return iter(parsed)  # type: ignore[no-any-return]
    raise AssertionError("unreachable")


def _take_turn(
    turns: SelectionTurns, campaign_id: str, clock: Clock, deadline: datetime | None
) -> Lease:
    match turns.take(campaign_id, clock, deadline):
        case Success(lease):
            return lease  # type: ignore[no-any-return]
        case Failure(held):
            log.warning(
                "wave prep refused: another wave of the campaign is selecting",
                extra={"campaignId": campaign_id, "holder": held.holder},
            )
            raise _Failed("campaign_busy", busy_message(campaign_id, held))
    raise TypeError("not a Result")


def _release(lease: Lease, campaign_id: str) -> None:
    """So the campaign's next wave may select at once. Best effort: a release that fails leaves
    the lease to expire after its term, which must not fail a wave that selected and recorded."""
    try:
        lease.release()
    except Exception as error:
        log.warning(
            "wave selection lease not released",
            extra={"campaignId": campaign_id, "error": repr(error)},
        )


def _take(items: Iterator[_T], n: int) -> Iterator[_T]:
    return (item for _, item in zip(range(n), items, strict=False))


def _close(stream: Iterable[object]) -> None:
    """Ends a generator source early (an Athena read stops its query and removes its results)."""
    close = getattr(stream, "close", None)
    if callable(close):
        close()


def _select_and_record(
    request: WavePrepRequest,
    wave_markets: Sequence[WaveMarket],
    items: Iterable[Result[EligibleFan, str]],
    rules: SelectionRules,
    selections: WaveSelections,
    lease: Lease,
    on_progress: Callable[[int], None] | None,
) -> tuple[SelectionOutcome, int, dict[str, int]]:
    """Under the campaign's lease: the other waves' selections read, this wave's made and
    recorded, so a wave of the campaign that follows sees it (and one before it is seen)."""
    cid, date_key = request.campaign_id, request.date_key
    # Fans the campaign's other waves selected are coded (or about to be) even before their
    # codeAssignment records reach the lake: without this two waves chose the same top fans.
    coded = frozenset() if request.reassign else selections.selected_elsewhere(cid, date_key)
    outcome, fans_read, ineligible = _select(
        request, wave_markets, items, rules, coded, lease, on_progress
    )
    # Half a term ahead before the write: a wave that took this lease over (this one stalled
    # past its term) read the ledger without this selection, so recording it now would let
    # both waves give a fan a code.
    if not lease.keep():
        raise _Failed("campaign_busy", _taken_over(cid))
    # Recorded before any code is reserved or the zip can appear, so no published fan is ever
    # missing from the ledger.
    selections.record(
        cid, date_key, [p.fan.global_user_id for m in outcome.markets for p in m.selected]
    )
    return outcome, fans_read, ineligible


def _taken_over(campaign_id: str) -> str:
    return (
        f"another wave of campaign {campaign_id} took over the fan selection (this run stalled "
        "past its lease); nothing was recorded or reserved and no attempt was spent: trigger "
        "this wave again"
    )


def _select(
    request: WavePrepRequest,
    wave_markets: Sequence[WaveMarket],
    items: Iterable[Result[EligibleFan, str]],
    rules: SelectionRules,
    coded: frozenset[str],
    lease: Lease,
    on_progress: Callable[[int], None] | None,
) -> tuple[SelectionOutcome, int, dict[str, int]]:
    query = request.query(tuple(m.market_id for m in wave_markets))
    selection = Selection({m.market_id: m.capacity for m in wave_markets}, rules)
    ineligible: Counter[str] = Counter()
    bad_reasons: Counter[str] = Counter()
    read = 0
    for item in items:
        # Renewed at every fan (a clock read unless half the term is gone): the longest step
        # between renewals is one page of the source, well within half the term.
        if not lease.keep():
            raise _Failed("campaign_busy", _taken_over(request.campaign_id))
        read += 1
        if on_progress is not None and read % PROGRESS_EVERY == 0:
            on_progress(read)
        match item:
            case Success(fan):
                reason = ineligibility(fan, query)
                if reason is None and fan.global_user_id in coded:  # empty on reassign
                    reason = Ineligible.ALREADY_CODED  # by another wave of the campaign
                if reason is not None:
                    ineligible[reason] += 1
                elif selection.offer(fan) is Offer.NO_WAVE_MARKET:
                    ineligible[Ineligible.NO_WAVE_MARKET] += 1
            case Failure(why):
                ineligible[Ineligible.BAD_RECORD] += 1
                if len(bad_reasons) < _MAX_REASONS or why in bad_reasons:
                    bad_reasons[why] += 1
    if on_progress is not None:
        on_progress(read)
    if bad_reasons:
        # A reason quotes the record's id, which may be an email: values, never keys, so the
        # log's masking sees them (a masker that skips keys once logged an address).
        reasons = [{"reason": why, "records": n} for why, n in bad_reasons.most_common()]
        log.warning("fan records that do not parse", extra={"reasons": reasons})
    return selection.outcome(), read, {str(k): v for k, v in sorted(ineligible.items())}


def _market_codes(
    request: WavePrepRequest,
    market: WaveMarket,
    need: int,
    inventory: CodeInventory,
    ledger: ReservationLedger,
    tm_pool: Iterator[str] | None,
    external_pool: Iterator[str] | None,
    reserve_batch: int,
    use: _CodeUse,
) -> list[str]:
    """`need` codes for the market's fans, best-placed fan first."""
    if need == 0:
        return []
    if market.code_type is CodeType.TM:
        if tm_pool is None:
            return [TM_PLACEHOLDER_CODE] * need
        return _from_pool(tm_pool, need, market, "tmCodes", use)
    if external_pool is not None:
        return _from_pool(external_pool, need, market, "nonTmCodes", use)
    got: list[str] = []
    batch = 0
    while len(got) < need:
        key = reservation_key(request.campaign_id, request.date_key, market.market_id, batch)
        reservation = ledger.recorded(key)
        if reservation is not None:
            use.reused += len(reservation.codes)
        else:
            asked = min(reserve_batch, need - len(got))
            reservation = _reserve(inventory, ledger, request.campaign_id, asked, key)
            use.reserved += len(reservation.codes)
            if len(reservation.codes) < asked:
                raise _Failed(
                    "not_enough_codes",
                    f"market {market.market_id!r}: the code inventory had {len(reservation.codes)}"
                    f" of the {asked} external codes asked for (kept under {key})",
                )
        got.extend(_distinct(reservation.codes, market, use))
        batch += 1
    # Codes beyond `need` (an earlier attempt selected more) stay reserved and expire unused.
    return got[:need]


def _reserve(
    inventory: CodeInventory, ledger: ReservationLedger, campaign_id: str, count: int, key: str
) -> Reservation:
    match inventory.reserve(campaign_id, count, CodeType.EXTERNAL, key):
        case Success(reservation):
            # Recorded before any code is used: a retry finds it here and reserves nothing.
            return ledger.record(reservation)
        case Failure(failure):
            kind = {
                FailureKind.UNAVAILABLE: "codes_unavailable",
                FailureKind.MISSING: "codes_missing",
            }.get(failure.kind, "codes_refused")
            raise _Failed(kind, f"reserving {count} codes under {key}: {failure}")
    raise AssertionError("unreachable")


def _from_pool(
    pool: Iterator[str], need: int, market: WaveMarket, kind: str, use: _CodeUse
) -> list[str]:
    got = [code for _, code in zip(range(need), pool, strict=False)]
    if len(got) < need:
        raise _Failed(
            "not_enough_codes",
            f"market {market.market_id!r} needs {need} codes; the uploaded {kind} file ran out",
        )
    return _distinct(got, market, use)


def _distinct(codes: Sequence[str], market: WaveMarket, use: _CodeUse) -> list[str]:
    for code in codes:
        if code in use.seen:
            raise _Failed(
                "duplicate_code",
                f"market {market.market_id!r}: a code was handed out twice by the source of codes",
            )
        use.seen.add(code)
    return list(codes)
