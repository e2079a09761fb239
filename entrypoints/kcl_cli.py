"""`campaign-workers kcl properties|run <worker>`: the daemon's properties; the daemon, supervised.

The jobs live in entrypoints/kcl/: properties (rendering), daemon (jars, command, environment),
supervisor (restarts with backoff, a lock per worker id, the JVM dying with its supervisor),
leases (priming a local endpoint's lease table). This module is only the command line.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from entrypoints import runtime
from entrypoints.kcl.daemon import (
    DAEMON_CLASS,
    daemon_command,
    daemon_environment,
    jar_directory,
    kcl_version,
)
from entrypoints.kcl.leases import prime_lease_table, prime_local_leases
from entrypoints.kcl.properties import (
    LOCAL_TUNING,
    DaemonConfig,
    daemon_config,
    default_worker_id,
    write_properties,
)
from entrypoints.kcl.supervisor import (
    AlreadySupervised,
    DaemonSupervisor,
    WorkerLock,
    default_lock_path,
    exit_reason,
)
from entrypoints.settings import Settings

__all__ = [
    "DAEMON_CLASS",
    "LOCAL_TUNING",
    "AlreadySupervised",
    "DaemonConfig",
    "DaemonSupervisor",
    "WorkerLock",
    "daemon_command",
    "daemon_config",
    "daemon_environment",
    "default_lock_path",
    "default_worker_id",
    "exit_reason",
    "jar_directory",
    "kcl_version",
    "prime_lease_table",
    "prime_local_leases",
    "register",
    "write_properties",
]

_log = logging.getLogger(__name__)


def _settings_and_config(args: argparse.Namespace) -> tuple[Settings, DaemonConfig]:
    settings = runtime.settings()
    config = daemon_config(
        args.worker,
        settings,
        kinesis_endpoint=args.kinesis_endpoint,
        application=args.application,
        worker_id=args.worker_id,
        shutdown_grace_millis=args.shutdown_grace_millis,
    )
    return settings, config


def _properties(args: argparse.Namespace) -> int:
    _settings, config = _settings_and_config(args)
    path = write_properties(config, Path(args.directory))
    print(path)
    return 0


def _run(args: argparse.Namespace) -> int:
    from entrypoints import bootstrap

    settings, config = _settings_and_config(args)
    bootstrap.configure_logging(settings)
    try:
        path = write_properties(config, Path(args.directory))
        command = daemon_command(path, java=args.java)
        version = kcl_version()
    except RuntimeError as missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    lock = WorkerLock(default_lock_path(config.application, config.worker_id))
    try:
        lock.acquire()  # before priming: a second supervisor must touch nothing
    except AlreadySupervised as held:
        print(f"error: {config.worker_id}: {held}", file=sys.stderr)
        return 3
    try:
        if config.local and not args.no_prime_leases:
            prime_local_leases(
                bootstrap.container(settings).aws,
                application=config.application,
                stream=config.stream,
            )
        _log.info(
            "MultiLangDaemon KCL %s for %s on %s (worker id %s)",
            version,
            config.worker,
            config.stream,
            config.worker_id,
        )
        supervisor = DaemonSupervisor(
            command,
            env=daemon_environment(settings),
            give_up_after_seconds=args.give_up_after,
        )

        def forward(_signum: int, _frame: object) -> None:
            threading.Thread(target=supervisor.stop, daemon=True).start()

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        return supervisor.run()
    finally:
        lock.release()


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("worker", help="save_campaign_data | transform_code_assignments | ...")
    parser.add_argument("--directory", default=".kcl", help="where the properties go (.kcl)")
    parser.add_argument(
        "--kinesis-endpoint",
        help="the daemon's Kinesis endpoint; it must speak HTTP/2 (the emulator's h2c door)",
    )
    parser.add_argument("--application", help="KCL application (lease table) name")
    parser.add_argument("--worker-id", help="fixed worker id (default: worker@host)")
    parser.add_argument("--shutdown-grace-millis", type=int, default=10_000)


def register(subparsers: Any) -> None:
    """Adds `kcl properties <worker>` and `kcl run <worker>` to the campaign-workers CLI."""
    kcl = subparsers.add_parser("kcl", help="run stream workers under the KCL MultiLangDaemon")
    actions = kcl.add_subparsers(dest="kcl_command", required=True)
    properties = actions.add_parser("properties", help="write the daemon's properties file")
    _common(properties)
    properties.set_defaults(run=_properties)
    run = actions.add_parser("run", help="start the MultiLangDaemon, supervised")
    _common(run)
    run.add_argument("--java", default="java")
    run.add_argument(
        "--give-up-after",
        type=float,
        metavar="SECONDS",
        help="stop restarting a daemon that keeps failing for this long (default: never; "
        "restarts back off up to a minute apart)",
    )
    run.add_argument(
        "--no-prime-leases",
        action="store_true",
        help="against a local endpoint, do not pre-create the lease table (saves 0-30 s)",
    )
    run.set_defaults(run=_run)
