"""SCORING_KERNEL's choice, and CI's rule that the kernel tests fail (never skip) without it."""

from __future__ import annotations

import pytest

from adapters import row_kernel
from adapters.row_kernel import KernelNotBuilt, kernel_transform_chunk, transform_for
from domain.scoring.transform import transform_chunk
from entrypoints.settings import Settings
from tests.support import kernel as kernel_support


def _not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(row_kernel, "load_kernel", lambda: None)
    monkeypatch.setattr(kernel_support, "load_kernel", lambda: None)


def test_python_is_always_the_python_transform() -> None:
    assert transform_for("python") is transform_chunk


def test_auto_without_the_kernel_runs_the_python_transform(monkeypatch: pytest.MonkeyPatch) -> None:
    _not_built(monkeypatch)
    assert transform_for("auto") is transform_chunk


def test_rust_without_the_kernel_fails_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    _not_built(monkeypatch)
    with pytest.raises(KernelNotBuilt, match="SCORING_KERNEL=rust"):
        transform_for("rust")


def test_an_unknown_choice_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="SCORING_KERNEL must be one of auto, rust, python"):
        transform_for("fast")


def test_the_setting_defaults_to_auto_and_reads_scoring_kernel() -> None:
    assert Settings.from_env({}).scoring_kernel == "auto"
    assert Settings.from_env({"SCORING_KERNEL": " Python "}).scoring_kernel == "python"


def test_under_ci_a_missing_kernel_fails_the_kernel_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    _not_built(monkeypatch)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true but the compiled scoring kernel"):
        kernel_support.require_kernel()


def test_outside_ci_a_missing_kernel_skips_them_saying_why(monkeypatch: pytest.MonkeyPatch) -> None:
    _not_built(monkeypatch)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not built here"):
        kernel_support.require_kernel()


def test_auto_with_the_kernel_built_runs_the_kernel() -> None:
    kernel_support.require_kernel()
    assert transform_for("auto") is kernel_transform_chunk
    assert transform_for("rust") is kernel_transform_chunk
