"""slackStats (every 30 minutes): each open campaign's stats object (save_stats) posted to the
campaign's stats channel (`slack.channels.stats`, else its `slackChannel`, else the notifier's
default), skipped where the campaign says `slack.noAlert`. A campaign without a stats object
yet is counted (`missing`), not an error: save_stats writes it within 5 minutes."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from returns.result import Failure, Result, Success

from domain.models import FailureKind, Notification, ObjectNotFound, ObjectRef
from domain.ports import BlobReader, Notifier, OpenCampaigns
from domain.stats import slack_lines
from domain.workers.save_stats import StatsFailure, stats_key


@dataclass(frozen=True)
class SlackRun:
    posted: tuple[str, ...] = ()
    skipped_no_alert: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)  # campaign -> why (notifier, object)

    def to_json(self) -> dict[str, Any]:
        return {
            "posted": list(self.posted),
            "skippedNoAlert": list(self.skipped_no_alert),
            "missing": list(self.missing),
            "failed": dict(self.failed),
        }


def slack_stats(
    _request: Any,
    *,
    campaigns: OpenCampaigns,
    store: BlobReader,
    notifier: Notifier,
    bucket: str,
    prefix: str,
    on_progress: Callable[[int], None] | None = None,
) -> Result[SlackRun, StatsFailure]:
    match campaigns.open_campaigns():
        case Failure(failure):
            retryable = failure.kind == FailureKind.UNAVAILABLE
            return Failure(StatsFailure("campaigns_unavailable", str(failure), retryable))
        case Success(found):
            pass
    posted: list[str] = []
    skipped: list[str] = []
    missing: list[str] = []
    failed: dict[str, str] = {}
    for campaign in sorted(found, key=lambda c: c.campaign_id):
        cid = campaign.campaign_id
        if campaign.no_alert:
            skipped.append(cid)
            continue
        ref = ObjectRef(bucket, stats_key(prefix, cid))
        try:
            doc = json.loads(store.read_bytes(ref))
        except ObjectNotFound:
            missing.append(cid)
            continue
        except ValueError:
            failed[cid] = f"{ref.uri} is not JSON"
            continue
        if not isinstance(doc, Mapping):
            failed[cid] = f"{ref.uri} is not a JSON object"
            continue
        title = f"Stats: {campaign.name or cid} ({cid}), as of {doc.get('generatedAt', '?')}"
        note = Notification(
            title=title,
            fields=slack_lines(doc),
            channel=campaign.stats_channel or campaign.slack_channel,
        )
        match notifier.notify(note):
            case Failure(why):
                failed[cid] = why
            case Success(_):
                posted.append(cid)
        if on_progress is not None:
            on_progress(len(posted))
    return Success(SlackRun(tuple(posted), tuple(skipped), tuple(missing), failed))
