"""Says in one line what this machine lacks for the targets that need it, and exits 1 if anything.

    python3 .ci/check_prereqs.py python java maven     (what `make prereqs` runs)

What each name means: python, the interpreter running this (3.11+); java, a `java` on PATH of
version 17 or later (the KCL MultiLangDaemon's runtime); maven, an `mvn` on PATH (fetches the
daemon's jars). Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

MIN_PYTHON = (3, 11)
MIN_JAVA = 17


def python_missing() -> str | None:
    if sys.version_info < MIN_PYTHON:
        found = ".".join(map(str, sys.version_info[:3]))
        return f"Python 3.11+ (found {found} at {sys.executable}; set PYTHON=...)"
    return None


def java_version(output: str) -> int | None:
    """The major version in `java -version`'s output: '17.0.15' -> 17, '1.8.0_392' -> 8."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def java_missing() -> str | None:
    if shutil.which("java") is None:
        return "Java 17+ (no `java` on PATH; the KCL MultiLangDaemon runs on it)"
    done = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    version = java_version(done.stderr + done.stdout)
    if version is None or version < MIN_JAVA:
        return f"Java 17+ (`java -version` says {version or 'nothing readable'})"
    return None


def maven_missing() -> str | None:
    if shutil.which("mvn") is None:
        return "Maven (no `mvn` on PATH; it fetches the KCL daemon's jars)"
    return None


CHECKS = {"python": python_missing, "java": java_missing, "maven": maven_missing}


def main(names: list[str]) -> int:
    unknown = [name for name in names if name not in CHECKS]
    if unknown:
        print(f"check_prereqs: unknown prerequisite {', '.join(unknown)}", file=sys.stderr)
        return 2
    missing = [problem for name in names if (problem := CHECKS[name]()) is not None]
    if missing:
        print(f"missing prerequisites: {'; '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
