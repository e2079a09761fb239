"""Supervises the MultiLangDaemon: restarts it, dies with it, and never runs it twice.

Facts (KCL 3.1.3 multilang): when a record processor dies the daemon does not restart it, it
exits 1. The supervisor waits for that JVM to exit, then starts a new one with the same
workerId, which takes its leases back within a few seconds (a new id waits out the old leases).

Rules, and the failure each prevents (issue 7):
- Restarts back off (full jitter, up to `restart_cap_seconds`) and never give up by default: a
  dependency outage of minutes makes every restarted child fail its batches, and a supervisor
  that gave up after five restarts left the consumer dead for good. A daemon that ran for
  `healthy_seconds` resets the backoff. `give_up_after_seconds` (off by default) bounds it.
- Each restart is logged with why the daemon ended: killed by a signal (the JVM itself, e.g.
  the OOM killer or a kill -9) is not the same as exit 1 (a record processor died).
- The JVM dies with its supervisor: it gets its own process group (so `stop` signals the JVM
  and nothing else) and a parent-death signal (prctl PR_SET_PDEATHSIG, SIGKILL, set in the
  child before exec). A SIGKILLed supervisor used to leave its JVM running; a second supervisor
  then ran a second JVM with the same worker id, and both processed both shards from different
  checkpoints (940 of 18,000 records duplicated). Linux sends the signal when the *thread* that
  started the JVM ends: `run` keeps that thread alive for as long as the JVM lives.
- One supervisor per (application, worker id) on a machine: `WorkerLock`, an exclusive
  flock on a file holding the supervisor's pid, taken before the first start and held until
  exit (the kernel drops it when the process dies, however it dies). A second supervisor refuses
  to start and names the pid that holds it.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from domain.backoff import Backoff

_log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the thread that started it ends (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the process group and the lock still hold
        pass


def exit_reason(code: int) -> str:
    """Why the daemon ended, in words, from its exit status."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the JVM was killed by {name}"
    if code == 1:
        return "a record processor died (the daemon exits 1 when a child process dies)"
    if code == 0:
        return "the daemon exited cleanly"
    return f"the daemon exited {code} (a JVM failure: see its log above)"


class AlreadySupervised(RuntimeError):
    """Another live supervisor holds this worker id."""


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def default_lock_path(application: str, worker_id: str) -> Path:
    return (
        Path(tempfile.gettempdir())
        / "campaign-workers-kcl"
        / (f"{_safe(application)}--{_safe(worker_id)}.lock")
    )


@dataclass
class WorkerLock:
    """An exclusive, non-blocking flock on `path`, which holds the owner's pid."""

    path: Path
    _handle: IO[str] | None = field(default=None, init=False, repr=False)

    def acquire(self) -> WorkerLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise AlreadySupervised(
                f"another supervisor (pid {holder}) runs this worker id; its lock is {self.path}. "
                "Stop it first, or give this one another --worker-id."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> WorkerLock:
        return self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()


# Waits of up to 1, 2, 4 ... 60 s between restarts; the count is only a ceiling nobody reaches.
DEFAULT_RESTART_BACKOFF = Backoff(base_seconds=1.0, cap_seconds=60.0, retries=1_000_000)


@dataclass
class DaemonSupervisor:
    """Runs the daemon; restarts it (same workerId) whenever it exits non-zero."""

    command: Sequence[str]
    env: Mapping[str, str] | None = None
    restart_backoff: Backoff = DEFAULT_RESTART_BACKOFF
    healthy_seconds: float = 120.0
    give_up_after_seconds: float | None = None
    lock: WorkerLock | None = None
    stdout: IO[Any] | int | None = None
    stderr: IO[Any] | int | None = None
    clock: Callable[[], float] = time.monotonic
    on_start: Callable[[int], None] = lambda _pid: None
    # Sleeps between restarts, woken by stop(); True when stopped. Tests record the waits.
    wait_or_stop: Callable[[threading.Event, float], bool] = threading.Event.wait
    starts: int = 0
    exit_codes: list[int] = field(default_factory=list)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _mutex: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def run(self) -> int:
        """Supervises until the daemon exits 0, `stop()` is called, or (if set) it has been
        failing for `give_up_after_seconds`. Raises AlreadySupervised if the lock is held."""
        if self.lock is not None:
            self.lock.acquire()
        try:
            return self._supervise()
        finally:
            if self.lock is not None:
                self.lock.release()

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            list(self.command),
            env=dict(self.env) if self.env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=self.stdout,
            stderr=self.stderr,
            process_group=0,
            preexec_fn=die_with_parent,  # only a prctl between fork and exec: thread-safe
        )

    def _supervise(self) -> int:
        failing_since: float | None = None
        consecutive = 0
        while True:
            with self._mutex:
                if self._stopping.is_set():
                    return 0
                self._process = self._start()
                self.starts += 1
            started = self.clock()
            _log.info("daemon started (pid %d, start %d)", self._process.pid, self.starts)
            self.on_start(self._process.pid)
            # Waiting for the old JVM to be gone before starting the next one: two daemons
            # with one workerId would fight over the same leases.
            code = self._process.wait()
            self.exit_codes.append(code)
            if self._stopping.is_set():
                _log.info("daemon stopped on request (exit %d)", code)
                return code
            if code == 0:
                return 0
            now = self.clock()
            if now - started >= self.healthy_seconds:
                consecutive, failing_since = 0, None
            consecutive += 1
            failing_since = failing_since if failing_since is not None else started
            if (
                self.give_up_after_seconds is not None
                and now - failing_since >= self.give_up_after_seconds
            ):
                _log.error(
                    "daemon ended: %s; failing for %.0f s, over the %.0f s allowed: giving up",
                    exit_reason(code),
                    now - failing_since,
                    self.give_up_after_seconds,
                )
                return code
            wait = self.restart_backoff.delay(consecutive)
            _log.warning(
                "daemon ended after %.1f s: %s; restart %d in a row, in %.1f s",
                now - started,
                exit_reason(code),
                consecutive,
                wait,
            )
            if self.wait_or_stop(self._stopping, wait):
                return code

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM to the daemon (processors get shutdown_requested), then wait for it."""
        with self._mutex:
            self._stopping.set()
            process = self._process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            _log.error("daemon pid %d ignored SIGTERM for %.0f s; killing it", process.pid, timeout)
            os.killpg(process.pid, signal.SIGKILL)  # the JVM's group: its children too
            return process.wait()
