"""CW_TEST_ENDPOINT switches the integration tier to an external LocalStack-compatible endpoint.

The external endpoint here is a second moto server in a child process (its backends are its
own, unlike a second server in this process), standing in for docker compose's or LocalStack."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local.emulator import EmbeddedEmulator, EmulatorProcess
from tests.conftest import unique_name
from tests.support.endpoint import ENDPOINT_VARIABLE, ExternalEndpoint, integration_endpoint

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[EmulatorProcess]:
    with EmulatorProcess() as running:
        yield running


def buckets(client: Any) -> set[str]:
    return {b["Name"] for b in client.list_buckets()["Buckets"]}


def test_without_the_variable_the_tier_runs_the_in_process_emulator() -> None:
    with integration_endpoint({}) as chosen:
        assert isinstance(chosen, EmbeddedEmulator)
        assert chosen.endpoint_url.startswith("http://127.0.0.1:")


def test_the_variable_points_the_tests_clients_at_that_endpoint(
    elsewhere: EmulatorProcess, emulator: Any, s3_client: Any
) -> None:
    if isinstance(emulator, ExternalEndpoint):
        pytest.skip("the tier itself already runs against an external endpoint")
    with integration_endpoint({ENDPOINT_VARIABLE: elsewhere.endpoint_url + "/"}) as chosen:
        assert isinstance(chosen, ExternalEndpoint)
        assert chosen.endpoint_url == elsewhere.endpoint_url
        switched = chosen.client("s3")
        assert switched.meta.endpoint_url == elsewhere.endpoint_url
        name = unique_name("switched")

        switched.create_bucket(Bucket=name)

        assert name in buckets(switched)  # the external endpoint has it...
        assert name not in buckets(s3_client)  # ...and the in-process emulator does not
        kinesis = chosen.client("kinesis", max_attempts=1)
        assert kinesis.meta.config.retries["total_max_attempts"] == 1


def test_tests_that_need_the_in_process_server_skip_against_an_external_one() -> None:
    with pytest.raises(pytest.skip.Exception, match=ENDPOINT_VARIABLE):
        ExternalEndpoint("http://localhost:4566").server  # noqa: B018
