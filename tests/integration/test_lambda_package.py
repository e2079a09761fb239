"""`make package`'s zip, unpacked into a clean virtual environment the way Lambda runs it: every
handler the registry names imports from it alone, and it holds nothing of development."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from entrypoints import registry

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
# Top-level names that must never ship: development libraries, our development package, tests.
FORBIDDEN = {"moto", "hypercorn", "rich", "localstack_client", "local", "tests", "benchmarks"}

IMPORT_EVERY_HANDLER = """
import importlib, json, sys
task, handlers = sys.argv[1], json.loads(sys.argv[2])
sys.path.insert(0, task)  # what Lambda does with /var/task
found = {}
for dotted in handlers:
    module, _, name = dotted.rpartition(".")
    found[dotted] = callable(getattr(importlib.import_module(module), name))
origins = {m: importlib.import_module(m).__file__ or "" for m in ("boto3", "orjson", "fastavro")}
print(json.dumps({"handlers": found, "origins": origins, "modules": sorted(sys.modules)}))
"""


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("package") / "campaign-workers-lambda.zip"
    subprocess.run(
        [sys.executable, ".ci/package_lambda.py", "--output", str(output), "--quiet"],
        cwd=ROOT,
        check=True,
    )
    return output


def test_the_package_holds_production_code_and_runtime_dependencies_only(package: Path) -> None:
    with zipfile.ZipFile(package) as archive:
        top = {name.split("/", 1)[0].split(".", 1)[0] for name in archive.namelist()}
    assert {"domain", "adapters", "streams", "entrypoints", "boto3", "orjson", "fastavro"} <= top
    assert top & FORBIDDEN == set()


def test_the_package_carries_bytecode_for_the_runtime_that_never_checks_a_timestamp(
    package: Path,
) -> None:
    # Lambda cannot write a cache into /var/task: without bytecode every cold start compiles
    # every module it imports (2.6 s against 1.3 s for all the workers' stacks).
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        compiled = archive.read("entrypoints/__pycache__/lambda_handlers.cpython-311.pyc")
    assert "boto3/__pycache__/__init__.cpython-311.pyc" in names
    # PEP 552 flags: 0b01 is hash-based and unchecked (no timestamp: the zip stays reproducible).
    assert int.from_bytes(compiled[4:8], "little") == 0b01


def test_the_package_holds_no_in_memory_or_fault_injecting_fake(package: Path) -> None:
    # The fakes live in tests/support/memory_*.py; one left in (or moved back to) a production
    # package would ship its `fail_next` switches to every worker.
    with zipfile.ZipFile(package) as archive:
        ours = [
            name
            for name in archive.namelist()
            if name.split("/", 1)[0] in {"domain", "adapters", "streams", "entrypoints", "tests"}
        ]
    assert ours, "the package holds none of our modules"
    assert not [name for name in ours if name.startswith("tests/")]
    assert not [name for name in ours if Path(name).name.startswith("memory")]


def test_every_registered_handler_imports_from_the_package_in_a_clean_environment(
    package: Path, tmp_path: Path
) -> None:
    task = tmp_path / "task"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(task)
    venv.create(tmp_path / "venv", with_pip=False)
    python = tmp_path / "venv" / "bin" / "python"
    handlers = sorted({worker.handler for worker in registry.WORKERS.values()})

    done = subprocess.run(
        [str(python), "-s", "-c", IMPORT_EVERY_HANDLER, str(task), json.dumps(handlers)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "AWS_REGION": "us-east-1"},
    )

    report = json.loads(done.stdout)
    assert report["handlers"] == dict.fromkeys(handlers, True)
    assert all(origin.startswith(str(task)) for origin in report["origins"].values()), report
    loaded_top = {name.split(".", 1)[0] for name in report["modules"]}
    assert loaded_top & FORBIDDEN == set()
