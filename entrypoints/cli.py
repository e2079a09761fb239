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
from pathlib import Path
from types import ModuleType
from typing import Any

from botocore.exceptions import NoCredentialsError, NoRegionError, PartialCredentialsError
from returns.result import Failure, Success
from rich.console import Console
from rich.markup import escape

from adapters import deadline as deadlines
from adapters.aws.errors import AWS_ERRORS, error_code
from adapters.logging import mask_text
from domain.streaming import DependencyUnavailable
from entrypoints import kcl_cli, registry, reports, runtime
from entrypoints.runtime import Exit as Exit
from entrypoints.settings import Settings, SettingsError


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

    settings = runtime.settings()
    if not console.is_terminal:  # piped or in a job: a progress line every 15 s instead
        yield settings, runtime.progress_lines(description, unit)
        return
    with reports.row_progress(
        console, enabled=not args.quiet, description=description, unit=unit
    ) as tick:
        yield settings, tick


def _run_job(args: argparse.Namespace) -> int:
    """A registered job from the command line: the inputs its arguments make, run by the job
    runtime; its response printed (JSON on stdout), a failure in one line on stderr, the counts
    the metrics carry on stderr, and the exit code of README's table."""
    worker = registry.job_entry(args.job)
    job, cli = worker.job, worker.cli
    assert job is not None and cli is not None
    console = Console(stderr=True)
    items = cli.inputs(args)
    results: list[runtime.Written] = []
    with _running(args, console, worker.name.replace("_", " "), cli.unit) as (settings, tick):
        run = registry.run_of(worker.name, settings)
        for done, item in enumerate(items, 1):
            single = tick if len(items) == 1 and cli.progress else None
            results.append(
                runtime.run_item(worker.name, job, run, item, settings, single, cli.options(args))
            )
            if single is None:
                tick(done)
    failures = [w.failure for w in results if w.failure is not None]
    if cli.table:
        files = [{"source": str(i), **w.response} for i, w in zip(items, results, strict=True)]
        reports.print_handler_response(Console(), {"files": files})
    elif not failures or cli.failure_json:
        responses = [w.response for w in results]
        print(json.dumps(responses[0] if len(responses) == 1 else responses, indent=2))
    for written in results:
        if written.note:
            console.print(written.note)
    if not cli.table:
        for failure in failures:
            # One line, masked; a refused input is an `error:` as argparse's are.
            _say("error" if failure.kind == job.bad_input else failure.kind, failure.message)
    if not args.quiet:
        console.print(runtime.counts_line(runtime.total([w.counts for w in results])))
    return runtime.exit_code(failures)


def _job_commands(commands: Any) -> None:
    """One subcommand per registered job, named after it (process_scored_files ->
    process-scored-files), its arguments from its registry entry."""
    for worker in registry.JOBS:
        if worker.cli is None:
            continue
        command = commands.add_parser(worker.command, help=worker.cli.help)
        for flags, options in worker.cli.arguments:
            command.add_argument(*flags, **options)
        command.add_argument("--quiet", action="store_true", help="no progress bar")
        command.set_defaults(run=_run_job, job=worker.name)


def _allow_wave_prep_attempt(args: argparse.Namespace) -> int:
    from entrypoints import bootstrap, wave_prep

    settings = runtime.settings()
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
    code: int = demo.run_demo(
        fans=args.fans, console=Console(), parallel=not args.sequential, wave=args.wave
    )
    return code


def _emulator(args: argparse.Namespace) -> int:
    demo = _local_demo()
    if demo is None:
        return Exit.ENVIRONMENT
    try:
        code: int = demo.serve_emulator(
            host=args.host, port=args.port, h2c_port=args.h2c_port, console=Console()
        )
    except demo.PortInUse as busy:
        _say("error", busy)
        return Exit.ENVIRONMENT
    return code


def _poll(args: argparse.Namespace) -> int:
    from entrypoints import bootstrap
    from streams.poller import BatchAbandoned, DynamoCheckpoints, FileCheckpoints, ShardPoller

    console = Console(stderr=True)
    settings = runtime.settings()
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
        deadline_scope=deadlines.within,
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="campaign-workers",
        description="Fan-campaign pipeline workers. AWS endpoints and names come from the "
        "environment (AWS_ENDPOINT_URL, SCORING_BUCKET, ...; see the README).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    _job_commands(commands)
    grant = commands.add_parser(
        "allow-wave-prep-attempt",
        help="allow a wave prep that used its attempts one more (recorded: who, when, why)",
    )
    grant.add_argument("campaign_id")
    grant.add_argument("date_key", help="YYYY-MM-DD")
    grant.add_argument("--by", required=True, help="who allows it (kept in the status JSON)")
    grant.add_argument("--reason", required=True, help="why (kept in the status JSON)")
    grant.set_defaults(run=_allow_wave_prep_attempt)

    demo = commands.add_parser(
        "demo", help="a whole campaign (Workflow 1) on the embedded emulator"
    )
    demo.add_argument("--fans", type=int, default=10_000, help="fans in the generated file")
    demo.add_argument("--wave", type=int, default=250, help="places in the wave (50 markets)")
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
    emulator.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (127.0.0.1: an unauthenticated AWS emulator must not face "
        "the network; 0.0.0.0 only inside a container whose port is published to loopback)",
    )
    emulator.add_argument("--port", type=int, default=4566)
    emulator.add_argument("--h2c-port", type=int, default=4567, help="HTTP/2 door for the KCL")
    emulator.set_defaults(run=_emulator)

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
