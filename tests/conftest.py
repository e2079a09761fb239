"""Shared fixtures. The embedded emulator is started once per test session, on demand.

Emulator fixtures (integration tests):
- `emulator`: a started EmbeddedEmulator (moto's server on 127.0.0.1, free port, Kinesis fix),
  or with CW_TEST_ENDPOINT=http://localhost:4566 that external LocalStack-compatible endpoint
  (tests/support/endpoint.py).
- `aws`: a ClientFactory pointed at it (test credentials; no real AWS reachable).
- `s3_client`, `kinesis_client`: boto3 clients on the emulator.
- `make_bucket()` / `make_stream(shards=1)`: create a uniquely named bucket / ACTIVE stream.
- `read_stream(name)`: every record of a stream, per shard in sequence order (GetRecords).
- `sqs_outage`: an OutageProxy in front of the emulator, down (refusing connections) until the
  test calls `.up()`; point AWS_ENDPOINT_URL_SQS at its `.url`.
Tests share one emulator, so they use unique names and never assume an empty backend.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

# No wall-clock deadline anywhere: these machines are shared and noisy, and a timing limit is a
# flaky test. print_blob lets a rare failure in CI's output be replayed exactly.
hypothesis_settings.register_profile(
    "suite",
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.load_profile("suite")

if TYPE_CHECKING:
    from adapters.aws.clients import ClientFactory
    from local.emulator import EmbeddedEmulator
    from tests.support.endpoint import ExternalEndpoint
    from tests.support.tcp_proxy import OutageProxy


def unique_name(prefix: str) -> str:
    """A fresh resource name (lowercase: valid as bucket and stream name)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmbeddedEmulator | ExternalEndpoint]:
    """The in-process emulator, or the endpoint CW_TEST_ENDPOINT names (support/endpoint.py)."""
    from tests.support.endpoint import integration_endpoint

    with integration_endpoint(os.environ) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def aws(emulator: EmbeddedEmulator | ExternalEndpoint) -> ClientFactory:
    from adapters.aws.clients import ClientFactory, ClientOptions

    return ClientFactory(ClientOptions(endpoint_url=emulator.endpoint_url, read_timeout=60.0))


def _test_client(emulator: Any, aws: ClientFactory, service: str, **config: Any) -> Any:
    from tests.support.endpoint import ExternalEndpoint

    if isinstance(emulator, ExternalEndpoint):
        return emulator.client(service, **config)
    return aws.client(service, **config)


@pytest.fixture(scope="session")
def s3_client(emulator: Any, aws: ClientFactory) -> Any:
    return _test_client(emulator, aws, "s3")


@pytest.fixture(scope="session")
def kinesis_client(emulator: Any, aws: ClientFactory) -> Any:
    # The producer owns Kinesis retries; botocore's would hide what it does.
    return _test_client(emulator, aws, "kinesis", max_attempts=1)


@pytest.fixture
def make_bucket(s3_client: Any) -> Callable[[], str]:
    def make() -> str:
        name = unique_name("bucket")
        s3_client.create_bucket(Bucket=name)
        return name

    return make


@pytest.fixture
def make_stream(kinesis_client: Any) -> Callable[..., str]:
    def make(shards: int = 1) -> str:
        name = unique_name("stream")
        kinesis_client.create_stream(StreamName=name, ShardCount=shards)
        kinesis_client.get_waiter("stream_exists").wait(
            StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
        )
        return name

    return make


@pytest.fixture
def read_stream(kinesis_client: Any) -> Callable[[str], dict[str, list[dict[str, Any]]]]:
    def read(name: str) -> dict[str, list[dict[str, Any]]]:
        shards = kinesis_client.list_shards(StreamName=name)["Shards"]
        by_shard: dict[str, list[dict[str, Any]]] = {}
        for shard in shards:
            iterator = kinesis_client.get_shard_iterator(
                StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            records: list[dict[str, Any]] = []
            while True:
                answer = kinesis_client.get_records(ShardIterator=iterator, Limit=10_000)
                records.extend(answer["Records"])
                if not answer["Records"]:
                    break
                iterator = answer["NextShardIterator"]
            by_shard[shard["ShardId"]] = records
        return by_shard

    return read


@pytest.fixture
def sqs_outage(emulator: Any) -> Iterator[OutageProxy]:
    from tests.support.tcp_proxy import OutageProxy

    host, port = emulator.endpoint_url.rsplit("//", 1)[1].split(":")
    proxy = OutageProxy(host, int(port)).up()
    proxy.down()  # down before the code under test starts
    yield proxy
    proxy.down()


@pytest.fixture
def s3_proxy(emulator: Any) -> Iterator[Any]:
    """The emulator's S3 behind a local proxy that injects faults (tests/support/http_server)."""
    from tests.support.http_server import running_server

    with running_server() as server:
        server.forward_to(emulator.endpoint_url)
        yield server


@pytest.fixture(autouse=True)
def _settings_read_afresh() -> Iterator[None]:
    """The job runtime reads Settings once per process; each test sets its own environment."""
    from entrypoints import runtime

    runtime.reset_settings()
    yield
    runtime.reset_settings()


@pytest.fixture(scope="session", params=["python", "rust"])
def lake_decoder(request: pytest.FixtureRequest) -> str:
    """The lake's Avro decoder for LakeEligibleFans, once per implementation: fastavro (the
    reference) and the compiled kernel's (adapters/avro_fans.py); a missing kernel as above."""
    if request.param == "rust":
        from tests.support.kernel import require_kernel

        require_kernel()
    return str(request.param)


@pytest.fixture(scope="session", params=["python", "rust"])
def chunk_transform(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """The scored-file transform, once per implementation: the Python one (the reference's
    column-at-a-time twin) and the compiled kernel's (docs/kernel.md). Under CI=true a missing
    kernel fails the kernel's runs; elsewhere they are skipped, saying why."""
    from domain.scoring.transform import transform_chunk

    if request.param == "python":
        return transform_chunk
    from adapters.row_kernel import kernel_transform_chunk
    from tests.support.kernel import require_kernel

    require_kernel()
    return kernel_transform_chunk
