"""The record-processor process the MultiLangDaemon spawns, one per shard lease.

    python -m entrypoints.kcl_main <worker> [--stream NAME]

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
from collections.abc import Sequence
from typing import TextIO

from entrypoints.settings import Settings
from entrypoints.stream_workers import build_stream_worker, stream_for

_log = logging.getLogger("entrypoints.kcl_main")


def reserve_stdout_for_protocol() -> TextIO:
    """Returns a private handle on the real stdout; fd 1 and sys.stdout now go to stderr."""
    sys.stdout.flush()
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


def _configure_logging(settings: Settings) -> None:
    try:
        from entrypoints import bootstrap

        configure = getattr(bootstrap, "configure_logging", None)
    except ImportError:
        configure = None
    if configure is not None:
        configure(settings)
        return
    logging.basicConfig(
        stream=sys.stderr,
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m entrypoints.kcl_main")
    parser.add_argument("worker", help="a stream worker name, or package.module:factory")
    parser.add_argument("--stream", help="the stream name (default: the worker's stream)")
    args = parser.parse_args(argv)
    protocol = reserve_stdout_for_protocol()
    settings = Settings.from_env()
    _configure_logging(settings)
    # Imported here, not at the top: amazon_kclpy is an optional install (make kcl).
    from streams.kcl import run_processor

    worker = build_stream_worker(args.worker, settings)
    stream = args.stream or stream_for(args.worker, settings)
    _log.info("record processor for %s on %s (pid %d)", args.worker, stream, os.getpid())
    run_processor(worker, stream, output_file=protocol)
    return 0


if __name__ == "__main__":
    sys.exit(main())
