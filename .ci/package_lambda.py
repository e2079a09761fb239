"""Builds the Lambda deployment zip: the production packages and the runtime dependencies only.

    python .ci/package_lambda.py [--output dist/campaign-workers-lambda.zip]

For the Lambda Python 3.11 runtime on x86_64: the runtime dependencies of pyproject.toml's
`[project].dependencies` (never an extra: no moto, hypercorn, rich, localstack-client), at the
versions and hashes uv.lock holds, are installed for that platform from manylinux2014 wheels
(`--only-binary=:all:`, so nothing is compiled for this machine by mistake), beside the
packages domain/, adapters/, streams/ and entrypoints/ (never local/, tests/ or benchmarks/).
The zip is reproducible: sorted entries, fixed timestamps. It carries bytecode compiled by a
Python 3.11 (the runtime's version) as unchecked-hash .pyc files: they name no timestamp and no
build directory, and Lambda's read-only /var/task could never cache them itself (without them
every cold start compiled every module it imported: 2.6 s against 1.3 s). One package serves
every worker; the handler setting picks it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_PACKAGES = ("domain", "adapters", "streams", "entrypoints")
PLATFORM = "manylinux2014_x86_64"
PYTHON_VERSION = "3.11"
# Zip timestamps cannot be earlier than 1980; a fixed one makes the zip's bytes reproducible.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# The checkout's own __pycache__ (timestamped, this machine's paths) never ships; the zip's
# bytecode is compiled afresh in the staging directory.
SKIPPED = {"__pycache__"}
# Where Lambda unpacks the zip: the path compiled into each .pyc (tracebacks name it).
TASK_ROOT = "/var/task"
# Modules no worker imports stay source only (their bytecode would add ~7 MiB to the zip for
# nothing): the dependencies' test suites, phonenumbers' geocoder, carrier and time-zone data.
NOT_COMPILED = r"/tests?/|/phonenumbers/(geodata|carrierdata|tzdata)/"
# Console scripts of the dependencies: nothing in Lambda runs them.
SKIPPED_TOP = {"bin"}
# The compiled scoring kernel (docs/kernel.md), when a wheel the Lambda runtime can load was
# built (Amazon Linux 2: glibc 2.26, so manylinux2014; `make install` builds into
# dist/kernel-host/ for this machine's glibc, which Lambda cannot load): `make kernel-lambda`
# (maturin + zig) writes one here.
KERNEL_WHEELS = ROOT / "dist" / "kernel"
LAMBDA_WHEEL_TAGS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64")


def locked_runtime_requirements(directory: Path) -> Path:
    """`[project].dependencies` and everything they pull in, at the versions and with the
    hashes of uv.lock (no extra: the Lambda package never holds the cli, local or dev ones), so
    the zip holds what the tests ran against, on any later day."""
    uv = shutil.which("uv", path=str(ROOT / ".tools" / "bin")) or shutil.which("uv")
    if uv is None:
        raise SystemExit("uv not found: run `make package` (it installs uv into .tools/)")
    path = directory / "requirements.txt"
    command = [uv, "export", "--quiet", "--frozen", "--no-dev", "--no-emit-project",
               "--format", "requirements-txt", "--output-file", str(path)]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT)
    return path


def install_dependencies(target: Path, requirements: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--no-deps",
        "--require-hashes",
        "--target",
        str(target),
        "--platform",
        PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        "-r",
        str(requirements),
    ]
    subprocess.run(command, check=True)


def runtime_python() -> str | None:
    """An interpreter of the runtime's version: bytecode is version-specific (a 3.12 .pyc is
    ignored by 3.11, and the import compiles again)."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == PYTHON_VERSION:
        return sys.executable
    return shutil.which(f"python{PYTHON_VERSION}")


def compile_bytecode(staging: Path) -> bool:
    python = runtime_python()
    if python is None:
        print(f"no python{PYTHON_VERSION} here: the zip ships without bytecode (slow cold starts)")
        return False
    command = [python, "-m", "compileall", "-q", "-j", "0",
               "--invalidation-mode", "unchecked-hash",  # no timestamp: reproducible
               "-x", NOT_COMPILED,
               "-s", str(staging), "-p", TASK_ROOT, str(staging)]  # fmt: skip
    # A fixed hash seed: set and frozenset constants are marshalled in iteration order.
    subprocess.run(command, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    return True


def add_kernel(staging: Path, wheels: Path = KERNEL_WHEELS) -> str:
    """The kernel's module into the package when a Lambda-loadable wheel was built; what was
    done, in one line (without it the workers run the Python transform: SCORING_KERNEL=auto)."""
    fitting = [
        wheel
        for wheel in sorted(wheels.glob("scoring_kernel-*.whl"))
        if any(tag in wheel.name for tag in LAMBDA_WHEEL_TAGS)
    ]
    if not fitting:
        return (
            "no manylinux2014 scoring kernel wheel in dist/kernel: the zip runs the Python "
            "transform (make kernel-lambda builds one, docs/kernel.md)"
        )
    with zipfile.ZipFile(fitting[-1]) as wheel:
        for name in wheel.namelist():
            if not name.split("/")[0].endswith(".dist-info"):
                wheel.extract(name, staging)
    return f"scoring kernel included: {fitting[-1].name}"


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).parts
        if path.is_file() and relative[0] not in SKIPPED_TOP:
            yield path


def build(output: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="lambda-package-") as scratch:
        staging = Path(scratch) / "package"
        install_dependencies(staging, locked_runtime_requirements(Path(scratch)))
        for package in PRODUCTION_PACKAGES:
            ignore = shutil.ignore_patterns(*SKIPPED, "*.pyc")
            shutil.copytree(ROOT / package, staging / package, ignore=ignore)
        print(add_kernel(staging))
        compile_bytecode(staging)
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_suffix(".tmp")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in _files(staging):
                entry = zipfile.ZipInfo(path.relative_to(staging).as_posix(), FIXED_TIME)
                entry.compress_type = zipfile.ZIP_DEFLATED
                entry.external_attr = 0o644 << 16
                archive.writestr(entry, path.read_bytes())
        partial.replace(output)  # a half-written zip is never mistaken for the package
    return output


def main() -> int:
    parser = argparse.ArgumentParser(prog="python .ci/package_lambda.py")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "dist" / "campaign-workers-lambda.zip"
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    built = build(args.output)
    if not args.quiet:
        print(f"{built} ({built.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
