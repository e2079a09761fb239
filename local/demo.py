"""`make demo`: the scored-file pipeline end to end on the embedded emulator, then what it did.

Everything goes over HTTP as it would in AWS: the file is uploaded to S3 by multipart, the Lambda
handler is invoked with a real S3 notification, records are read back from Kinesis with
GetRecords, the Slack summary is posted to a local webhook that captures it, and the local
shard poller drives save_campaign_data to archive the stream into the Avro lake.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from adapters.avro import iter_container
from domain.models import ObjectRef
from entrypoints import bootstrap, registry, reports, runtime
from entrypoints.events import s3_put_event
from entrypoints.lambda_handlers import process_scored_files_handler
from entrypoints.settings import Settings
from local import campaign
from local.emulator import EmbeddedEmulator, PortInUse, claim_port

__all__ = ["PortInUse", "run_demo", "serve_emulator"]
from local.emulator_h2c import start_h2c_listener
from local.sample_data import BLOCKED_DOMAINS, blacklist_lines, scored_file_bytes
from local.stats_page import write_stats_page
from streams.poller import FileCheckpoints, ShardPoller

CAMPAIGN_ID = "demo-presale"
# Places in the demo's wave, across its 50 markets: the per-fan stages after selection (codes,
# entries, the send) cost milliseconds a fan on the emulator, so the default keeps `make demo`
# to a few minutes; `--wave N` for more.
WAVE = 250
# Where the final stats page is written (relative: under the directory `make demo` runs in).
DEMO_OUTPUT = Path("demo-output")
DEMO_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "SCORING_BUCKET": "demo-scoring",
    "INPUT_STREAM": "demo-input-stream",
    "CAMPAIGN_DATA_BUCKET": "demo-campaign-data",
    "DEAD_LETTER_QUEUE": "demo-dead-letters",
    "BAND_SECRET": "demo-band-secret",
    "LOG_LEVEL": "WARNING",  # the tables below say what happened; JSON logs would bury them
}


class _WebhookSink(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.received.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:  # quiet: stderr is for our logs
        return


@contextmanager
def slack_sink() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WebhookSink)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _campaign_config() -> dict[str, Any]:
    return campaign.campaign_config(CAMPAIGN_ID)


def _prepare(settings: Settings, fans: int) -> ObjectRef:
    c = bootstrap.container(settings)
    s3 = c.aws.client("s3")
    kinesis = c.aws.client("kinesis")
    s3.create_bucket(Bucket=settings.scoring_bucket)
    s3.create_bucket(Bucket=settings.campaign_data_bucket)
    c.aws.client("sqs").create_queue(QueueName=settings.dead_letter_queue)
    kinesis.create_stream(StreamName=settings.scored_output_stream, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=settings.scored_output_stream)
    campaign.prepare(settings)
    bucket = settings.scoring_bucket
    blacklist = "\n".join(blacklist_lines(fans // 50 + 1)) + "\n"
    c.store.put_bytes(ObjectRef(bucket, settings.blacklist_key), blacklist.encode())
    config_key = f"{settings.campaign_config_prefix}{CAMPAIGN_ID}.json"
    c.store.put_bytes(ObjectRef(bucket, config_key), orjson.dumps(_campaign_config()))
    source = ObjectRef(bucket, f"scored/{CAMPAIGN_ID}.20261128T100000Z.txt")
    with c.store.open_writer(source, content_type="text/tab-separated-values") as writer:
        for chunk in scored_file_bytes(fans):
            writer.write(chunk)
    return source


def read_stream(settings: Settings) -> tuple[int, Counter[str], dict[str, Any] | None]:
    """Every record on the stream: the count, tags seen, and one sample record."""
    kinesis = bootstrap.container(settings).aws.client("kinesis")
    name = settings.scored_output_stream
    total, tags, sample = 0, Counter[str](), None
    for shard in kinesis.list_shards(StreamName=name)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            for record in page["Records"]:
                body = orjson.loads(record["Data"])
                total += 1
                tags.update(body.get("tags", ()))
                sample = sample or body
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
    return total, tags, sample


def archive_to_lake(settings: Settings, checkpoints: Path) -> tuple[Any, dict[str, int]]:
    """save_campaign_data over the stream with the local poller: scored fans into the Avro lake.
    Returns the poller's counts and the records found in the lake, by type."""
    c = bootstrap.container(settings)
    poller = ShardPoller(
        c.aws.client("kinesis"),
        settings.scored_output_stream,
        registry.stream_worker("save_campaign_data", settings),
        FileCheckpoints(checkpoints),
        limit=5_000,
    )
    polled = poller.run(until_caught_up=True)
    in_lake: Counter[str] = Counter()
    for info in c.store.list_objects(settings.campaign_data_bucket, "avro/"):
        kind = info.ref.key.split("/")[1]
        in_lake[kind] += sum(1 for _ in iter_container(io.BytesIO(c.store.read_bytes(info.ref))))
    return polled, dict(in_lake)


@contextmanager
def _step(console: Console, what: str) -> Iterator[None]:
    """A spinner on a terminal; without one (piped, CI, a log file) a line when the step starts
    and one with its time when it ends: rich's status prints nothing there, so a piped demo
    was silent for minutes."""
    if console.is_terminal:
        with console.status(what):
            yield
        return
    console.print(f"{what} ...")
    began = time.perf_counter()
    yield
    console.print(f"  done in {time.perf_counter() - began:.1f} s")


@dataclass
class DemoResult:
    code: int
    campaign: campaign.CampaignRun | None = None
    stats_page: Path | None = None  # the final stats as HTML (local/stats_page.py)


