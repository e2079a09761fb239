"""SlackWebhookNotifier over real HTTP against a fake incoming webhook."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from returns.result import Failure, Success

from adapters.http.slack import SlackWebhookNotifier
from domain.backoff import Backoff
from domain.models import Notification
from domain.ports import Notifier
from tests.support.fake_services import FakeSlackWebhook
from tests.support.http_server import Fault, LocalHttpServer, running_server

pytestmark = pytest.mark.integration

SUMMARY = Notification(
    title="Scored file c-1.20261128.txt processed",
    lines=("200000 in, 195000 out", "5000 rejected"),
    fields=tuple((f"tag{i}", str(i)) for i in range(12)),
    channel="#campaign-alerts",
)


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with running_server() as s:
        yield s


@pytest.fixture
def hook(server: LocalHttpServer) -> FakeSlackWebhook:
    return FakeSlackWebhook(server)


def notifier(url: str, attempts: int = 3) -> Notifier:
    backoff = Backoff(base_seconds=0.01, cap_seconds=0.02, retries=attempts - 1)
    return SlackWebhookNotifier(url, read_timeout=0.3, retry=backoff)


def test_posts_text_and_blocks(hook: FakeSlackWebhook) -> None:
    assert notifier(hook.url).notify(SUMMARY) == Success(None)
    (message,) = hook.messages
    assert message["channel"] == "#campaign-alerts"
    assert message["text"].startswith("Scored file c-1.20261128.txt processed\n200000 in")
    header, body, *field_sections = message["blocks"]
    assert header["text"]["text"] == SUMMARY.title
    assert body["text"]["text"] == "200000 in, 195000 out\n5000 rejected"
    # Slack allows 10 fields per section: 12 fields make two sections
    assert [len(s["fields"]) for s in field_sections] == [10, 2]
    assert field_sections[1]["fields"][1]["text"] == "*tag11*\n11"


def test_failed_work_is_flagged(hook: FakeSlackWebhook) -> None:
    notifier(hook.url).notify(Notification(title="Scored file failed", ok=False))
    assert hook.messages[0]["blocks"][0]["text"]["text"] == ":warning: Scored file failed"


def test_retries_5xx_timeouts_drops_and_throttling(
    server: LocalHttpServer, hook: FakeSlackWebhook
) -> None:
    server.inject(Fault.status(500))
    server.inject(Fault.slow(1.0))
    assert notifier(hook.url, attempts=3).notify(SUMMARY) == Success(None)
    server.inject(Fault.dropped())
    server.inject(Fault.throttle("0"))
    assert notifier(hook.url, attempts=3).notify(SUMMARY) == Success(None)
    assert len(hook.messages) == 2


def test_down_webhook_is_a_failure_value_without_the_secret(
    server: LocalHttpServer, hook: FakeSlackWebhook
) -> None:
    server.inject(Fault.status(503), times=3)
    result = notifier(hook.url, attempts=3).notify(SUMMARY)
    assert isinstance(result, Failure)
    assert "slack webhook unavailable" in result.failure()
    assert hook.secret not in result.failure()
    assert len(server.requests) == 3


def test_rejected_webhook_is_a_failure_value(
    server: LocalHttpServer, hook: FakeSlackWebhook
) -> None:
    result = notifier(f"{server.url}/services/T000/B000/wrong").notify(SUMMARY)
    assert isinstance(result, Failure)
    assert "HTTP 404" in result.failure() and "no_service" in result.failure()
    assert "wrong" not in result.failure().replace("no_service", "")


def test_unreachable_webhook_is_a_failure_value() -> None:
    result = notifier("http://127.0.0.1:9/services/T/B/X", attempts=2).notify(SUMMARY)
    assert isinstance(result, Failure)


def test_bad_webhook_url_is_rejected_up_front() -> None:
    with pytest.raises(ValueError, match="not an http"):
        SlackWebhookNotifier("hooks.slack.com/services/T/B/X")
