"""`python -m tests.support.pool_probe_main [--main-fn]`: maps tests/support/pool_probe.py's
`where` (or, with --main-fn, `where_here`, defined in this main module) over eight chunks on a
pool of two processes and prints the answers as JSON, with its own pid."""

from __future__ import annotations

import json
import os
import sys

from adapters.parallel import ProcessPoolChunkMapper
from tests.support.pool_probe import where


def where_here(ctx: object, chunk: int) -> dict[str, int]:
    """`where`, from the main module: pool processes must run this module to find it."""
    return where(ctx, chunk)


def main() -> int:
    fn = where_here if "--main-fn" in sys.argv else where
    results = list(ProcessPoolChunkMapper(processes=2).map(fn, None, range(8)))
    json.dump({"main": os.getpid(), "results": results}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
