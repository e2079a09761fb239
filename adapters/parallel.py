"""An ordered process-pool ChunkMapper: the scored-file transform on several cores.

- The context (campaign, band scale, blacklist set, encoder) is installed once per worker
  process by the pool's initializer, not pickled with every chunk: a 100,000-entry blacklist
  would otherwise cross the pipe with every chunk.
- Results come back in input order; at most `max_in_flight` chunks are submitted and not yet
  consumed, so memory stays flat however long the input is (a slow consumer, such as the stream,
  holds the reader back instead of letting results pile up).
- Processes start with "forkserver" by default: forking a process that runs threads (boto3's
  pools, the in-process emulator) can deadlock the child; "fork" is accepted for speed where
  that cannot happen.
- The forkserver imports, once, the transform's and the context's modules; its pool processes
  are forked with them loaded, and do not run the program's main module. multiprocessing re-runs
  the main module in each child, for functions defined there: for the CLI or a benchmark that
  imported botocore and more, and with the transform's imports cost ~1-2 s of CPU a pool
  process a file (benchmarks/README.md). When the transform or its context does refer to the
  main module, the forkserver imports that once instead, and pool processes re-run it cheaply.
  The first pool of a process decides for its later ones (one forkserver a process).
- If the consumer stops early (an exception, a break), pending chunks are cancelled and the pool
  is shut down when the generator closes.
- Each worker process keeps the memory it frees (glibc's malloc told not to trim its heap nor to
  serve blocks below 64 MiB with mmap): by default every chunk's few MB of short-lived objects
  were page-faulted in afresh, measured at about one fault and 3-5 µs of system time per row,
  a fifth of the transform's cost. The heap then stays at what the in-flight chunks need.
- Not for AWS Lambda: its sandbox has no /dev/shm, so multiprocessing's semaphores (and with
  them ProcessPoolExecutor) fail there; use the domain's SequentialMapper in Lambda.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import pickle
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")

_installed: tuple[Callable[[Any, Any], Any], Any] | None = None

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MIB = 1 << 20


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory in this process (module docstring); False where
    there is no glibc mallopt (macOS, musl), which then run as they are."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    settings = (
        (_M_MMAP_THRESHOLD, 64 * _MIB),
        (_M_TRIM_THRESHOLD, 128 * _MIB),
        (_M_TOP_PAD, 16 * _MIB),
    )
    return all([mallopt(param, value) == 1 for param, value in settings])  # set all, then judge


# Read by adapters/forkserver_preload.py in the forkserver: the main module its pool processes
# need not run ("name:<module>" or "path:<file>").
MAIN_SKIPPED_ENV = "CAMPAIGN_WORKERS_POOL_MAIN_SKIPPED"


def _main_module() -> str | None:
    """The program's main module as multiprocessing would re-run it in each pool process
    ("name:..." for `python -m`, "path:..." for a script), or None when it would not (a
    package's `__main__`, which multiprocessing never re-runs, or an interactive session)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        return None if spec.name.endswith(".__main__") else f"name:{spec.name}"
    path = getattr(main, "__file__", None)
    return f"path:{os.path.normpath(path)}" if path else None


def uses_main(fn: Callable[..., Any], ctx: Any) -> bool:
    """Whether the transform or its context refers to something defined in the main module
    (pickle names it `__main__`): then pool processes must run the main module to find it."""
    return b"__main__" in pickle.dumps((fn, ctx))


def preload_modules(fn: Callable[..., Any], ctx: Any, *, with_main: bool) -> list[str]:
    """What the forkserver imports before forking pool processes (module docstring): the
    transform's and the context's modules, and the main module when the pool processes must run
    it (with_main). A package's `__main__` is left out, as multiprocessing leaves it: it may
    run the program when imported."""
    names: list[str] = ["adapters.forkserver_preload"]
    if with_main:
        names.append("__main__")  # a script run by path: multiprocessing preloads it
        main = _main_module()
        if main is not None and main.startswith("name:"):
            names.append(main.removeprefix("name:"))
    for module in (getattr(fn, "__module__", None), type(ctx).__module__):
        if module and module not in ("__main__", "builtins") and module not in names:
            names.append(module)
    return names


def _install(fn: Callable[[Any, Any], Any], ctx: Any) -> None:
    global _installed
    keep_freed_memory()
    _installed = (fn, ctx)


def _run(chunk: Any) -> Any:
    if _installed is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("chunk worker started without its context")
    fn, ctx = _installed
    return fn(ctx, chunk)


class ProcessPoolChunkMapper:
    def __init__(
        self,
        processes: int = 2,
        max_in_flight: int | None = None,
        start_method: str = "forkserver",
    ) -> None:
        if processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes}")
        self.processes = processes
        self.max_in_flight = max_in_flight or 4 * processes
        self.start_method = start_method

    def map(self, fn: Callable[[C, T], R], ctx: C, chunks: Iterable[T]) -> Iterator[R]:
        context = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            # Takes effect when this process's forkserver starts (its first pool): later files
            # reuse that server, with what it loaded then.
            with_main = uses_main(fn, ctx)
            main = None if with_main else _main_module()
            if main is not None:
                os.environ[MAIN_SKIPPED_ENV] = main
            else:  # not one inherited from a parent process that skipped its own main
                os.environ.pop(MAIN_SKIPPED_ENV, None)
            context.set_forkserver_preload(preload_modules(fn, ctx, with_main=with_main))
        pool = ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=context,
            initializer=_install,
            initargs=(fn, ctx),
        )
        pending: deque[Future[R]] = deque()
        try:
            for chunk in chunks:
                pending.append(pool.submit(_run, chunk))
                if len(pending) >= self.max_in_flight:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
