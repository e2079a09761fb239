"""Notifier posting to a Slack incoming webhook: text (the fallback) plus Block Kit blocks.

A webhook answers 200 "ok", or an error word (400 invalid_payload, 403 action_prohibited,
404 channel_not_found, 410 channel_is_archived, 429 with Retry-After). Notifying never fails
the work: every outcome, the service being down included, comes back as a Result.
The webhook URL is a secret, so it never appears in errors or logs.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from returns.result import Failure, Result, Success

from adapters.http.client import JsonHttpClient
from domain.backoff import Backoff
from domain.models import Notification
from domain.streaming import DependencyUnavailable

# Block Kit limits: header text 150 chars, section text 3000, 10 fields per section, 50 blocks.
_HEADER_CHARS = 150
_SECTION_CHARS = 3000
_FIELDS_PER_SECTION = 10
_MAX_BLOCKS = 50
# Three tries: a summary is worth a short wait, never a stalled worker (notify never fails it).
DEFAULT_SLACK_BACKOFF = Backoff(base_seconds=0.2, cap_seconds=5.0, retries=2)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_payload(notification: Notification) -> dict[str, Any]:
    title = notification.title if notification.ok else f":warning: {notification.title}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(title, _HEADER_CHARS)}}
    ]
    if notification.lines:
        body = "\n".join(notification.lines)
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(body, _SECTION_CHARS)}}
        )
    fields = [
        {"type": "mrkdwn", "text": _cut(f"*{name}*\n{value}", 2000)}
        for name, value in notification.fields
    ]
    for start in range(0, len(fields), _FIELDS_PER_SECTION):
        blocks.append({"type": "section", "fields": fields[start : start + _FIELDS_PER_SECTION]})
    text_lines = [title, *notification.lines, *(f"{k}: {v}" for k, v in notification.fields)]
    payload: dict[str, Any] = {
        "text": _cut("\n".join(text_lines), _SECTION_CHARS),
        "blocks": blocks[:_MAX_BLOCKS],
    }
    if notification.channel:
        payload["channel"] = notification.channel  # honoured by legacy webhooks only
    return payload


class SlackWebhookNotifier:
    def __init__(
        self,
        webhook_url: str,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        retry: Backoff = DEFAULT_SLACK_BACKOFF,
        client: JsonHttpClient | None = None,
    ) -> None:
        parts = urlsplit(webhook_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("the Slack webhook URL is not an http(s) URL")  # never echo it
        # The path goes separately: httpx would add a slash to a base URL that held it.
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._client = client or JsonHttpClient(
            "slack webhook",
            f"{parts.scheme}://{parts.netloc}",
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retry=retry,
            hide_path=True,
        )

    def notify(self, notification: Notification) -> Result[None, str]:
        try:
            response = self._client.post(self._path, slack_payload(notification), expect_json=False)
        except DependencyUnavailable as exc:
            return Failure(str(exc))
        match response:
            case Failure(error):
                return Failure(str(error))
        return Success(None)
