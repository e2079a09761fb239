"""`campaign-workers`: run the workers from a terminal against AWS, LocalStack or the emulator.

Exit codes (README, "Exit codes"): expected failures print one line on stderr, never a
traceback; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from botocore.exceptions import NoCredentialsError, NoRegionError, PartialCredentialsError
from returns.result import Failure, Result, Success
from rich.console import Console
from rich.markup import escape

from adapters.aws.errors import AWS_ERRORS, error_code
from adapters.logging import mask_text
from domain.models import ObjectRef
from domain.streaming import DependencyUnavailable
from domain.workers.generate_sms_wave_codes import GenerateInput
from domain.workers.load_code_assignments_to_stream import WaveConfigRef
from domain.workers.process_scheduled_wave import ScheduledWave
from entrypoints import kcl_cli, registry, reports
from entrypoints.settings import Settings, SettingsError


class Exit(IntEnum):
    OK = 0
    # The work failed and a re-run can cure it: a dependency stayed down, a batch was given up,
    # records were stranded. Re-running continues where it stopped.
    FAILED = 1
    # Refused: bad arguments or input that no re-run can fix (argparse's usage errors are 2 too).
    REFUSED = 2
    # The environment: a bad setting, no AWS credentials or region, a busy port, a missing extra.
    ENVIRONMENT = 3
    INTERRUPTED = 130


def _say(kind: str, message: object) -> None:
    # Masked like the logs: an error can quote a file's line or a service's answer.
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[red]{kind}:[/] {escape(mask_text(str(message)))}"
    )


@contextmanager
def _running(
    args: argparse.Namespace, console: Console, description: str, unit: str = "rows"
) -> Iterator[tuple[Settings, Callable[[int], None]]]:
    """The settings from the environment, logging configured, and a progress callback: a live
    counter on a terminal unless --quiet, a no-op elsewhere."""
    from entrypoints import bootstrap

    settings = Settings.from_env()
    bootstrap.configure_logging(settings)
    enabled = console.is_terminal and not args.quiet
    with reports.row_progress(console, enabled=enabled, description=description, unit=unit) as tick:
        yield settings, tick


def _process_scored_files(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    try:
        ref = ObjectRef.parse(args.uri)
    except ValueError as bad:
        console.print(f"[red]error:[/] {bad}")
        return 2
    with _running(args, console, "scoring and scrubbing") as (settings, tick):
        outcome = registry.scored_file_run(settings)(
            ref, processes=1 if args.sequential else None, on_progress=tick
        )
    return reports.print_scored_outcome(Console(), outcome)


def _process_sms_wave_files(args: argparse.Namespace) -> int:
    import json

    from returns.result import Failure, Success

    from domain.wave_prep.request import request_from_json
    from entrypoints import wave_prep

    console = Console(stderr=True)
    doc = {
        "campaignId": args.campaign_id,
        "dateKey": args.date_key,
        "reassign": args.reassign,
        "orderByPreference": args.order_by_preference,
        "singleMarket": args.single_market,
        "randomSelection": args.random_selection,
        "minScore": args.min_score,
        "maxScore": args.max_score,
    }
    match request_from_json(doc):
        case Failure(message):
            console.print(f"[red]error:[/] {message}")
            return 2
        case Success(request):
            pass
    with _running(args, console, "selecting fans", "fans read") as (settings, tick):
        outcome = registry.wave_prep_run(settings)(request, on_progress=tick)
    print(json.dumps(wave_prep.outcome_dict(outcome), indent=2))
    match outcome:
        case Failure(failure) if failure.retryable:
            return Exit.FAILED
        case Failure(failure) if failure.environment:
            return Exit.ENVIRONMENT
        case Failure():  # refused, or failed in a way no re-run cures
            return Exit.REFUSED
    return Exit.OK


def _allow_wave_prep_attempt(args: argparse.Namespace) -> int:
    from entrypoints import bootstrap, wave_prep

    settings = Settings.from_env()
    bootstrap.configure_logging(settings)
    c = bootstrap.container(settings)
    outcome = wave_prep.allow_attempt(
        c, args.campaign_id, args.date_key, by=args.by, reason=args.reason
    )
    match outcome:
        case Success(status):
            print(json.dumps(status.to_json(), indent=2))
            return Exit.OK
        case Failure(refused):
            _say(refused.kind, refused.message)
    return Exit.REFUSED


def _merge_avro_files(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from returns.result import Failure, Success

    from entrypoints import lake

    console = Console(stderr=True)
    event: dict[str, object] = {"prefix": args.prefix} if args.prefix else {"type": args.kind}
    if args.type:
        event["recordTypes"] = args.type
    match lake.merge_request_from_event(event, datetime.now(UTC)):
        case Failure(message):
            console.print(f"[red]error:[/] {message}")
            return 2
        case Success(request):
            pass
    merging = f"merging {request.prefix}"
    with _running(args, console, merging, "records merged") as (settings, tick):
        counts = registry.lake_merge_run(settings)(request, on_progress=tick)
    result = lake.merge_dict(counts)
    print(lake.dumps(result))
    if counts.already_merged:
        console.print(f"{request.prefix} was merged already: nothing written, move queued again")
    if counts.busy:
        console.print(f"[red]busy:[/] {counts.busy}")
        return 2
    return 1 if counts.refusals else 0


def _move_merged_avro_files(args: argparse.Namespace) -> int:
    from domain.lake import parse_prefix
    from entrypoints import lake

    console = Console(stderr=True)
    prefix = parse_prefix(args.prefix)
    if prefix is None:
        console.print(f"[red]error:[/] prefix must be YYYY/MM/DD or YYYY/MM, got {args.prefix!r}")
        return 2
    requests = lake.move_requests_for(prefix, args.type)
    results = []
    with _running(args, console, f"archiving {prefix}", "record types") as (settings, tick):
        move = registry.lake_move_run(settings)
        for done, request in enumerate(requests, 1):
            results.append(lake.move_dict(move(request)))
            tick(done)
    print(lake.dumps([r for r in results if r["status"] != "nothing_merged"] or results))
    return 1 if any(r["status"] == "failed" for r in results) else 0


def _local_demo() -> ModuleType | None:
    """The development package, imported only by the commands that need it: a production
    install (no `local` extra) has neither moto nor hypercorn."""
    try:
        from local import demo
    except ModuleNotFoundError as missing:
        _say(
            "error",
            f"this command needs the development extra ({missing.name} is not installed): "
            "pip install 'campaign-workers[local]'",
        )
        return None
    return demo


def _demo(args: argparse.Namespace) -> int:
    demo = _local_demo()
    if demo is None:
        return Exit.ENVIRONMENT
    code: int = demo.run_demo(fans=args.fans, console=Console(), parallel=not args.sequential)
    return code


def _emulator(args: argparse.Namespace) -> int:
    demo = _local_demo()
    if demo is None:
        return Exit.ENVIRONMENT
    try:
        code: int = demo.serve_emulator(port=args.port, h2c_port=args.h2c_port, console=Console())
    except demo.PortInUse as busy:
        _say("error", busy)
        return Exit.ENVIRONMENT
    return code


def _poll(args: argparse.Namespace) -> int:
    from entrypoints import bootstrap
    from streams.poller import BatchAbandoned, DynamoCheckpoints, FileCheckpoints, ShardPoller

    console = Console(stderr=True)
    settings = Settings.from_env()
    bootstrap.configure_logging(settings)
    stream = args.stream or registry.stream_of(args.worker, settings)
    aws = bootstrap.container(settings).aws
    checkpoints = (
        DynamoCheckpoints(aws.client("dynamodb"), settings.checkpoint_table)
        if args.checkpoint_table
        else FileCheckpoints(args.checkpoints)
    )
    poller = ShardPoller(
        aws.client("kinesis"),
        stream,
        registry.stream_worker(args.worker, settings),
        checkpoints,
        limit=args.limit,
        shards=[s for s in args.shards.split(",") if s] if args.shards else None,
        deadline_seconds=settings.batch_deadline_seconds,
        # This process exits when a batch is abandoned, so a hung call may be left behind.
        abandon_hung_calls=True,
    )
    try:
        polled = poller.run(until_caught_up=not args.follow)
    except ValueError as wrong:  # e.g. --shards names a shard the stream does not have
        console.print(f"[red]error:[/] {wrong}")
        return 2
    except BatchAbandoned as abandoned:
        console.print(f"[red]stopped:[/] {abandoned} (rerun to replay from the checkpoint)")
        return 1
    except KeyboardInterrupt:
        return 130
    c = polled.counts
    print(
        f"{stream}: {polled.batches:,} batches, {c.received:,} records: {c.handled:,} handled, "
        f"{c.filtered:,} filtered, {c.dead_lettered:,} dead-lettered"
    )
    return 0


_Input = TypeVar("_Input")


def _job(
    args: argparse.Namespace,
    description: str,
    parse: Callable[[Settings], Result[_Input, str]],
    runner: Callable[[Settings], registry.Run[_Input, Any]],
) -> int:
    """Parses a code worker's input, runs it with a progress bar and prints its JSON result.
    Exit 0 done, 1 failed (a retry may cure it), 2 bad input or a failure a retry cannot cure."""
    console = Console(stderr=True)
    with _running(args, console, description) as (settings, tick):
        match parse(settings):
            case Success(event):
                outcome = runner(settings)(event, on_progress=tick)
            case refused:
                outcome = refused
    match outcome:
        case Success(done):
            print(json.dumps(done.to_json(), indent=2))
            return 0
        case Failure(str() as failure):
            _say("error", failure)  # one line, masked: a wrapped error read as two
            return 2
        case Failure(failure):
            _say(failure.kind, failure.message)
            return 1 if failure.retryable else 2
    raise TypeError(f"not a worker outcome: {outcome!r}")


def _config_argument(value: str) -> Any:
    """A JSON object, or @path to a file holding one."""
    return Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value


def _generate_sms_wave_codes(args: argparse.Namespace) -> int:
    def parse(_settings: Settings) -> Result[GenerateInput, str]:
        try:
            config = _config_argument(args.config)
        except (OSError, UnicodeDecodeError) as unreadable:  # was a traceback
            why = getattr(unreadable, "strerror", None) or str(unreadable)
            return Failure(f"--config {args.config}: cannot read the file ({why})")
        return GenerateInput.parse({"waveFilePrefix": args.wave_file_prefix, "config": config})

    return _job(args, "issuing codes", parse, registry.wave_codes_run)


def _process_scheduled_wave(args: argparse.Namespace) -> int:
    def parse(settings: Settings) -> Result[ScheduledWave, str]:
        return ScheduledWave.parse({"key": args.key}, settings.scoring_bucket)

    return _job(args, "assigning codes", parse, registry.scheduled_wave_run)


def _load_code_assignments_to_stream(args: argparse.Namespace) -> int:
    def parse(settings: Settings) -> Result[WaveConfigRef, str]:
        return WaveConfigRef.parse({"key": args.key}, settings.scoring_bucket)

    return _job(args, "streaming code assignments", parse, registry.code_stream_run)


def _sms_wave_send(args: argparse.Namespace) -> int:
    from domain.workers.sms_wave_send import SendInput

    def parse(_settings: Settings) -> Result[SendInput, str]:
        return SendInput.parse({"waveName": args.wave_name})

    if not args.dry_run:
        return _job(args, "sending the wave", parse, registry.sms_send_run)

    def plan(settings: Settings) -> registry.Run[SendInput, Any]:
        run = registry.sms_plan_run(settings)
        return lambda request, on_progress=None: run(request).map(_Plan)

    return _job(args, "reading the wave", parse, plan)


class _Plan:
    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan

    def to_json(self) -> dict[str, Any]:
        return self.plan


def _sms_wave_scheduler(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    print(json.dumps(registry.sms_scheduler_run(settings)().to_json(), indent=2))
    return 0


def _sms_commands(commands: Any) -> None:
    send = commands.add_parser(
        "sms-wave-send", help="text and email every fan of a triggered wave, once"
    )
    send.add_argument("wave_name", help="the wave: smsWaves/csv/{name}.csv")
    send.add_argument(
        "--dry-run",
        action="store_true",
        help="send nothing: fans per channel, parts per text, UCS-2 texts, time at the rate",
    )
    send.add_argument("--quiet", action="store_true", help="no progress bar")
    send.set_defaults(run=_sms_wave_send)
    scheduler = commands.add_parser(
        "sms-wave-scheduler", help="trigger the waves whose notifyDate has come; start sends"
    )
    scheduler.set_defaults(run=_sms_wave_scheduler)


def _code_commands(commands: Any) -> None:
    generate = commands.add_parser(
        "generate-sms-wave-codes",
        help="a code per fan of a wave, into its CSV (Pacman or generated)",
    )
    generate.add_argument("wave_file_prefix", help="the wave: smsWaves/csv/{prefix}.csv")
    generate.add_argument("--config", required=True, help="the wave config as JSON, or @file.json")
    generate.add_argument("--quiet", action="store_true", help="no progress bar")
    generate.set_defaults(run=_generate_sms_wave_codes)

    scheduled = commands.add_parser(
        "process-scheduled-wave", help="assign a scheduled wave's codes to its campaign"
    )
    scheduled.add_argument("key", help="smsWaves/csv/{campaignId}_{suffix}.csv or s3://bucket/...")
    scheduled.add_argument("--quiet", action="store_true", help="no progress bar")
    scheduled.set_defaults(run=_process_scheduled_wave)

    stream = commands.add_parser(
        "load-code-assignments-to-stream", help="put a wave's codes on the input stream, once"
    )
    stream.add_argument("key", help="smsWaves/triggered/{wave}_csv.json or s3://bucket/...")
    stream.add_argument("--quiet", action="store_true", help="no progress bar")
    stream.set_defaults(run=_load_code_assignments_to_stream)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="campaign-workers",
        description="Fan-campaign pipeline workers. AWS endpoints and names come from the "
        "environment (AWS_ENDPOINT_URL, SCORING_BUCKET, ...; see the README).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    scored = commands.add_parser(
        "process-scored-files", help="score, scrub and stream one scored file"
    )
    scored.add_argument("uri", help="s3://bucket/scored/{campaignId}.{timestamp}.txt")
    scored.add_argument("--sequential", action="store_true", help="one process, no pool")
    scored.add_argument("--quiet", action="store_true", help="no progress bar")
    scored.set_defaults(run=_process_scored_files)

    wave = commands.add_parser(
        "process-sms-wave-files",
        help="wave prep: select fans per market, reserve codes, zip the delivery files",
    )
    wave.add_argument("campaign_id")
    wave.add_argument("date_key", help="YYYY-MM-DD: names the market details and the zip")
    wave.add_argument("--reassign", action="store_true", help="fans holding a code compete too")
    wave.add_argument("--order-by-preference", action="store_true")
    wave.add_argument("--single-market", action="store_true", help="primary market only")
    wave.add_argument("--random-selection", action="store_true", help="keyed draw, not score")
    wave.add_argument("--min-score", type=float)
    wave.add_argument("--max-score", type=float)
    wave.add_argument("--quiet", action="store_true", help="no progress bar")
    wave.set_defaults(run=_process_sms_wave_files)
    grant = commands.add_parser(
        "allow-wave-prep-attempt",
        help="allow a wave prep that used its attempts one more (recorded: who, when, why)",
    )
    grant.add_argument("campaign_id")
    grant.add_argument("date_key", help="YYYY-MM-DD")
    grant.add_argument("--by", required=True, help="who allows it (kept in the status JSON)")
    grant.add_argument("--reason", required=True, help="why (kept in the status JSON)")
    grant.set_defaults(run=_allow_wave_prep_attempt)

    merge = commands.add_parser(
        "merge-avro-files",
        help="compact the lake: one Avro file per record type for a day or month, each record once",
    )
    period = merge.add_mutually_exclusive_group()
    period.add_argument("--daily", dest="kind", action="store_const", const="daily")
    period.add_argument("--monthly", dest="kind", action="store_const", const="monthly")
    period.add_argument("--prefix", help="YYYY/MM/DD or YYYY/MM (default: --daily, yesterday)")
    merge.add_argument("--type", action="append", help="a record type (repeatable; default all)")
    merge.add_argument("--quiet", action="store_true", help="no progress bar")
    merge.set_defaults(run=_merge_avro_files, kind="daily")

    move = commands.add_parser(
        "move-merged-avro-files",
        help="archive a merged prefix's source files (copy, verify, then delete)",
    )
    move.add_argument("prefix", help="YYYY/MM/DD or YYYY/MM")
    move.add_argument("--type", action="append", help="a record type (repeatable; default all)")
    move.add_argument("--quiet", action="store_true", help="no progress bar")
    move.set_defaults(run=_move_merged_avro_files)

    demo = commands.add_parser("demo", help="the scored-file pipeline on the embedded emulator")
    demo.add_argument("--fans", type=int, default=200_000, help="fans in the generated file")
    demo.add_argument("--sequential", action="store_true", help="one process, no pool")
    demo.set_defaults(run=_demo)

    poll = commands.add_parser(
        "poll", help="run a stream worker over its stream with the local shard poller"
    )
    poll.add_argument("worker", choices=[w.name for w in registry.STREAM_WORKERS])
    poll.add_argument("--stream", help="the stream to read (default: the worker's own)")
    poll.add_argument("--checkpoints", type=Path, default=Path(".checkpoints.json"))
    poll.add_argument("--limit", type=int, default=1000, help="records per GetRecords")
    poll.add_argument("--follow", action="store_true", help="keep polling after catching up")
    poll.add_argument(
        "--shards",
        help="comma-separated shard ids this poller owns (and their children); several pollers "
        "share a stream this way, with --checkpoint-table (default: every shard)",
    )
    poll.add_argument(
        "--checkpoint-table",
        action="store_true",
        help="keep checkpoints in the DynamoDB table CHECKPOINT_TABLE (shared by pollers)",
    )
    poll.set_defaults(run=_poll)

    emulator = commands.add_parser("emulator", help="serve the embedded AWS emulator until ^C")
    emulator.add_argument("--port", type=int, default=4566)
    emulator.add_argument("--h2c-port", type=int, default=4567, help="HTTP/2 door for the KCL")
    emulator.set_defaults(run=_emulator)

    _code_commands(commands)
    _sms_commands(commands)
    kcl_cli.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        return Exit.INTERRUPTED
    except SettingsError as bad:
        _say("configuration", bad)
        return Exit.ENVIRONMENT
    except (NoCredentialsError, PartialCredentialsError, NoRegionError) as missing:
        _say("AWS", f"{missing} (set AWS credentials and AWS_REGION, or AWS_ENDPOINT_URL)")
        return Exit.ENVIRONMENT
    except registry.UnknownWorker as unknown:
        _say("error", unknown)
        return Exit.REFUSED
    except DependencyUnavailable as down:
        _say("unavailable", f"{down} (re-run when it is back)")
        return Exit.FAILED
    except AWS_ERRORS as failed:
        _say("AWS", f"{error_code(failed)}: {failed}")
        return Exit.FAILED
    return code


if __name__ == "__main__":
    sys.exit(main())
