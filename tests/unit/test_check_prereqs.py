"""`make prereqs`: one line naming what is missing, before anything fails deep in a KCL test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "check_prereqs.py"


def run(names: list[str], path: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *names], capture_output=True, text=True, env=env, check=False
    )


def fake_tool(directory: Path, name: str, stderr: str = "") -> None:
    tool = directory / name
    tool.write_text(f"#!/bin/sh\necho '{stderr}' >&2\n", encoding="utf-8")
    tool.chmod(0o755)


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_392"', 8),
        ("no version here", None),
    ],
)
def test_java_versions_are_read_as_their_major_number(output: str, major: int | None) -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import check_prereqs
    finally:
        sys.path.remove(str(SCRIPT.parent))
    assert check_prereqs.java_version(output) == major


def test_nothing_missing_prints_nothing_and_exits_0(tmp_path: Path) -> None:
    fake_tool(tmp_path, "java", 'openjdk version "17.0.15" 2025-04-15')
    fake_tool(tmp_path, "mvn")
    done = run(["python", "java", "maven"], str(tmp_path))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_missing_java_and_maven_are_named_on_one_line(tmp_path: Path) -> None:
    done = run(["python", "java", "maven"], str(tmp_path))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert "Java 17+" in lines[0]
    assert "Maven" in lines[0]


def test_an_old_java_is_missing_java_17(tmp_path: Path) -> None:
    fake_tool(tmp_path, "java", 'java version "1.8.0_392"')
    fake_tool(tmp_path, "mvn")
    done = run(["java", "maven"], str(tmp_path))
    assert done.returncode == 1
    assert "Java 17+" in done.stderr
    assert "says 8" in done.stderr
    assert "Maven" not in done.stderr
