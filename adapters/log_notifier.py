"""A Notifier that writes the summary to the log: the default when no Slack webhook is set."""

from __future__ import annotations

import logging

from returns.result import Result, Success

from domain.models import Notification

log = logging.getLogger("campaign_workers.notifications")


class LogNotifier:
    def __init__(self) -> None:
        self.last: Notification | None = None

    def notify(self, notification: Notification) -> Result[None, str]:
        self.last = notification
        log.log(
            logging.INFO if notification.ok else logging.WARNING,
            notification.title,
            extra={"lines": list(notification.lines), "fields": dict(notification.fields)},
        )
        return Success(None)
