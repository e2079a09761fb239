"""The pool mapper's forkserver loads the transform's modules once, and its pool processes are
forked with them and do not run the program's main module (adapters/parallel.py): each pool
process used to import the transform and re-run the main module itself, ~1-2 s of CPU a
process a file (benchmarks/README.md)."""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
import types
from typing import Any

import pytest

from adapters.parallel import MAIN_SKIPPED_ENV, preload_modules
from tests.support.pool_probe import where


def _probe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # A process of its own: a forkserver is one per process, started with the first pool, and
    # this suite's other pools would have started it with other modules.
    return subprocess.run(
        [sys.executable, "-m", "tests.support.pool_probe_main", *args],
        env=None if env is None else {**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def probe() -> subprocess.CompletedProcess[str]:
    return _probe()


def _results(probe: subprocess.CompletedProcess[str]) -> tuple[int, list[dict[str, int]]]:
    answer: dict[str, Any] = json.loads(probe.stdout)
    results = answer["results"]
    assert [r["chunk"] for r in results] == list(range(8))
    return answer["main"], results


def test_pool_processes_run_the_transform_imported_once_before_they_were_forked(
    probe: subprocess.CompletedProcess[str],
) -> None:
    main, results = _results(probe)
    imported_in = {r["imported_in"] for r in results}
    ran_in = {r["ran_in"] for r in results}
    assert len(imported_in) == 1, "every pool process was forked from one loaded server"
    assert imported_in.isdisjoint(ran_in), "a pool process imported the transform itself"
    assert imported_in != {main}


def test_pool_processes_do_not_run_the_main_module_when_the_transform_is_not_from_it(
    probe: subprocess.CompletedProcess[str],
) -> None:
    _, results = _results(probe)
    assert {r["ran_main"] for r in results} == {0}


def test_a_transform_from_the_main_module_still_runs_on_the_pool() -> None:
    probe = _probe("--main-fn")
    _, results = _results(probe)
    assert {r["ran_main"] for r in results} == {1}
    assert "Warning" not in probe.stderr, probe.stderr


def test_a_transform_from_the_main_module_runs_under_a_parent_that_skipped_its_main() -> None:
    # The parent's setting is in the environment the probe inherits; it is not the probe's.
    inherited = {MAIN_SKIPPED_ENV: "name:tests.support.pool_probe_main"}
    _, results = _results(_probe("--main-fn", env=inherited))
    assert {r["ran_main"] for r in results} == {1}


def test_pool_processes_write_no_warning(probe: subprocess.CompletedProcess[str]) -> None:
    assert "Warning" not in probe.stderr, probe.stderr


def test_a_packages_main_module_is_not_loaded_ahead_as_it_may_run_the_program(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    main = types.ModuleType("__main__")
    main.__spec__ = importlib.machinery.ModuleSpec("tool.__main__", None)
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert "tool.__main__" not in preload_modules(where, None, with_main=True)
    main.__spec__ = importlib.machinery.ModuleSpec("tool.cli", None)
    assert "tool.cli" in preload_modules(where, None, with_main=True)
    assert "tool.cli" not in preload_modules(where, None, with_main=False)
