"""The boto3 client factory's rules: which endpoints are local, what goes into the Config."""

from __future__ import annotations

import pytest

from adapters.aws.clients import ClientFactory, ClientOptions, is_local_endpoint


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:4566", True),
        ("http://localhost:4566", True),
        ("http://[::1]:5000", True),
        ("http://127.8.9.10:80", True),
        ("http://localstack:4566", True),
        ("http://s3.localhost:4566", True),
        ("https://kinesis.us-east-1.amazonaws.com", False),
        ("http://10.0.0.5:4566", False),
        ("http://localhost.example.com", False),
        (None, False),
        ("", False),
    ],
)
def test_is_local_endpoint(url: str | None, local: bool) -> None:
    assert is_local_endpoint(url) is local


def test_all_endpoints_local_needs_a_local_default_and_local_overrides() -> None:
    assert ClientOptions(endpoint_url="http://127.0.0.1:1").all_endpoints_local
    assert not ClientOptions().all_endpoints_local
    assert not ClientOptions(service_endpoints={"s3": "http://127.0.0.1:1"}).all_endpoints_local
    assert not ClientOptions(
        endpoint_url="http://127.0.0.1:1",
        service_endpoints={"kinesis": "https://kinesis.eu-west-1.amazonaws.com"},
    ).all_endpoints_local


def test_clients_get_timeouts_retry_mode_and_per_service_endpoints() -> None:
    factory = ClientFactory(
        ClientOptions(
            region="eu-west-1",
            endpoint_url="http://127.0.0.1:4566",
            service_endpoints={"kinesis": "http://127.0.0.1:4567"},
            connect_timeout=2.0,
            read_timeout=9.0,
            retry_mode="adaptive",
            max_attempts=4,
        )
    )
    s3 = factory.client("s3")
    kinesis = factory.client("kinesis", max_attempts=1)
    assert s3.meta.endpoint_url == "http://127.0.0.1:4566"
    assert kinesis.meta.endpoint_url == "http://127.0.0.1:4567"
    assert s3.meta.region_name == "eu-west-1"
    assert s3.meta.config.connect_timeout == 2.0 and s3.meta.config.read_timeout == 9.0
    assert s3.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 4}
    assert kinesis.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 1}
    assert s3.meta.config.s3 == {"addressing_style": "path"}
