"""Lambda entry points, made from the registry: one package serves every worker, and the
function's handler setting picks it (`entrypoints.lambda_handlers.{worker}_handler`; the Kinesis
consumers share `stream_worker_handler` with `WORKER=<name>`). Each job's handler is the job
runtime (entrypoints/runtime.py) over its registry entry; nothing here is per worker.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from domain.ports import StreamWorker
from entrypoints import bootstrap, registry, runtime
from entrypoints.runtime import RetryableFailure, WorkerFailed
from entrypoints.settings import Settings

# The stream handler's modules are imported when it first runs: a job's cold start skips them
# (and every worker's own stack is imported by its registry entry when built).
if TYPE_CHECKING:
    from streams.checkpoints import CheckpointStore

__all__ = [
    "RetryableFailure",
    "WorkerFailed",
    "counts_dict",
    "file_result",
    "lambda_entry",
    "stream_worker_handler",
]

Handler = Callable[[Any, Any], Any]

file_result = registry.file_result
counts_dict = registry.counts_dict
lambda_entry = runtime.lambda_entry


@functools.cache
def job_handler(name: str) -> Handler:
    """The Lambda handler of the registered job `name`."""
    worker = registry.job_entry(name)
    job = worker.job
    assert job is not None
    kind = registry.trigger_kind(worker.trigger)

    def handler(event: Any, context: Any) -> Any:
        with runtime.invocation(context) as settings:
            return runtime.handle(name, job, kind, lambda: registry.run_of(name, settings), event)

    handler.__name__ = handler.__qualname__ = f"{name}_handler"
    return runtime.lambda_entry(handler)


def __getattr__(attribute: str) -> Handler:
    """`{job}_handler` for every registered job (PEP 562: Lambda's runtime and imports find it)."""
    if attribute.endswith("_handler"):
        name = attribute.removesuffix("_handler")
        if name in {w.name for w in registry.JOBS}:
            return job_handler(name)
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *(f"{w.name}_handler" for w in registry.JOBS)])


def _stream_worker_from_settings() -> StreamWorker:
    settings = runtime.settings()
    if not settings.worker:
        known = ", ".join(w.name for w in registry.STREAM_WORKERS)
        raise RuntimeError(f"set WORKER to the stream worker this function runs, one of: {known}")
    return registry.stream_worker(settings.worker, settings)


def _watermarks_from_settings() -> CheckpointStore:
    """The per-shard watermarks that keep overlapping batches from archiving a record twice
    (streams/lambda_kinesis.py). The table (key `shardKey`, a string) is the deployment's to
    create; against a local endpoint it is created on first use."""
    from streams.checkpoints import DynamoCheckpoints

    settings = runtime.settings()
    aws = bootstrap.container(settings).aws
    return DynamoCheckpoints(
        aws.client("dynamodb"),
        settings.checkpoint_table,
        create_if_missing=aws.options.all_endpoints_local,
    )


@functools.cache
def _kinesis(deadline_seconds: float) -> Handler:
    from streams.lambda_kinesis import kinesis_handler

    return kinesis_handler(
        _stream_worker_from_settings,
        build_watermarks=_watermarks_from_settings,
        report=_report,
        deadline_seconds=deadline_seconds,
    )


def _report(worker: str, counts: Mapping[str, int]) -> None:
    """A stream worker's counts as the same EMF metrics every job emits (inside Lambda only:
    elsewhere stdout is the caller's; the handler's log line carries them)."""
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        runtime.emit_metrics(worker, counts, {})


@runtime.lambda_entry
def stream_worker_handler(event: Any, context: Any) -> Any:
    """Kinesis event source (with ReportBatchItemFailures): WORKER names the stream worker. The
    settings are read at the first invocation, not at import."""
    settings: Settings = runtime.settings()
    return _kinesis(settings.batch_deadline_seconds)(event, context)
