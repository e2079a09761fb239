"""The README's settings table documents exactly the environment variables Settings reads."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from entrypoints.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
PER_SERVICE = "AWS_ENDPOINT_URL_<SERVICE>"


class RecordingEnvironment(Mapping[str, str]):
    """An empty environment that remembers every variable asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        raise KeyError(name)

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        self.asked.add(name)
        return default

    def __contains__(self, name: object) -> bool:
        self.asked.add(str(name))
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def read_by_settings() -> set[str]:
    env = RecordingEnvironment()
    Settings.from_env(env)
    return {PER_SERVICE if n.startswith("AWS_ENDPOINT_URL_") else n for n in env.asked}


def documented() -> set[str]:
    text = README.read_text(encoding="utf-8")
    table = text.split("### Settings (environment)", 1)[1].split("\n### ", 1)[0]
    names: set[str] = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_<>]*)`", line.split("|")[1]))
    return names


def test_every_setting_is_documented_and_nothing_else() -> None:
    read, docs = read_by_settings(), documented()
    assert {"USERS_TABLE", "CAMPAIGN_CONFIG_PREFIX", "WORKER", PER_SERVICE} <= read
    assert read - docs == set(), "read by Settings but not in the README's settings table"
    assert docs - read == set(), "in the README's settings table but not read by Settings"
