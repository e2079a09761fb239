"""boto3 clients from plain arguments (bootstrap maps Settings onto these).

One botocore session per factory (creating sessions is slow: ~50 ms each), clients made on
demand with explicit timeouts and retry mode, so a hung endpoint fails in seconds instead of
botocore's 60 s default read timeout.

Deadlines: `client()` hands out a client that fits each call into the work's deadline
(adapters/deadline.py). While the deadline leaves room for a whole call (max_attempts x
(connect + read)), calls go to the client as configured; when it leaves less, to a client of
the same service from a small set of timeout buckets (BUCKETS: read and connect timeouts of
0.5 .. 20 s, max_attempts cut so attempts x 2 x bucket fits the time left). A client per bucket,
made on first use and kept: botocore reads its timeouts and retry count from the client's
Config when the client is made (urllib3 pool, retry handler), so a per-call override would
mean a client per call (~15 ms each, measured) or patching botocore internals.

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

from adapters import deadline as deadlines

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


# Read (and connect) timeouts of the clients that fit a short deadline: few, so few clients.
BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0)


def bucket_for(seconds_left: float, max_attempts: int) -> tuple[float, int]:
    """(timeout, attempts) of a call that must end within `seconds_left`: the largest bucket
    whose worst case (attempts x (connect + read)) fits, with as many of `max_attempts` as fit;
    the smallest bucket, one attempt, when nothing fits (the call then fails fast)."""
    for attempts in range(max_attempts, 0, -1):
        fitting = [b for b in BUCKETS if attempts * 2 * b <= seconds_left]
        if fitting:
            return fitting[-1], attempts
    return BUCKETS[0], 1


class _DeadlineClient:
    """A boto3 client whose calls fit the work's deadline: attribute look-ups (`put_object`,
    `meta`, `exceptions`, `get_paginator`) go to the configured client, or, when the deadline
    leaves less than a whole call, to the factory's client for the fitting bucket."""

    def __init__(self, factory: ClientFactory, service: str, overrides: dict[str, Any]) -> None:
        self._factory, self._service, self._overrides = factory, service, overrides
        self._full = factory.raw_client(service, **overrides)
        config = self._full.meta.config
        self._attempts = int(config.retries.get("total_max_attempts", 1))
        self._worst = self._attempts * (config.connect_timeout + config.read_timeout)
        self._fitted: dict[tuple[float, int], Any] = {}

    def __getattr__(self, name: str) -> Any:
        deadline = deadlines.current()
        if deadline is None or deadline.remaining() >= self._worst:
            return getattr(self._full, name)
        fit = bucket_for(deadline.remaining(), self._attempts)
        fitted = self._fitted.get(fit)
        # Made once per bucket, then a dict look-up (~23 -> ~11 µs a call, measured).
        if fitted is None:
            timeout, attempts = fit
            fitted = self._fitted.setdefault(
                fit,
                self._factory.raw_client(
                    self._service,
                    **{
                        **self._overrides,
                        "connect_timeout": timeout,
                        "read_timeout": timeout,
                        "max_attempts": attempts,
                    },
                ),
            )
        return getattr(fitted, name)

    def __repr__(self) -> str:
        return f"<deadline-fitted {self._service} client>"


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
        """A client for `service` whose calls fit the work's deadline (module docstring);
        keyword overrides go into its botocore Config, e.g. `client("kinesis", max_attempts=1)`
        when the caller owns the retries. Made once per distinct (service, overrides), reused."""
        key = ("fitted:" + service, repr(sorted(config_overrides.items())))
        with self._lock:
            existing = self._clients.get(key)
        if existing is None:
            made = _DeadlineClient(self, service, dict(config_overrides))
            with self._lock:
                existing = self._clients.setdefault(key, made)
        return existing

    def raw_client(self, service: str, **config_overrides: Any) -> Any:
        """The boto3 client itself, as configured (no deadline fitting)."""
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
