"""Workflow 1 after the scored file: the rest of a campaign on the embedded emulator, each worker
through its real Lambda handler (or, for the Kinesis consumers, the local shard poller), with the
AWS event shapes AWS would send, then one reconciliation that follows every fan to where it
stopped.

ranks -> wave prep -> the wave file -> wave codes -> assign -> scheduler -> codes to stream ->
lake + transform -> save selection -> send -> merge -> archive -> stats.

Order: the wave's codes are generated after wave prep (the brief lists them first): wave prep
selects the fans, and TM codes, one per selected fan, are what generate_sms_wave_codes issues
into the wave file the selection produced. Codes come from the DynamoDB code generator (no
Pacman); texts go to the emulator's SNS (SMS_GATEWAY=sns) and are read back from it, emails to
SQS and are read back from the queue. No sibling service is needed: campaigns, users, entries
and codes are the S3/DynamoDB adapters (the defaults without service URLs).
"""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from adapters.avro import iter_container
from adapters.aws.dynamo_ledger import create_ledger_table
from adapters.aws.dynamo_table import create_codes_table
from domain.models import ObjectRef
from domain.sms import COLUMNS
from domain.streaming import BatchCounts
from entrypoints import bootstrap, lambda_handlers, registry
from entrypoints.events import s3_put_event
from entrypoints.settings import Settings
from streams.poller import FileCheckpoints, ShardPoller

MARKETS = 50  # the demo's scored file spreads fans over market ids 1-50
WAVE_SUFFIX = "wave1"
SMS_TEXT = "Demo Presale 2026: your access code is in your inbox. Reply STOP to opt out."

CAMPAIGN_ENV = {
    "SAVE_SELECTION_STREAM": "demo-save-selection-stream",
    "FANLIST_RANKS_STREAM": "demo-fanlist-ranks-stream",
    "CODES_TABLE": "demo-codes",
    "LEDGER_TABLE": "demo-once",
    "DEMAND_TABLE": "demo-demand",
    "USERS_TABLE": "demo-users",
    "VERDICT_QUEUE": "demo-verdicts",
    "MOVE_QUEUE": "demo-move-merged",
    "SMS_WAVE_EMAIL_QUEUE": "demo-wave-emails",
    "SMS_GATEWAY": "sns",
    "SMS_PARTS_PER_SECOND": "0",  # the emulator is no carrier: no rate to keep
    # Calls in flight: beyond botocore's pool of 10 connections urllib3 warns on every call.
    "SMS_MAX_IN_FLIGHT": "10",
    "WAVE_FAN_SOURCE": "lake",
}


@dataclass
class Stage:
    """One stage's counts: `received` = `out` + `rejected` where `balances` (rejected by reason)."""

    title: str
    worker: str
    received: int = 0
    out: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    facts: list[tuple[str, str]] = field(default_factory=list)
    balances: bool = True
    problem: str | None = None

    @property
    def consistent(self) -> bool:
        if self.problem:
            return False
        if not self.balances:
            return True
        return self.received == self.out + self.rejected == self.out + sum(self.reasons.values())


@dataclass
class Reconciliation:
    """Every fan of the scored file, by where it stopped."""

    fans: int
    where: Counter[str] = field(default_factory=Counter)
    checks: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def unaccounted(self) -> int:
        return self.fans - sum(self.where.values())


@dataclass
class CampaignRun:
    stages: list[Stage] = field(default_factory=list)
    reconciliation: Reconciliation | None = None
    left_out: list[str] = field(default_factory=list)
    stats: dict[str, Any] | None = None  # the campaign's stats object, as save_stats wrote it

    @property
    def ok(self) -> bool:
        r = self.reconciliation
        return (
            r is not None
            and r.unaccounted == 0
            and all(ok for _, ok in r.checks)
            and all(s.consistent for s in self.stages)
        )


def campaign_config(campaign_id: str) -> dict[str, Any]:
    """The campaign directory's object (S3CampaignDirectory): markets for wave prep, the ranks'
    scoring type, open with a stats channel for save_stats and slack_stats."""
    return {
        "id": campaign_id,
        "name": "Demo Presale 2026",
        "status": "open",
        "scoring": "xnum",
        "options": {"allowIntlPhones": False},
        "homeRegion": "US",
        "markets": [{"id": str(m), "name": f"Market {m}"} for m in range(1, MARKETS + 1)],
        "slack": {"channels": {"stats": "#demo-presale-stats"}},
    }


