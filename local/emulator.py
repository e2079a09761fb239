"""The embedded AWS emulator: moto's ThreadedMotoServer on 127.0.0.1, on a free port.

    with EmbeddedEmulator() as emulator:
        client = boto3.client("s3", endpoint_url=emulator.endpoint_url, ...)

For benchmarks that must not share the CPU/GIL with the emulator, run it in another process:
`python -m local.emulator --port 0` prints its endpoint URL on the first stdout line and
serves until SIGTERM/SIGINT; `EmulatorProcess` wraps that.

The Kinesis fix. moto 5.2's `Shard.get_max_sequence_number` builds `list(self.records.keys())`
on every put (to number the new record) and `get_records` scans the shard from its first record
on every read, so puts and reads are O(shard length) each: 100,000 records take ~50 s instead
of ~5 s. Sequence numbers in a moto shard are the dict's keys, strictly increasing in insertion
order, so the ends of the ordered dict answer min/max in O(1), and a read can walk forward key
by key from the iterator's position. The originals are fingerprinted (local/moto_patch.py): if
moto changes them the fix is NOT applied (stock behaviour, only slow) and
`KINESIS_FIX.status()` says why; tests/integration/test_emulator.py fails in that case so the
fix is revisited.

Resharding (SplitShard, MergeShards, a closed shard's end, ListShards' ShardFilter) is made to
behave as Kinesis documents it by local.kinesis_resharding, applied with the same fix.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from types import TracebackType
from typing import Any

from moto.server import ThreadedMotoServer

from local.dynamodb_atomic import DYNAMODB_FIX
from local.dynamodb_transactions import TRANSACTIONS_FIX
from local.kinesis_put_path import PUT_PATH_FIX, enable_shard_limits
from local.kinesis_resharding import RESHARDING_FIX
from local.moto_dispatch import DISPATCH_FIX
from local.moto_patch import MotoPatch
from local.s3_conditional import S3_CONDITIONAL_FIX

log = logging.getLogger(__name__)

# "Shard.method" -> fingerprint() of the moto 5.2.5 method the fix replaces.
ORIGINAL_FINGERPRINTS: dict[str, str] = {
    "Shard.get_records": "1188a73a6b3db1f9acd79de3488b0c52",
    "Shard.get_max_sequence_number": "eff48df162f5a63d31722187966dbf74",
    "Shard.get_min_sequence_number": "acae970512147e4e42bd2c489c4585b0",
}


# --- the Kinesis fix ------------------------------------------------------------------------


def _min_sequence_number(shard: Any) -> int:
    records = shard.records
    return int(next(iter(records))) if records else 0


def _max_sequence_number(shard: Any) -> int:
    records = shard.records
    return int(next(reversed(records))) if records else 0


def _get_records(
    shard: Any, last_sequence_id: str, limit: int | None
) -> tuple[list[Any], int, int]:
    """Same answer as moto's Shard.get_records, in O(records returned) instead of O(shard)."""
    last = int(last_sequence_id)
    records = shard.records
    results: list[Any] = []
    if records:
        newest_key = next(reversed(records))
        key = max(last + 1, next(iter(records)))
        while key <= newest_key and (limit is None or len(results) < limit):
            record = records.get(key)
            if record is not None:  # keys are dense in moto; tolerate gaps anyway
                results.append(record)
                last = key
            key += 1
    behind = records[newest_key].created_at - results[-1].created_at if results else 0.0
    return results, last, int(behind * 1000)


PATCHES: dict[str, Callable[..., Any]] = {
    "Shard.get_records": _get_records,
    "Shard.get_max_sequence_number": _max_sequence_number,
    "Shard.get_min_sequence_number": _min_sequence_number,
}


def _classes() -> dict[str, type]:
    from moto.kinesis.models import Shard

    return {"Shard": Shard}


KINESIS_FIX = MotoPatch(
    "kinesis emulator",
    __name__,
    _classes,
    replacements=PATCHES,
    fingerprints=ORIGINAL_FINGERPRINTS,
)


# --- the emulator ---------------------------------------------------------------------------


class PortInUse(OSError):
    """The port is taken; raised at once instead of moto's server thread failing unseen."""


