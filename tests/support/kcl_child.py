"""The KCL child for tests: the production record-processor runtime serving test probe workers.

    python -m tests.support.kcl_child <probe> --stream NAME

Production's child (`entrypoints.kcl_main`) serves only the registry's workers; the probes the
daemon tests need (fault hooks, a file probe that writes to stdout) live here, in tests/, and go
through the same `entrypoints.kcl_main.serve`.
`entrypoints.kcl.properties.daemon_config(..., child_main=MODULE)` points the daemon here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence

from domain.ports import StreamWorker
from entrypoints.kcl_main import serve
from entrypoints.settings import Settings
from tests.support import kcl_lake, kcl_probe, stream_fakes

MODULE = "tests.support.kcl_child"

PROBES: Mapping[str, Callable[[Settings], StreamWorker]] = {
    "probe": kcl_probe.build,
    "lake": kcl_lake.build,
    "file_probe": stream_fakes.build_file_probe,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}")
    parser.add_argument("probe", choices=sorted(PROBES))
    parser.add_argument("--stream", required=True)
    args = parser.parse_args(argv)
    stream: str = args.stream
    return serve(args.probe, PROBES[args.probe], lambda _settings: stream)


if __name__ == "__main__":
    sys.exit(main())