def prepare(settings: Settings) -> None:
    """What the deployment would have created: streams, tables and queues of the campaign."""
    c = bootstrap.container(settings)
    kinesis, dynamodb, sqs = (c.aws.client(n) for n in ("kinesis", "dynamodb", "sqs"))
    for stream in (settings.save_selection_stream, settings.fanlist_ranks_stream):
        kinesis.create_stream(StreamName=stream, ShardCount=1)
    for stream in (settings.save_selection_stream, settings.fanlist_ranks_stream):
        kinesis.get_waiter("stream_exists").wait(StreamName=stream)
    create_codes_table(dynamodb, settings.codes_table)
    create_ledger_table(dynamodb, settings.ledger_table)
    dynamodb.create_table(
        TableName=settings.demand_table,
        KeySchema=[
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName=settings.users_table,
        KeySchema=[{"AttributeName": "globalUserId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "globalUserId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for queue in (settings.verdict_queue, settings.move_queue, settings.sms_wave_email_queue):
        sqs.create_queue(QueueName=queue)


# --- helpers --------------------------------------------------------------------------------


@contextmanager
def timed(stage: Stage) -> Iterator[Stage]:
    began = time.perf_counter()
    try:
        yield stage
    finally:
        stage.seconds = time.perf_counter() - began


def lake_records(settings: Settings, kind: str) -> list[dict[str, Any]]:
    c = bootstrap.container(settings)
    found: list[dict[str, Any]] = []
    for info in c.store.list_objects(settings.campaign_data_bucket, f"avro/{kind}/"):
        found.extend(iter_container(io.BytesIO(c.store.read_bytes(info.ref))))
    return found


def scored_stage(count: Mapping[str, Any], seconds: float) -> Stage:
    stage = Stage("scored file", "process_scored_files", seconds=seconds)
    stage.received, stage.out, stage.rejected = count["in"], count["out"], count["rejected"]
    stage.reasons.update(count.get("rejectedByReason", {}))
    stage.facts.append(("tagged (streamed with tags)", f"{count.get('tagged', 0):,}"))
    return stage


def poll(settings: Settings, worker: str, stream: str, checkpoints: Path) -> Stage:
    """A stream worker over its stream with the local shard poller, until caught up."""
    c = bootstrap.container(settings)
    stage = Stage(worker.replace("_", " "), worker)
    with timed(stage):
        poller = ShardPoller(
            c.aws.client("kinesis"),
            stream,
            registry.stream_worker(worker, settings),
            FileCheckpoints(checkpoints),
            limit=5_000,
        )
        counts = poller.run(until_caught_up=True).counts
    return stage_of(stage, counts)


def stage_of(stage: Stage, counts: BatchCounts) -> Stage:
    """A stream worker's stage from its poller's counts."""
    stage.received, stage.out = counts.received, counts.handled
    stage.rejected = counts.filtered + counts.dead_lettered
    # The workers' details name drops `filtered:...` / `dead:...`; anything else is what they did.
    drops = {k: v for k, v in counts.detail.items() if k.startswith(("filtered:", "dead:"))}
    if sum(drops.values()) == stage.rejected:
        stage.reasons.update(drops)
    else:
        stage.reasons.update({"filtered": counts.filtered, "dead-lettered": counts.dead_lettered})
    stage.reasons = +stage.reasons
    stage.facts.append(("detail", ", ".join(f"{k} {v:,}" for k, v in counts.detail.items())))
    return stage


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def wave_csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def sqs_event(bodies: list[str]) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"m{i}", "body": body, "eventSource": "aws:sqs"}
            for i, body in enumerate(bodies)
        ]
    }


def drain(sqs: Any, queue: str) -> list[str]:
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    bodies: list[str] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        bodies.extend(m["Body"] for m in batch)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )
    return bodies


def sns_texts() -> list[tuple[str, str]]:
    """Every text the in-process emulator's SNS accepted: (number, message)."""
    from moto.sns.models import sns_backends

    return [
        (str(text[0]), str(text[1]))
        for backend in sns_backends.values()
        for regional in backend.values()
        for text in regional.sms_messages.values()
    ]