def claim_port(host: str, port: int) -> None:
    """Raises PortInUse when `port` cannot be bound on `host` now.

    moto's ThreadedMotoServer binds inside its thread: when that fails, start() waits for a
    server that never comes (the emulator used to print "Address already in use" and hang).
    The probe binds the way werkzeug will (SO_REUSEADDR), so a port in TIME_WAIT is not
    refused; between the probe and the real bind another process could still take it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as taken:
            raise PortInUse(f"port {port} on {host} is in use ({taken.strerror})") from None


class EmbeddedEmulator:
    """moto's server in this process, on 127.0.0.1. Port 0 picks a free port without a race
    (the OS assigns it at bind time)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        kinesis_fix: bool = True,
        log_requests: bool = False,
        shard_limits: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.kinesis_fix = kinesis_fix
        # Opt-in: throttle each shard to 1,000 records/s and 1 MiB/s (local/kinesis_put_path.py).
        self.shard_limits = shard_limits
        self.log_requests = log_requests
        self._server: ThreadedMotoServer | None = None
        self.endpoint_url = ""

    def start(self) -> EmbeddedEmulator:
        if self._server is not None:
            return self
        # Always: without it, conditional writes are not atomic under concurrent requests.
        DYNAMODB_FIX.apply()
        # Needs the one above (checks, then writes, with no request in between).
        if DYNAMODB_FIX.status().applied:
            TRANSACTIONS_FIX.apply()
        S3_CONDITIONAL_FIX.apply()
        DISPATCH_FIX.apply()  # every request: moto listed its package directory for each
        if self.kinesis_fix:
            KINESIS_FIX.apply()
            RESHARDING_FIX.apply()
            PUT_PATH_FIX.apply()
            if self.shard_limits:
                enable_shard_limits()
        if not self.log_requests:
            # werkzeug logs every request at INFO: millions of lines in a benchmark or demo.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        if self.port:
            claim_port(self.host, self.port)
        server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self.port = port
        self.endpoint_url = f"http://{host}:{port}"
        return self

    @property
    def server(self) -> ThreadedMotoServer:
        """The running moto server (e.g. to serve its WSGI app through a second listener)."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return self._server

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def reset(self) -> None:
        """Empties every backend (all buckets, streams, queues) of this process."""
        # Our own http:// endpoint, never a user-supplied URL.
        url = f"{self.endpoint_url}/moto-api/reset"
        request = urllib.request.Request(url, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            answer.read()

    def __enter__(self) -> EmbeddedEmulator:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


class EmulatorProcess:
    """The emulator in a child process (`python -m local.emulator`), for benchmarks
    that measure the client process alone."""

    def __init__(
        self,
        *,
        kinesis_fix: bool = True,
        moto_put_store: bool = False,
        startup_timeout: float = 30.0,
    ) -> None:
        self.kinesis_fix = kinesis_fix
        self.moto_put_store = moto_put_store
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[str] | None = None
        self.endpoint_url = ""

    def start(self) -> EmulatorProcess:
        command = [sys.executable, "-m", __name__, "--port", "0"]
        if not self.kinesis_fix:
            command.append("--stock-kinesis")
        if self.moto_put_store:
            command.append("--moto-put-store")
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self._process = process
        assert process.stdout is not None
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(process.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(self.startup_timeout)
        if not line or not line[0].startswith("http://"):
            self.stop()
            raise RuntimeError(
                f"emulator process did not report its endpoint within {self.startup_timeout} s"
            )
        self.endpoint_url = line[0].strip()
        return self

    @property
    def pid(self) -> int:
        """The emulator process's id (benchmarks measure its CPU apart)."""
        if self._process is None:
            raise RuntimeError("the emulator process is not started")
        return self._process.pid

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.emulator",
        description="Serve the embedded AWS emulator; prints its endpoint URL first.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--stock-kinesis", action="store_true", help="leave moto's quadratic Kinesis shard as is"
    )
    parser.add_argument(
        "--moto-put-store",
        action="store_true",
        help="store PutRecords entries through moto's backend (the slower path; benchmarks)",
    )
    args = parser.parse_args(argv)
    if args.moto_put_store:
        from local import kinesis_put_path

        kinesis_put_path.store_in_one_loop = False
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stopped.set())
    with EmbeddedEmulator(args.host, args.port, kinesis_fix=not args.stock_kinesis) as emulator:
        print(emulator.endpoint_url, flush=True)
        if not args.stock_kinesis:
            print(f"kinesis fix: {KINESIS_FIX.status().reason}", file=sys.stderr, flush=True)
            print(f"resharding: {RESHARDING_FIX.status().reason}", file=sys.stderr, flush=True)
        stopped.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
