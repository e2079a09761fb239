"""The worker registry: one entry per worker, each findable by every runtime, built once."""

from __future__ import annotations

import importlib

import pytest

from entrypoints import bootstrap, registry
from entrypoints.settings import Settings, SettingsError

# Endpoints on this machine, fixed credentials and queue URLs (not names, which are looked up):
# building the workers talks to nothing.
LOCAL = Settings.from_env(
    {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_REGION": "us-east-1",
        "DEAD_LETTER_QUEUE": "http://127.0.0.1:9/000000000000/dlq",
        "VERDICT_QUEUE": "http://127.0.0.1:9/000000000000/verdicts",
    }
)


def test_names_are_unique_across_kinds() -> None:
    names = [w.name for w in (*registry.STREAM_WORKERS, *registry.JOBS)]
    assert len(names) == len(set(names)) == len(registry.WORKERS)


def test_every_handler_a_worker_names_exists() -> None:
    for worker in registry.WORKERS.values():
        module, _, attribute = worker.handler.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attribute)), worker.name


def test_every_stream_worker_consumes_a_stream_settings_name() -> None:
    settings = Settings()
    for worker in registry.STREAM_WORKERS:
        assert isinstance(worker.trigger, registry.KinesisStream), worker.name
        assert registry.stream_of(worker.name, settings) == getattr(settings, worker.trigger.stream)
    assert registry.stream_of("save_selection", settings) == settings.save_selection_stream


def test_every_worker_lists_the_aws_actions_it_needs() -> None:
    for worker in registry.WORKERS.values():
        assert worker.actions, worker.name
        assert all(":" in action for action in worker.actions), worker.name


def test_an_unknown_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(registry.UnknownWorker, match=r"'nope'.*save_selection"):
        registry.stream_worker("nope", LOCAL)
    # A file worker is not a stream worker.
    with pytest.raises(registry.UnknownWorker, match="process_scored_files"):
        registry.stream_of("process_scored_files", LOCAL)


def test_settings_carry_the_worker_a_function_runs() -> None:
    assert Settings.from_env({"WORKER": " save_selection "}).worker == "save_selection"
    assert Settings.from_env({}).worker is None


@pytest.mark.parametrize("name", [w.name for w in registry.STREAM_WORKERS])
def test_a_stream_worker_is_built_once_per_process(name: str) -> None:
    first = registry.stream_worker(name, LOCAL)
    assert first.name == name
    assert registry.stream_worker(name, LOCAL) is first


def test_the_scored_file_run_is_built_once_per_process() -> None:
    run = registry.run_of("process_scored_files", LOCAL)
    assert run is registry.run_of("process_scored_files", LOCAL)


def test_one_producer_per_stream_and_one_client_per_service() -> None:
    c = bootstrap.container(LOCAL)
    assert c.stream("a") is c.stream("a")
    assert c.stream("a") is not c.stream("b")
    assert c.aws.client("s3") is c.aws.client("s3")
    assert c.aws.client("kinesis", max_attempts=1) is not c.aws.client("kinesis")


@pytest.mark.parametrize(
    ("setting", "request_kind"), [("", "LeanPutRecords"), ("botocore", "_DeadlineClient")]
)
def test_the_producer_builds_its_request_as_kinesis_put_request_says(
    setting: str, request_kind: str
) -> None:
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "us-east-1"}
    settings = Settings.from_env({**env, "KINESIS_PUT_REQUEST": setting} if setting else env)
    producer = bootstrap.container(settings).stream("scored")
    assert type(producer.client).__name__ == request_kind  # type: ignore[attr-defined]


def test_an_unknown_kinesis_put_request_is_refused_naming_the_setting() -> None:
    settings = Settings.from_env(
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "KINESIS_PUT_REQUEST": "x"}
    )
    with pytest.raises(SettingsError, match="KINESIS_PUT_REQUEST must be lean or botocore"):
        bootstrap.container(settings).stream("scored")


def test_the_readme_deployment_table_is_the_registrys() -> None:
    from pathlib import Path

    from entrypoints.deployment import BEGIN, END, deployment_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    assert readme[start:end] == deployment_table(), "run python -m entrypoints.deployment README.md"


@pytest.mark.parametrize(
    ("setting", "client_kind"), [("", "LeanJsonHttpClient"), ("aiohttp", "AsyncJsonHttpClient")]
)
def test_pacman_calls_go_over_the_transport_pacman_transport_says(
    setting: str, client_kind: str
) -> None:
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "PACMAN_URL": "http://127.0.0.1:9"}
    settings = Settings.from_env({**env, "PACMAN_TRANSPORT": setting} if setting else env)
    issuer = bootstrap.container(settings).code_issuer
    try:
        assert type(issuer._client).__name__ == client_kind  # type: ignore[attr-defined]
    finally:
        issuer.close()  # type: ignore[attr-defined]


def test_an_unknown_pacman_transport_is_refused_naming_the_setting() -> None:
    settings = Settings.from_env(
        {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "PACMAN_URL": "http://x",
            "PACMAN_TRANSPORT": "x",
        }
    )
    with pytest.raises(SettingsError, match="PACMAN_TRANSPORT must be lean or aiohttp"):
        _ = bootstrap.container(settings).code_issuer
