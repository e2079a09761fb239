"""The lock check: a pyproject.toml that uv.lock does not match stops `make` with one clear line.

Runs the Makefile's own `lock-check` target with the project's pinned uv on a copy of
pyproject.toml and uv.lock, as a change that adds a dependency without `make lock` leaves them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".tools" / "bin" / "uv"


def lock_check(project: Path) -> subprocess.CompletedProcess[str]:
    # -o: take the project's uv as made; the copy must not bootstrap a second one.
    command = ["make", "--no-print-directory", "-o", str(UV), f"UV={UV}", "lock-check"]
    return subprocess.run(command, cwd=project, capture_output=True, text=True, check=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    if not UV.exists():
        pytest.skip("uv is installed by the Makefile into .tools/ (run make install)")
    for name in ("Makefile", "pyproject.toml", "uv.lock", "README.md"):
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def test_the_committed_lock_matches_pyproject(project: Path) -> None:
    done = lock_check(project)
    assert done.returncode == 0, done.stderr


def test_a_dependency_added_without_locking_fails_the_check_and_says_what_to_do(
    project: Path,
) -> None:
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pinned = '    "orjson==3.13.0",\n'
    assert pinned in text
    pyproject.write_text(text.replace(pinned, pinned + '    "six==1.16.0",\n'), "utf-8")
    done = lock_check(project)
    assert done.returncode != 0
    assert "uv.lock does not match pyproject.toml" in done.stderr
    assert "make lock" in done.stderr
    # The copy's lock was only read: checking never rewrites it.
    assert (project / "uv.lock").read_bytes() == (ROOT / "uv.lock").read_bytes()
