"""Issue 17 item 7: a dependency's error body reaches errors (and from them status objects, CLI
output, Lambda responses and logs) only masked: phones, emails and tokens in a body are masked
by both HTTP clients, for refusals (4xx), outages (5xx, retried) and wrong shapes; a Slack
webhook whose error body echoes its URL never puts the URL, or its secret path, in a failure or
a log line."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Iterator

import pytest
from returns.result import Failure

from adapters.http.async_client import AsyncJsonHttpClient
from adapters.http.async_json import AsyncJsonClient, LeanJsonHttpClient
from adapters.http.client import JsonHttpClient
from adapters.http.slack import SlackWebhookNotifier
from adapters.logging import configure_logging
from domain.backoff import Backoff
from domain.models import Notification
from domain.streaming import DependencyUnavailable
from tests.support.fake_services import FakeSlackWebhook
from tests.support.http_server import Fault, LocalHttpServer, Request, Response, running_server

pytestmark = pytest.mark.integration

EMAIL, PHONE, TOKEN = "ann.fan@fanmail.net", "+13125550188", "sk_live_abcdef123456"
BODY = f"cannot reserve for {EMAIL} {PHONE}; Authorization: Bearer {TOKEN}"
PRIVATE = (EMAIL, PHONE, TOKEN)


def no_wait(retries: int) -> Backoff:
    return Backoff(base_seconds=0.0, cap_seconds=0.0, retries=retries, sleep=lambda _s: None)


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with running_server() as s:
        yield s


@contextlib.contextmanager
def log_lines() -> Iterator[list[str]]:
    """The JSON log lines written inside the block, at DEBUG."""
    out, lines = io.StringIO(), list[str]()
    root = logging.getLogger()
    level = root.level
    try:
        with contextlib.redirect_stderr(out):
            configure_logging("DEBUG")
            yield lines
    finally:
        root.setLevel(level)
        lines.extend(out.getvalue().splitlines())


def shows_none(text: str, private: tuple[str, ...] = PRIVATE) -> bool:
    return not [value for value in private if value in text]


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_a_refusal_body_is_masked_in_the_error(server: LocalHttpServer, status: int) -> None:
    server.route("POST", "/reserve", lambda _r: Response.text(BODY, status))
    client = JsonHttpClient("codes", server.url, retry=no_wait(0))
    outcome = client.post("/reserve", {"n": 1})
    assert isinstance(outcome, Failure)
    error = str(outcome.failure())
    assert f"HTTP {status}" in error and "a***@fanmail.net" in error and "0188" in error
    assert shows_none(error) and shows_none(outcome.failure().to_lookup_failure("codes").detail)


def test_an_outage_body_is_masked_in_the_error_and_the_retry_logs(
    server: LocalHttpServer,
) -> None:
    server.inject(Fault.status(503, BODY.encode()), times=3)
    client = JsonHttpClient("codes", server.url, retry=no_wait(2))
    with log_lines() as lines, pytest.raises(DependencyUnavailable) as raised:
        client.get("/codes")
    assert "HTTP 503" in str(raised.value) and shows_none(str(raised.value))
    assert shows_none(str(raised.value.__cause__))
    assert len([line for line in lines if "retrying codes call" in line]) == 2
    assert all(shows_none(line) for line in lines)


def test_a_wrong_shape_body_is_masked_in_the_error(server: LocalHttpServer) -> None:
    server.route("GET", "/user", lambda _r: Response.text(BODY, 200))
    outcome = JsonHttpClient("users", server.url, retry=no_wait(0)).get("/user")
    assert isinstance(outcome, Failure) and "not JSON" in str(outcome.failure())
    assert shows_none(str(outcome.failure()))


@pytest.mark.parametrize("transport", [LeanJsonHttpClient, AsyncJsonHttpClient])
def test_the_async_client_masks_refusals_and_outages(
    server: LocalHttpServer, transport: type[AsyncJsonClient]
) -> None:
    server.route("POST", "/passwords", lambda _r: Response.text(BODY, 422))

    async def calls() -> tuple[str, str]:
        client = transport("pacman", server.url, retry=no_wait(1))
        try:
            refused = await client.post("/passwords", {"n": 1})
            assert isinstance(refused, Failure)
            server.inject(Fault.status(500, BODY.encode()), times=2)
            with pytest.raises(DependencyUnavailable) as raised:
                await client.post("/other", {"n": 1})
            return str(refused.failure()), str(raised.value)
        finally:
            await client.aclose()

    with log_lines() as lines:
        refused, down = asyncio.run(calls())
    assert "HTTP 422" in refused and "HTTP 500" in down
    assert shows_none(refused) and shows_none(down) and all(shows_none(line) for line in lines)


def test_a_slack_error_body_echoing_the_webhook_url_never_shows_it(
    server: LocalHttpServer,
) -> None:
    secret = "Zq8sE3cretW3bhookPath"
    secret_path = f"/services/T000/B000/{secret}"
    url = server.url + secret_path

    def echo(_request: Request) -> Response:
        return Response.text(f"invalid_token for {url} ({secret_path})", 403)

    server.route("POST", secret_path, echo)
    notifier = SlackWebhookNotifier(url, retry=no_wait(0))
    with log_lines() as lines:
        result = notifier.notify(Notification(title="wave prep done"))
        assert isinstance(result, Failure)
        logging.getLogger("campaign.test").error("slack said %s", result.failure())
    assert "HTTP 403" in result.failure() and "invalid_token" in result.failure()
    assert secret not in result.failure()
    assert lines and all(secret not in line for line in lines)


def test_a_slack_outage_echoing_the_webhook_url_is_not_logged_by_the_retries(
    server: LocalHttpServer,
) -> None:
    hook = FakeSlackWebhook(server)
    server.inject(Fault.status(503, f"down, try {hook.url} later".encode()), times=2)
    notifier = SlackWebhookNotifier(hook.url, retry=no_wait(1))
    with log_lines() as lines:
        result = notifier.notify(Notification(title="wave prep done"))
    assert isinstance(result, Failure) and hook.secret not in result.failure()
    assert [line for line in lines if "retrying slack webhook call" in line]
    assert all(hook.secret not in line for line in lines)
