"""The Lambda zip takes the compiled kernel only from a wheel the Lambda runtime can load."""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _package_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "package_lambda", ROOT / ".ci" / "package_lambda.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["package_lambda"] = module
    spec.loader.exec_module(module)
    return module


def _wheel(directory: Path, name: str) -> None:
    with zipfile.ZipFile(directory / name, "w") as wheel:
        wheel.writestr("scoring_kernel/__init__.py", "")
        wheel.writestr("scoring_kernel/scoring_kernel.abi3.so", b"\x7fELF")
        wheel.writestr("scoring_kernel-0.1.0.dist-info/METADATA", "")


def test_a_manylinux2014_kernel_wheel_goes_into_the_zip(tmp_path: Path) -> None:
    wheels, staging = tmp_path / "wheels", tmp_path / "staging"
    wheels.mkdir()
    _wheel(wheels, "scoring_kernel-0.1.0-cp311-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    said = _package_script().add_kernel(staging, wheels)
    assert said.startswith("scoring kernel included")
    assert (staging / "scoring_kernel" / "scoring_kernel.abi3.so").exists()
    assert not (staging / "scoring_kernel-0.1.0.dist-info").exists()


def test_a_wheel_for_this_machines_newer_glibc_stays_out_saying_so(tmp_path: Path) -> None:
    wheels, staging = tmp_path / "wheels", tmp_path / "staging"
    wheels.mkdir()
    _wheel(wheels, "scoring_kernel-0.1.0-cp311-abi3-manylinux_2_34_x86_64.whl")
    said = _package_script().add_kernel(staging, wheels)
    assert "runs the Python transform" in said
    assert not staging.exists()