def run_demo(*, fans: int, console: Console, parallel: bool = True, wave: int = WAVE) -> int:
    return demo_run(fans=fans, console=console, parallel=parallel, wave=wave).code


def demo_run(
    *,
    fans: int,
    console: Console,
    parallel: bool = True,
    wave: int = WAVE,
    output: Path = DEMO_OUTPUT,
) -> DemoResult:
    """The scored file to the lake (its tables and checks as before), then the rest of the
    campaign (local/campaign.py) and the reconciliation of every fan."""
    os.environ.update({**DEMO_ENV, **campaign.CAMPAIGN_ENV})
    started = time.perf_counter()
    with (
        EmbeddedEmulator() as emulator,
        slack_sink() as slack,
        tempfile.TemporaryDirectory() as scratch,
    ):
        os.environ["AWS_ENDPOINT_URL"] = emulator.endpoint_url
        os.environ["SLACK_WEBHOOK_URL"] = f"http://127.0.0.1:{slack.server_port}/hooks/demo"
        os.environ["TRANSFORM_PROCESSES"] = "0" if parallel else "1"
        runtime.reset_settings()  # the emulator's endpoint was set just now
        settings = runtime.settings()
        console.print(f"[bold]Embedded AWS emulator[/] at {emulator.endpoint_url}")
        with _step(console, f"generating and uploading a scored file of {fans:,} fans"):
            source = _prepare(settings, fans)
        console.print(f"uploaded {source.uri}")
        with _step(console, "invoking the processScoredFiles Lambda handler with an S3 event"):
            handler_started = time.perf_counter()
            response = process_scored_files_handler(s3_put_event(source), None)
            handler_seconds = time.perf_counter() - handler_started
        with _step(console, "reading the stream back with GetRecords"):
            streamed, tags, sample = read_stream(settings)
        with _step(console, "archiving the stream into the Avro lake (save_campaign_data)"):
            lake_started = time.perf_counter()
            polled, in_lake = archive_to_lake(settings, Path(scratch) / "checkpoints.json")
            lake_seconds = time.perf_counter() - lake_started
        files = response["files"]
        code = reports.print_handler_response(console, response, seconds=handler_seconds)
        table = Table(title="What the pipeline left behind", show_header=False)
        table.add_row("records read back from Kinesis", f"{streamed:,}")
        table.add_row("tags on streamed records", ", ".join(f"{t} {n:,}" for t, n in tags.items()))
        for file in files:
            if file.get("scrubbed"):
                table.add_row("scrubbed CSV", file["scrubbed"])
        table.add_row(
            "archived to the Avro lake",
            ", ".join(f"{kind} {n:,}" for kind, n in in_lake.items()) or "nothing",
        )
        table.add_row("dead-lettered on the way", f"{polled.counts.dead_lettered:,}")
        table.add_row("Slack messages received", str(len(slack.received)))  # type: ignore[attr-defined]
        table.add_row("blocked demo domains", ", ".join(BLOCKED_DOMAINS))
        table.add_row("wall time (scored file to lake)", f"{time.perf_counter() - started:.1f} s")
        console.print(table)
        if sample:
            console.print("[bold]A streamed record[/] (masked here, as in logs):")
            console.print_json(data=reports.masked(sample))
        expected_out = sum(f.get("count", {}).get("out", 0) for f in files)
        if streamed != expected_out or in_lake.get("scoring", 0) != expected_out:
            console.print(
                f"[red]worker said {expected_out:,} out; the stream holds {streamed:,}, "
                f"the lake {in_lake.get('scoring', 0):,}"
            )
            return DemoResult(1)
        if code != 0 or len(files) != 1 or "count" not in files[0]:
            return DemoResult(code or 1)
        console.print("[bold]The rest of the campaign[/] (Workflow 1), worker by worker")
        run = campaign.run_campaign(
            settings,
            campaign_id=CAMPAIGN_ID,
            scored=files[0]["count"],
            scratch=Path(scratch),
            console=console,
            step=_step,
            wave_size=wave,
            before=[
                campaign.scored_stage(files[0]["count"], handler_seconds),
                campaign.stage_of(
                    campaign.Stage(
                        "lake (scored fans)", "save_campaign_data", seconds=lake_seconds
                    ),
                    polled.counts,
                ),
            ],
        )
        campaign.print_run(console, run)
        page = write_stats_page(CAMPAIGN_ID, run, output)
        console.print(f"[bold]stats page:[/] {page}", soft_wrap=True)
        console.print(f"wall time (all steps): {time.perf_counter() - started:.1f} s")
        return DemoResult(0 if run.ok else 1, run, page)


def serve_emulator(*, port: int, h2c_port: int, console: Console, host: str = "127.0.0.1") -> int:
    """The emulator until ^C, with its h2c door for the KCL's HTTP/2-only Kinesis client."""
    stop = threading.Event()
    if h2c_port:
        claim_port("127.0.0.1", h2c_port)  # before the emulator starts: fail with nothing to undo
    with EmbeddedEmulator(host=host, port=port) as emulator:
        h2c = start_h2c_listener(emulator.server, port=h2c_port)
        try:
            console.print(f"emulator listening at {emulator.endpoint_url} (^C stops it)")
            console.print(f"HTTP/2 (h2c) for the KCL at {h2c.url}: kcl run --kinesis-endpoint it")
            with suppress(KeyboardInterrupt):
                stop.wait()
        finally:
            h2c.stop()
    return 0
