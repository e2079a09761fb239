"""boto3 clients from plain arguments (bootstrap maps Settings onto these).

One botocore session per factory (creating sessions is slow: ~50 ms each), clients made on
demand with explicit timeouts and retry mode, so a hung endpoint fails in seconds instead of
botocore's 60 s default read timeout.

Local endpoints: when every endpoint in use is on this machine (the embedded emulator, a
LocalStack/moto container on localhost) and no credentials are configured, fixed test
credentials are used. The instance-metadata lookups are skipped for them too; otherwise a run
on a laptop waits ~2 s for IMDS timeouts before failing with NoCredentialsError.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import boto3
import botocore.session
from botocore.config import Config

RetryMode = Literal["standard", "adaptive", "legacy"]

TEST_CREDENTIALS = ("testing", "testing")
LOCAL_HOSTNAMES = frozenset({"localhost", "localhost.localdomain", "localstack", "moto"})


def is_local_endpoint(url: str | None) -> bool:
    """True for http(s)://localhost, loopback addresses and the compose services' names."""
    if not url:
        return False
    host = (urlsplit(url).hostname or "").lower()
    if host in LOCAL_HOSTNAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ClientOptions:
    region: str = "us-east-1"
    endpoint_url: str | None = None
    # per-service overrides, keyed by boto3 service name ("s3", "kinesis", ...)
    service_endpoints: Mapping[str, str] = field(default_factory=dict)
    # The one retry layer of an AWS call (issue 6: retries multiplied across layers): botocore's
    # standard mode, 3 tries in all (its own default), exponential backoff with jitter on
    # throttling, 5xx and connection errors. Adapters resend only the failed entries of a
    # partial batch; runtimes bound a batch by a wall-clock deadline, never by another loop.
    # A hung endpoint costs at most 3 x (5 s connect + 30 s read) per call.
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retry_mode: RetryMode = "standard"
    max_attempts: int = 3  # tries in all, the first included (1 = no botocore retries)
    max_pool_connections: int = 10

    def endpoint_for(self, service: str) -> str | None:
        return self.service_endpoints.get(service) or self.endpoint_url

    @property
    def all_endpoints_local(self) -> bool:
        endpoints = [self.endpoint_url, *self.service_endpoints.values()]
        # With no default endpoint, unlisted services go to real AWS: not local.
        return self.endpoint_url is not None and all(is_local_endpoint(e) for e in endpoints)


class ClientFactory:
    """Makes boto3 clients sharing one session; `client("s3")`, `client("kinesis", ...)`."""

    def __init__(self, options: ClientOptions | None = None) -> None:
        self.options = options or ClientOptions()
        self.session = _session_for(self.options)
        # One client per (service, config) for the factory's life: a client costs ~20-50 ms
        # and its connection pool is what a warm Lambda should reuse. boto3 clients are
        # thread-safe; the session that makes them is not, hence the lock.
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def config(self, **overrides: Any) -> Config:
        o = self.options
        # total_max_attempts counts the first try (like AWS_MAX_ATTEMPTS); botocore's own
        # "max_attempts" key counts only retries, an off-by-one that bit us once.
        retries: Any = {
            "mode": overrides.pop("retry_mode", o.retry_mode),
            "total_max_attempts": overrides.pop("max_attempts", o.max_attempts),
        }
        settings: dict[str, Any] = {
            "region_name": o.region,
            "connect_timeout": o.connect_timeout,
            "read_timeout": o.read_timeout,
            "retries": retries,
            "max_pool_connections": o.max_pool_connections,
        }
        settings.update(overrides)
        return Config(**settings)

    def client(self, service: str, **config_overrides: Any) -> Any:
        """A client for `service`; keyword overrides go into its botocore Config, e.g.
        `client("kinesis", max_attempts=1)` when the caller owns the retries. Made once per
        distinct (service, overrides) and reused."""
        key = (service, repr(sorted(config_overrides.items())))
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._new_client(service, **config_overrides)
            return self._clients[key]

    def _new_client(self, service: str, **config_overrides: Any) -> Any:
        endpoint = self.options.endpoint_for(service)
        if service == "s3" and is_local_endpoint(endpoint):
            # Virtual-hosted bucket names (bucket.127.0.0.1) do not resolve locally.
            config_overrides.setdefault("s3", {"addressing_style": "path"})
        return self.session.client(
            service,
            region_name=self.options.region,
            endpoint_url=endpoint,
            config=self.config(**config_overrides),
        )


def _session_for(options: ClientOptions) -> boto3.session.Session:
    core = botocore.session.get_session()
    if options.all_endpoints_local:
        resolver = core.get_component("credential_provider")
        for metadata_provider in ("container-role", "iam-role"):
            resolver.remove(metadata_provider)
        if resolver.load_credentials() is None:
            core.set_credentials(*TEST_CREDENTIALS)
    return boto3.session.Session(botocore_session=core, region_name=options.region)


def make_client(service: str, options: ClientOptions | None = None, **config: Any) -> Any:
    """One-off client (tests, scripts). Long-lived code should keep a ClientFactory."""
    return ClientFactory(options).client(service, **config)
