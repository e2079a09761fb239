"""A Lambda handler imports only its own worker's stack (issue 21): a cold start that imported
every worker's (boto3, aiohttp, fastavro, numpy) took 2.6 s. Each check runs in a fresh
interpreter, since this test process has imported everything already."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from entrypoints import registry

# Another worker's heavy stack: numpy is the merge's alone, aiohttp Pacman's, fastavro the lake's,
# phonenumbers (~400 ms uncompiled) the scrubbing's and the send's.
HEAVY = ("numpy", "aiohttp", "fastavro", "phonenumbers")
# The lake's own modules (domain.lake is not one: the ports name its values).
LAKE = (
    "adapters.avro",
    "adapters.aws.lake",
    "adapters.lake_compactor",
    "adapters.lake_keys",
    "adapters.lake_sidecar",
    "entrypoints.lake",
    "domain.workers.merge_avro_files",
    "domain.workers.move_merged_avro_files",
)

# Resolves the handler attribute (what Lambda's runtime does at init), then optionally builds
# the worker (what its first invocation does), reporting which watched modules each step loaded.
RESOLVE_THEN_BUILD = """
import json, sys
watched = json.loads(sys.argv[3])
def loaded():
    return sorted(m for m in watched if m in sys.modules)
import entrypoints.lambda_handlers as handlers
getattr(handlers, sys.argv[1])
report = {"resolved": loaded()}
if sys.argv[2]:
    from entrypoints import registry
    from entrypoints.settings import Settings
    local = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "us-east-1"}
    settings = Settings.from_env(local)
    registry.run_of(sys.argv[2], settings)
    report["built"] = loaded()
print(json.dumps(report))
"""


def _imports(handler: str, build: str = "") -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", RESOLVE_THEN_BUILD, handler, build, json.dumps([*HEAVY, *LAKE])],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "AWS_REGION": "us-east-1"},
    )
    report: dict[str, list[str]] = json.loads(done.stdout)
    return report


HANDLERS = sorted(
    {w.handler.rpartition(".")[2] for w in registry.WORKERS.values()}
    | {f"{w.name}_handler" for w in registry.JOBS}
)


@pytest.mark.parametrize("handler", HANDLERS)
def test_resolving_any_handler_imports_no_workers_heavy_stack(handler: str) -> None:
    assert _imports(handler)["resolved"] == []


def test_the_scheduled_wave_handler_built_imports_neither_numpy_aiohttp_fastavro_nor_the_lake() -> (
    None
):
    report = _imports("process_scheduled_wave_handler", build="process_scheduled_wave")
    assert report == {"resolved": [], "built": []}


def test_the_merge_imports_numpy_only_when_built() -> None:
    report = _imports("merge_avro_files_handler", build="merge_avro_files")
    assert report["resolved"] == []
    assert "numpy" in report["built"]
    assert "adapters.lake_compactor" in report["built"]
