"""The record-processor process the MultiLangDaemon spawns, one per shard lease.

    python -m entrypoints.kcl_main <worker> [--stream NAME]

`<worker>` is a stream worker of the registry (entrypoints/registry.py). Tests run their probe
workers through the same `serve` from a child main of their own (tests/support/kcl_child.py).

stdout belongs to the protocol. Before anything else runs, file descriptor 1 is pointed at
stderr and the protocol gets a private duplicate of the original stdout: a print() in any
library, or a C extension writing to fd 1, then lands in the daemon's log instead of corrupting
the conversation (the daemon would stop the child on the first line it cannot parse).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from adapters import deadline as deadlines
from domain.ports import StreamWorker
from entrypoints import registry, runtime
from entrypoints.settings import Settings

_log = logging.getLogger("entrypoints.kcl_main")


def reserve_stdout_for_protocol() -> TextIO:
    """Returns a private handle on the real stdout; fd 1 and sys.stdout now go to stderr."""
    sys.stdout.flush()
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


def serve(
    name: str,
    build: Callable[[Settings], StreamWorker],
    stream: Callable[[Settings], str],
) -> int:
    """Runs the worker `build` makes as the record processor for `stream`, until the daemon
    ends the conversation."""
    protocol = reserve_stdout_for_protocol()
    settings = runtime.settings()
    # Imported here, not at the top: amazon_kclpy is an optional install (make kcl).
    from streams.kcl import run_processor

    worker = build(settings)
    stream_name = stream(settings)
    _log.info("record processor for %s on %s (pid %d)", name, stream_name, os.getpid())
    run_processor(
        worker,
        stream_name,
        output_file=protocol,
        batch_deadline_seconds=settings.batch_deadline_seconds,
        deadline_scope=deadlines.within,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m entrypoints.kcl_main")
    parser.add_argument("worker", choices=[w.name for w in registry.STREAM_WORKERS])
    parser.add_argument("--stream", help="the stream name (default: the worker's stream)")
    args = parser.parse_args(argv)
    name: str = args.worker
    return serve(
        name,
        lambda settings: registry.stream_worker(name, settings),
        lambda settings: args.stream or registry.stream_of(name, settings),
    )


if __name__ == "__main__":
    sys.exit(main())
