"""A chunk function for the pool mapper's preload test (tests/unit/test_parallel_preload.py):
it says where its module was imported and where it ran (tests/support/pool_probe_main.py maps
it on a pool). A function of the main module itself would be re-run there in each pool process
(multiprocessing's `__mp_main__`), so it lives here."""

from __future__ import annotations

import os
import sys

IMPORTED_IN = os.getpid()


def where(ctx: object, chunk: int) -> dict[str, int]:
    """The pool process running the chunk, the process that imported this module, and whether
    the pool process ran the program's main module (multiprocessing's `__mp_main__`)."""
    return {
        "chunk": chunk,
        "ran_in": os.getpid(),
        "imported_in": IMPORTED_IN,
        "ran_main": int(sys.modules["__main__"].__name__ == "__mp_main__"),
    }