def scan(dynamodb: Any, table: str) -> Iterator[dict[str, Any]]:
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        yield from page["Items"]


def job(name: str) -> Callable[[Any, Any], Any]:
    handler: Callable[[Any, Any], Any] = getattr(lambda_handlers, f"{name}_handler")
    return handler


# --- the stages ------------------------------------------------------------------------------


def run_campaign(
    settings: Settings,
    *,
    campaign_id: str,
    scored: Mapping[str, Any],
    scratch: Path,
    console: Console,
    step: Callable[[Console, str], Any],
    wave_size: int,
    before: list[Stage],
) -> CampaignRun:
    """Every stage after the scored file and the lake (`before`, their stages; `scored`,
    process_scored_files' count); about `wave_size` fans get a place in the wave."""
    run = CampaignRun(stages=list(before))
    c = bootstrap.container(settings)
    dynamodb, sqs = c.aws.client("dynamodb"), c.aws.client("sqs")
    bucket = settings.scoring_bucket

    def put(key: str, body: bytes) -> None:
        c.store.put_bytes(ObjectRef(bucket, key), body)

    scoring = {
        str(r["globalUserId"]): r
        for r in lake_records(settings, "scoring")
        if r.get("campaignId") == campaign_id
    }
    # The user service's table: each accepted fan's userId (transform_code_assignments reads it).
    with dynamodb_batch(dynamodb, settings.users_table) as write:
        for gid, record in scoring.items():
            write({"globalUserId": {"S": gid}, "userId": {"S": str(record.get("memberId") or gid)}})

    # 1. ranks: a fanlist of the accepted fans, best first, and two rows a spreadsheet broke.
    ranks = Stage("fanlist ranks -> scores", "translate_ranks_to_scores")
    with step(console, "ranks: a fanlist upload through translate_ranks_to_scores"), timed(ranks):
        ordered = sorted(scoring, key=lambda g: -float(scoring[g].get("score") or 0))
        lines = ["globalUserId,rank", *(f"{g},{n}" for n, g in enumerate(ordered, 1))]
        lines += ["gBROKEN1,first", "gBROKEN2,"]
        key = f"fanlist/uploaded/{campaign_id}/fanlist.csv"
        put(key, ("\r\n".join(lines) + "\r\n").encode())
        answer = job("translate_ranks_to_scores")(s3_put_event(ObjectRef(bucket, key)), None)
        manifest = orjson.loads(
            c.store.read_bytes(ObjectRef(bucket, f"fanlist/uploaded/{campaign_id}/manifest.json"))
        )
        count = manifest["count"]
        ranks.received, ranks.out = count["rows"], count["streamed"]
        ranks.rejected = count["bad"] + count["rejected"]
        ranks.reasons.update(manifest.get("badByReason", {}))
        if count["rejected"]:
            ranks.reasons["stream_rejected"] += count["rejected"]
        ranks.facts.append(("scoring, max rank", f"{manifest['scoring']}, {manifest['maxRank']:,}"))
        ranks.facts.append(("handler answered", json.dumps(answer)[:120]))
    run.stages.append(ranks)

    # 2. wave prep: fans per market within capacity, from the lake.
    date_key = datetime.now(UTC).date().isoformat()
    capacity = max(1, wave_size // MARKETS)
    prep = Stage("wave prep (selection)", "process_sms_wave_files")
    with step(console, "wave prep: process_sms_wave_files over the lake"), timed(prep):
        when = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        markets = ["marketId,name,capacity,selectionTime,codeType"] + [
            f"{m},Market {m},{capacity},{when},TM" for m in range(1, MARKETS + 1)
        ]
        put(f"wavePrep/{campaign_id}/data/{date_key}.csv", ("\n".join(markets) + "\n").encode())
        answer = job("process_sms_wave_files")(
            {"data": {"campaignId": campaign_id, "dateKey": date_key}}, None
        )
        if not answer.get("success"):
            prep.problem = f"wave prep failed: {answer.get('error')}"
        else:
            got = answer["count"]
            prep.received, prep.out = got["read"], got["selected"]
            prep.reasons["waitlisted"] = got["waitlisted"]
            prep.reasons["duplicates"] = got["duplicates"]
            prep.reasons.update({f"ineligible:{k}": v for k, v in got["ineligible"].items()})
            prep.reasons = +prep.reasons
            prep.rejected = sum(prep.reasons.values())
            prep.facts.append(("markets x capacity", f"{MARKETS} x {capacity:,}"))
            prep.facts.append(("package", answer["path"]))
    run.stages.append(prep)
    if prep.problem:
        return _stop(run, "wave prep failed")

    # 3. the wave file: what the upload service makes of the package (masterCodes, every
    # selected fan); TM's placeholder left empty for generate_sms_wave_codes to fill.
    wave = f"{campaign_id}_{WAVE_SUFFIX}"
    wave_file = Stage("wave file from the package", "(upload service, in the demo)")
    with timed(wave_file):
        package = c.store.read_bytes(ObjectRef(bucket, answer["key"]))
        selected: dict[str, dict[str, str]] = {}
        with zipfile.ZipFile(io.BytesIO(package)) as archive:
            for name in sorted(archive.namelist()):
                if name.startswith("masterCodes/"):
                    for row in csv_rows(archive.read(name)):
                        selected[row["globalUserId"]] = row
        rows = [
            {
                "code": "" if row["code"] in ("", "TM") else row["code"],
                "doNotText": "false",
                "email": row.get("email", ""),
                "firstName": str(scoring.get(gid, {}).get("firstName") or ""),
                "lastName": str(scoring.get(gid, {}).get("lastName") or ""),
                "link": "",
                "locale": str(scoring.get(gid, {}).get("locale") or ""),
                "marketId": row["marketId"],
                "globalUserId": gid,
                "mobileNumber": row.get("mobileNumber", ""),
                "smsText": SMS_TEXT,
            }
            for gid, row in selected.items()
        ]
        put(f"smsWaves/csv/{wave}.csv", wave_csv(rows))
        wave_file.received, wave_file.out = len(selected), len(rows)
        wave_file.facts.append(("wave CSV", f"s3://{bucket}/smsWaves/csv/{wave}.csv"))
    run.stages.append(wave_file)

    # 4. a code per fan, from the DynamoDB code generator (no Pacman).
    notify = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = {
        "campaignId": campaign_id,
        "generateOfferCode": True,
        "notifyDate": notify,
        "productId": "demo-presale-product",
        "source": "vf",
    }
    codes = Stage("wave codes", "generate_sms_wave_codes")
    with step(console, "wave codes: generate_sms_wave_codes (DynamoDB generator)"), timed(codes):
        answer = job("generate_sms_wave_codes")({"waveFilePrefix": wave, "config": config}, None)
        codes.received = int(answer.get("in", answer.get("rowsIn", 0)) or 0)
        _fill(codes, answer, out=("out", "rowsOut"), rejected=("errors",), by=("errorsByReason",))
    run.stages.append(codes)

    # 5. the codes assigned to the campaign in the inventory.
    assign = Stage("assign codes to the campaign", "process_scheduled_wave")
    with step(console, "assign: process_scheduled_wave"), timed(assign):
        answer = job("process_scheduled_wave")({"key": f"smsWaves/csv/{wave}.csv"}, None)
        assign.received = int(answer.get("in", 0))
        assign.out = int(answer.get("valid", 0))
        dropped = answer.get("dropped", {})
        if isinstance(dropped, Mapping):
            assign.reasons.update({f"dropped:{k}": int(v) for k, v in dropped.items()})
        elif dropped:
            assign.reasons["dropped"] = int(dropped)
        assign.reasons = +assign.reasons
        assign.rejected = sum(assign.reasons.values())
        assign.facts.append(("newly assigned", f"{answer.get('updated', 0):,}"))
        assign.facts.append(("conflicts", f"{answer.get('conflicts', 0)}"))
    run.stages.append(assign)

    # 6. the scheduler: the wave's notifyDate has come, so it is triggered.
    scheduler = Stage("scheduler", "sms_wave_scheduler")
    with step(console, "scheduler: sms_wave_scheduler with a scheduled event"), timed(scheduler):
        put(f"smsWaves/scheduled/{wave}_csv.json", orjson.dumps({**config, "channels": "both"}))
        answer = job("sms_wave_scheduler")(
            {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}, None
        )
        triggered = {*answer.get("triggered", []), *(w["wave"] for w in answer["notStarted"])}
        scheduler.received, scheduler.out = 1, int(wave in triggered)
        if wave not in triggered:
            scheduler.problem = f"the wave was not triggered: {json.dumps(answer)[:200]}"
        scheduler.facts.append(("not started (no state machine here)", str(answer["notStarted"])))
    run.stages.append(scheduler)

    # 7. the triggered config's S3 event: the codes onto the input stream.
    streamed = Stage("codes to the input stream", "load_code_assignments_to_stream")
    with step(console, "codes to stream: load_code_assignments_to_stream"), timed(streamed):
        ref = ObjectRef(bucket, f"smsWaves/triggered/{wave}_csv.json")
        answer = job("load_code_assignments_to_stream")(s3_put_event(ref), None)
        done = answer["waves"][0] if answer.get("waves") else answer
        count = done.get("count", {})
        streamed.received, streamed.out = int(count.get("rows", 0)), int(count.get("streamed", 0))
        skipped = done.get("skipped", {})
        _reasons(streamed, skipped.get("withoutCode", 0), "without a code")
        _reasons(streamed, skipped.get("placeholder", 0), "TM placeholder")
        _reasons(streamed, done.get("rejected", 0), "rejected by the stream")
        _reasons(streamed, done.get("stranded", 0), "stranded")
        streamed.rejected = sum(streamed.reasons.values())
    run.stages.append(streamed)

    # 8. the stream's consumers: the lake archives the assignments, transform enriches them.
    with step(console, "stream: save_campaign_data, transform_code_assignments, save_selection"):
        lake_again = poll(
            settings, "save_campaign_data", settings.input_stream, scratch / "checkpoints.json"
        )
        lake_again.title = "lake (code assignments)"
        transform = poll(
            settings,
            "transform_code_assignments",
            settings.input_stream,
            scratch / "transform.json",
        )
        save = poll(
            settings, "save_selection", settings.save_selection_stream, scratch / "save.json"
        )
    run.stages += [lake_again, transform, save]

    # 9. the send: texts to SNS, emails to SQS, each fan once.
    texts_before = len(sns_texts())
    send = Stage("send (texts and emails)", "sms_wave_send")
    with step(console, "send: sms_wave_send (SNS texts, SQS emails)"), timed(send):
        answer = job("sms_wave_send")({"waveName": wave}, None)
        count = answer.get("count", {})
        send.received, send.out = int(count.get("total", 0)), int(count.get("ok", 0))
        send.rejected = send.received - send.out
        detail = count.get("detail", {})
        for channel in ("sms", "email"):
            send.facts.append(
                (channel, ", ".join(f"{k} {v:,}" for k, v in detail.get(channel, {}).items()))
            )
        texts = sns_texts()[texts_before:]
        emails = drain(sqs, settings.sms_wave_email_queue)
        send.facts.append(("texts read back from SNS", f"{len(texts):,}"))
        send.facts.append(("emails read back from SQS", f"{len(emails):,}"))
    run.stages.append(send)

    # 10. the lake's day merged, then its sources archived by the move queue's messages.
    day = datetime.now(UTC).strftime("%Y/%m/%d")
    merge = Stage("merge the lake's day", "merge_avro_files")
    with step(console, f"merge: merge_avro_files for {day}"), timed(merge):
        answer = job("merge_avro_files")({"prefix": day}, None)
        merge.received = int(answer.get("records", 0))
        merge.out = merge.received - int(answer.get("duplicates", 0))
        _reasons(merge, answer.get("duplicates", 0), "duplicate")
        merge.rejected = sum(merge.reasons.values())
        merge.facts.append(("files merged", f"{answer.get('files', 0):,}"))
        merge.facts.append(("types", ", ".join(sorted(answer.get("types", {})))))
    run.stages.append(merge)

    moved = Stage("archive the merged sources", "move_merged_avro_files", balances=False)
    with step(console, "archive: move_merged_avro_files on its SQS messages"), timed(moved):
        bodies = drain(sqs, settings.move_queue)
        answer = job("move_merged_avro_files")(sqs_event(bodies), None)
        failures = answer.get("batchItemFailures", [])
        archived = list(c.store.list_objects(settings.campaign_data_bucket, "avro/archived/"))
        moved.received, moved.out = len(bodies), len(bodies) - len(failures)
        moved.rejected = len(failures)
        if failures:
            moved.reasons["move failed"] = len(failures)
        moved.facts.append(("source files archived", f"{len(archived):,}"))
        moved.balances = True
    run.stages.append(moved)

    # 11. the stats, as the admin and Slack see them.
    stats = Stage("stats", "save_stats + slack_stats", balances=False)
    with step(console, "stats: save_stats then slack_stats"), timed(stats):
        saved = job("save_stats")({"source": "aws.events", "detail": {}}, None)
        posted = job("slack_stats")({"source": "aws.events", "detail": {}}, None)
        stats.received, stats.out = int(saved.get("records", 0)), len(saved.get("written", []))
        stats.facts.append(("stats objects", ", ".join(saved.get("written", []))))
        stats.facts.append(("posted to Slack", ", ".join(posted.get("posted", [])) or "none"))
        doc = orjson.loads(
            c.store.read_bytes(ObjectRef(bucket, f"{settings.stats_prefix}{campaign_id}.json"))
        )
        for name, value in doc.items():
            if isinstance(value, int | float | str) and name not in ("id", "name"):
                stats.facts.append((name, str(value)))
        run.stats = doc if isinstance(doc, dict) else None
    run.stages.append(stats)

    run.reconciliation = _reconcile(
        settings,
        campaign_id=campaign_id,
        wave=wave,
        scored=scored,
        scoring=set(scoring),
        selected=set(selected),
        prep=prep,
        texts=len(texts),
        emails=len(emails),
        send=send,
    )
    return run


def _fill(
    stage: Stage,
    answer: Mapping[str, Any],
    *,
    out: tuple[str, ...],
    rejected: tuple[str, ...],
    by: tuple[str, ...],
) -> None:
    counted = answer.get("count", answer)
    stage.received = int(counted.get("in", stage.received) or stage.received)
    stage.out = next((int(counted[k]) for k in out if k in counted), 0)
    for k in by:
        if isinstance(counted.get(k), Mapping):
            stage.reasons.update({r: int(n) for r, n in counted[k].items()})
    total = next((int(counted[k]) for k in rejected if k in counted), 0)
    if total and not stage.reasons:
        stage.reasons["error"] = total
    stage.rejected = total
    stage.facts.append(("answer", json.dumps(answer)[:160]))


def _reasons(stage: Stage, value: Any, reason: str) -> None:
    if isinstance(value, list):
        value = len(value)
    if int(value or 0):
        stage.reasons[reason] += int(value)


def _stop(run: CampaignRun, why: str) -> CampaignRun:
    run.left_out.append(why)
    return run


@contextmanager
def dynamodb_batch(dynamodb: Any, table: str) -> Iterator[Callable[[dict[str, Any]], None]]:
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        request = {table: [{"PutRequest": {"Item": item}} for item in pending]}
        while request:
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
        pending.clear()

    def write(item: dict[str, Any]) -> None:
        pending.append(item)
        if len(pending) == 25:
            flush()

    yield write
    if pending:
        flush()


def _reconcile(
    settings: Settings,
    *,
    campaign_id: str,
    wave: str,
    scored: Mapping[str, Any],
    scoring: set[str],
    selected: set[str],
    prep: Stage,
    texts: int,
    emails: int,
    send: Stage,
) -> Reconciliation:
    """Each fan of the file where it stopped: rejected at scoring (by reason, counted by the
    worker: a rejected row never reaches anything that names it), not selected, or selected and
    then texted / emailed / unknown / not reached (from the once-ledger's entry per fan)."""
    c = bootstrap.container(settings)
    dynamodb = c.aws.client("dynamodb")
    rec = Reconciliation(fans=int(scored["in"]))
    for reason, n in scored.get("rejectedByReason", {}).items():
        rec.where[f"rejected at scoring: {reason}"] += int(n)
    rec.where["accepted, not selected: waitlisted"] = prep.reasons.get("waitlisted", 0)
    for reason, n in prep.reasons.items():
        if reason != "waitlisted":
            rec.where[f"accepted, not selected: {reason}"] = n
    coded = {
        row["globalUserId"]: row["code"]
        for row in csv_rows(
            c.store.read_bytes(ObjectRef(settings.scoring_bucket, f"smsWaves/csv/{wave}.csv"))
        )
        if row["code"]
    }
    sms: dict[str, str] = {}
    email: dict[str, str] = {}
    for item in scan(dynamodb, settings.ledger_table):
        key, state = item["pk"]["S"], item["state"]["S"]
        channel, _, rest = key.partition("#")
        named_wave, _, gid = rest.rpartition("#")
        if named_wave == wave:
            (sms if channel == "sms" else email)[gid] = state
    entries = {
        item["PK"]["S"].removeprefix("fan:")
        for item in scan(dynamodb, settings.demand_table)
        if item["SK"]["S"] == f"campaign:{campaign_id}" and item.get("codes")
    }
    fates: Counter[str] = Counter()
    for gid in selected:
        if gid not in coded:
            fates["selected, no code"] += 1
        elif sms.get(gid) == "done":
            fates["selected, coded, texted"] += 1
        elif email.get(gid) == "done":
            fates["selected, coded, emailed (no text)"] += 1
        elif "unknown" in (sms.get(gid), email.get(gid)):
            fates["selected, coded, fate unknown"] += 1
        else:
            fates["selected, coded, not reached (no valid phone or email)"] += 1
    rec.where.update(fates)
    rec.where = +rec.where
    send.reasons = Counter(
        {k.removeprefix("selected, coded, "): v for k, v in fates.items() if "texted" not in k}
    )
    send.reasons -= Counter({"emailed (no text)": fates["selected, coded, emailed (no text)"]})
    send.rejected = sum(send.reasons.values())
    accepted = int(scored["out"])
    rec.checks = [
        ("every accepted fan is in the lake once", len(scoring) == accepted),
        ("wave prep read every accepted fan", prep.received == accepted),
        ("every selected fan has a code", len(coded) == len(selected)),
        ("every code is on its fan's entry (save_selection)", set(coded) <= entries),
        (
            "texts read back from SNS = texts the ledger says were sent",
            texts == sum(1 for s in sms.values() if s == "done"),
        ),
        (
            "emails read back from SQS = emails the ledger says were sent",
            emails == sum(1 for s in email.values() if s == "done"),
        ),
    ]
    return rec


def print_run(console: Console, run: CampaignRun) -> None:
    for stage in run.stages:
        table = Table(title=f"{stage.title} [{stage.worker}]", show_header=False, min_width=60)
        table.add_row("in", f"{stage.received:,}")
        table.add_row("out", f"{stage.out:,}")
        reasons = ", ".join(f"{k} {v:,}" for k, v in stage.reasons.most_common())
        table.add_row("rejected", f"{stage.rejected:,}" + (f" ({reasons})" if reasons else ""))
        for name, value in stage.facts:
            table.add_row(name, value)
        table.add_row("time", f"{stage.seconds:.1f} s")
        if stage.problem:
            table.add_row("[red]problem", stage.problem)
        elif not stage.consistent:
            table.add_row("[red]inconsistent", "in != out + rejected")
        console.print(table)
    for why in run.left_out:
        console.print(f"[yellow]left out:[/] {why}")
    rec = run.reconciliation
    if rec is None:
        console.print("[red]no reconciliation: the campaign stopped early")
        return
    table = Table(title="Reconciliation: every fan of the scored file, where it stopped")
    table.add_column("where", no_wrap=False)
    table.add_column("fans", justify="right")
    for where, n in sorted(rec.where.items()):
        table.add_row(where, f"{n:,}")
    table.add_row("[bold]accounted for", f"[bold]{sum(rec.where.values()):,} of {rec.fans:,}")
    colour = "green" if rec.unaccounted == 0 else "red"
    table.add_row(f"[{colour}]unaccounted", f"[{colour}]{rec.unaccounted:,}")
    console.print(table)
    for check, ok in rec.checks:
        console.print(f"{'[green]ok' if ok else '[red]FAILED'}[/] {check}")
