"""`python -m tests.support.pool_probe_main`: maps tests/support/pool_probe.py's `where` over
eight chunks on a pool of two processes and prints the answers as JSON, with its own pid."""

from __future__ import annotations

import json
import os
import sys

from adapters.parallel import ProcessPoolChunkMapper
from tests.support.pool_probe import where


def main() -> int:
    results = list(ProcessPoolChunkMapper(processes=2).map(where, None, range(8)))
    json.dump({"main": os.getpid(), "results": results}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
