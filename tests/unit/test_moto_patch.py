"""The one fingerprinted patch every emulator fix uses: all or nothing, idempotent, and only
over the methods whose source it was written against."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from local.moto_patch import MotoPatch, fingerprint


def make_classes() -> dict[str, type]:
    class Backend:
        def get(self) -> str:
            return "stock get"

        def put(self) -> str:
            return "stock put"

    return {"Backend": Backend}


ORIGINALS = make_classes()["Backend"]
FINGERPRINTS = {
    "Backend.get": fingerprint(ORIGINALS.__dict__["get"]),
    "Backend.put": fingerprint(ORIGINALS.__dict__["put"]),
}


def ours(_self: Any) -> str:
    return "our get"


def logged(put: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda self: f"logged {put(self)}"


def patch(classes: Callable[[], dict[str, type]]) -> MotoPatch:
    return MotoPatch(
        "test",
        __name__,
        classes,
        fingerprints=FINGERPRINTS,
        replacements={"Backend.get": ours},
        wrappers={"Backend.put": logged},
    )


def test_replaces_and_wraps_each_method_once_however_often_applied() -> None:
    classes = make_classes()
    fix = patch(lambda: classes)
    assert fix.status().reason == "not attempted"
    for _ in range(3):
        assert fix.apply().applied
        assert fix.apply_to(classes).applied  # already ours: not wrapped twice
    backend = classes["Backend"]()
    assert (backend.get(), backend.put()) == ("our get", "logged stock put")
    assert fix.originals["Backend.get"](backend) == "stock get"
    assert fix.status().applied


def test_one_changed_method_leaves_every_method_stock() -> None:
    classes = make_classes()

    def put(self: Any) -> str:
        return "a newer moto's put"

    classes["Backend"].put = put  # type: ignore[attr-defined]
    status = patch(lambda: classes).apply()
    assert not status.applied
    assert "Backend.put differs" in status.reason and __name__ in status.reason
    backend = classes["Backend"]()
    assert (backend.get(), backend.put()) == ("stock get", "a newer moto's put")


def test_a_method_or_module_that_is_gone_is_named() -> None:
    assert "Backend.get is gone" in (patch(dict).check({"Backend": type("Empty", (), {})}) or "")

    def moved() -> dict[str, type]:
        raise ImportError("no module named moto.backend")

    status = patch(moved).apply()
    assert not status.applied and "no module named moto.backend" in status.reason


def test_every_replaced_method_needs_its_fingerprint() -> None:
    with pytest.raises(ValueError, match="fingerprint"):
        MotoPatch("test", __name__, dict, fingerprints={}, replacements={"Backend.get": ours})
