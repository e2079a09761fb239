"""Which AWS endpoint the integration tier runs against.

By default the in-process emulator (moto's server on 127.0.0.1, started once per session). With
`CW_TEST_ENDPOINT=http://localhost:4566` the tier runs against that endpoint instead: docker
compose's moto service, or LocalStack itself (`docker compose --profile localstack up`). The
tests' own clients for it come from localstack-client's session; the code under test builds its
clients as in production, from `AWS_ENDPOINT_URL`, which the tests set to the same endpoint.

Tests that need the in-process server itself (its h2c door for the KCL, its backends, resets)
are skipped against an external endpoint: `ExternalEndpoint.server` says so.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from botocore.config import Config

if TYPE_CHECKING:
    from local.emulator import EmbeddedEmulator

ENDPOINT_VARIABLE = "CW_TEST_ENDPOINT"


@dataclass(frozen=True)
class ExternalEndpoint:
    """A LocalStack-compatible endpoint outside this process."""

    endpoint_url: str

    @property
    def server(self) -> Any:
        pytest.skip(f"needs the in-process emulator; {ENDPOINT_VARIABLE} points elsewhere")

    def reset(self) -> None:
        pytest.skip(f"cannot reset an external endpoint ({ENDPOINT_VARIABLE})")

    def client(self, service: str, **config: Any) -> Any:
        """A boto3 client through localstack-client's session (its test credentials)."""
        from localstack_client.session import Session

        parts = urlsplit(self.endpoint_url)
        session = Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            localstack_host=parts.netloc,
        )
        addressing = {"s3": {"addressing_style": "path"}} if service == "s3" else {}
        retries = {"total_max_attempts": config.pop("max_attempts", 3), "mode": "standard"}
        return session.client(service, config=Config(retries=retries, **addressing, **config))  # type: ignore[arg-type]


@contextmanager
def integration_endpoint(env: Mapping[str, str]) -> Iterator[EmbeddedEmulator | ExternalEndpoint]:
    """The endpoint `env` chooses: CW_TEST_ENDPOINT's, else a fresh in-process emulator."""
    url = env.get(ENDPOINT_VARIABLE, "").strip()
    if url:
        yield ExternalEndpoint(url.rstrip("/"))
        return
    # Imported here so unit tests never pay for importing moto.
    from local.emulator import EmbeddedEmulator

    with EmbeddedEmulator() as running:
        yield running
