"""LakeEligibleFans' decoder choice (SCORING_KERNEL): a wrong name or a missing kernel says so."""

from __future__ import annotations

import pytest

from adapters.aws import lake_fans
from adapters.aws.lake_fans import DecoderNotBuilt, LakeEligibleFans
from tests.support.memory_objects import InMemoryObjectStore


def test_an_unknown_decoder_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="auto, rust, python, not 'java'"):
        LakeEligibleFans(InMemoryObjectStore(), "b", decoder="java")


def test_the_rust_decoder_where_the_kernel_is_not_built_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lake_fans, "load_decoder", lambda: None)  # a machine without cargo
    with pytest.raises(DecoderNotBuilt, match="make install"):
        LakeEligibleFans(InMemoryObjectStore(), "b", decoder="rust")
    LakeEligibleFans(InMemoryObjectStore(), "b", decoder="auto")  # auto: fastavro, no error
