"""docker-compose.yml's contents (no Docker engine on the build machines to run it)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def pinned_moto_version() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [d for d in project["project"]["optional-dependencies"]["local"] if d.startswith("moto")]
    match = re.fullmatch(r"moto(\[[^\]]*\])?==(?P<version>[\w.]+)", pins[0])
    assert match, pins
    return match["version"]


def test_the_projects_own_emulator_is_the_default_service_on_4566() -> None:
    emulator = compose()["services"]["emulator"]
    assert emulator["build"] == "."
    assert "profiles" not in emulator, "it must start with a plain `docker compose up`"
    assert emulator["ports"] == ["127.0.0.1:4566:4566"]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    # The image installs exactly the lock's `local` extra, with the pinned uv, as `make` does.
    assert "-r .ci/uv.txt" in dockerfile and "--require-hashes" in dockerfile
    assert "uv sync --quiet --frozen --extra local" in dockerfile
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    assert '"emulator", "--host", "0.0.0.0", "--port", "4566"' in cmd


def test_stock_moto_is_optional_on_4566_at_the_pinned_version() -> None:
    moto = compose()["services"]["moto"]
    assert moto["image"] == f"motoserver/moto:{pinned_moto_version()}"
    assert moto["profiles"] == ["moto"]
    host_ports = [port.rsplit(":", 1)[0] for port in moto["ports"]]
    assert host_ports == ["127.0.0.1:4566"]
    container_port = moto["ports"][0].rsplit(":", 1)[1]
    assert moto["environment"]["MOTO_PORT"] == container_port


def test_localstack_is_optional_and_takes_its_token_from_the_environment() -> None:
    localstack = compose()["services"]["localstack"]
    assert localstack["image"].startswith("localstack/localstack:")
    assert localstack["profiles"] == ["localstack"]
    assert localstack["ports"] == ["127.0.0.1:4566:4566"]
    token = localstack["environment"]["LOCALSTACK_AUTH_TOKEN"]
    assert token.startswith("${LOCALSTACK_AUTH_TOKEN"), "never a literal token in the file"
    services = set(localstack["environment"]["SERVICES"].split(","))
    assert {"s3", "kinesis", "sqs", "dynamodb"} <= services


def test_every_published_port_is_bound_to_loopback() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} to the network"
