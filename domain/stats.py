"""Campaign statistics from what the workers already keep (docs/stats.md): pure counting.

Which lake files to read so that no period is counted twice: a month's merged file holds its
days, a day's merged file holds its sources (merge_avro_files), and the sources stay in place
until move_merged_avro_files archives them. So a source is read only when neither its day nor
its month is merged, a day's merged file only when its month is not.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.lake import LAKE_BASE, MERGED_DIR

STATS_TYPES = ("registration", "scoring", "codeAssignment")
_MERGED = re.compile(r"^(?P<y>\d{4})/(?P<m>\d{2})(?:/(?P<d>\d{2}))?\.avro$")
_SOURCE = re.compile(r"^(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/[^/]+\.avro$")


def files_to_read(record_type: str, keys: Iterable[str]) -> list[str]:
    """The keys under `avro/{record_type}/` whose records are counted, each period once."""
    root = f"{LAKE_BASE}{record_type}/"
    merged_root = f"{root}{MERGED_DIR}/"
    months: set[str] = set()
    days: dict[str, str] = {}
    sources: list[tuple[str, str]] = []
    month_files: list[str] = []
    for key in keys:
        if key.startswith(merged_root):
            found = _MERGED.match(key[len(merged_root) :])
            if found is None:
                continue
            if found["d"] is None:
                months.add(f"{found['y']}/{found['m']}")
                month_files.append(key)
            else:
                days[f"{found['y']}/{found['m']}/{found['d']}"] = key
        elif key.startswith(root):
            found = _SOURCE.match(key[len(root) :])
            if found is not None:
                sources.append((f"{found['y']}/{found['m']}/{found['d']}", key))
    chosen = list(month_files)
    chosen += [k for day, k in days.items() if day[:7] not in months]
    chosen += [k for day, k in sources if day not in days and day[:7] not in months]
    return sorted(chosen)


@dataclass
class CampaignTally:
    """One campaign's counts, grown record by record (nothing of a record is kept)."""

    registrations: int = 0
    scored: int = 0
    accepted: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    tags: Counter[str] = field(default_factory=Counter)
    codes_published: int = 0
    codes_by_market: Counter[str] = field(default_factory=Counter)

    def add(self, record_type: str, record: Mapping[str, Any]) -> None:
        if record_type == "registration":
            self.registrations += 1
        elif record_type == "scoring":
            self.scored += 1
            tags = [t for t in record.get("tags") or () if isinstance(t, str)]
            self.tags.update(tags)
            if record.get("verdict") is False:
                self.rejected_by_reason[tags[0] if tags else "verdict_false"] += 1
            else:
                self.accepted += 1
        elif record_type == "codeAssignment":
            self.codes_published += 1
            self.codes_by_market[str(record.get("marketId") or "none")] += 1


def wave_prep_summary(statuses: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Wave prep's status documents: each date key's status, and the selected fans per market
    summed over the waves that finished."""
    by_date: dict[str, str] = {}
    selected: Counter[str] = Counter()
    waitlisted = 0
    for status in statuses:
        date_key = str(status.get("dateKey") or "?")
        state = str(status.get("status") or "UNKNOWN")
        by_date[date_key] = state
        count = status.get("count")
        if state != "FINISHED" or not isinstance(count, Mapping):
            continue
        waitlisted += _int(count.get("waitlisted"))
        for market in count.get("markets") or ():
            if isinstance(market, Mapping):
                selected[str(market.get("name") or "?")] += _int(market.get("selected"))
    return {
        "waves": dict(sorted(by_date.items())),
        "selectedByMarket": dict(sorted(selected.items())),
        "selected": sum(selected.values()),
        "waitlisted": waitlisted,
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


_WAVE_FILE = re.compile(r"^smsWaves/(?P<state>[^/]+)/(?P<wave>[^/]+)_csv\.json$")


def sms_wave_states(keys: Iterable[str], campaign_id: str) -> dict[str, str]:
    """The campaign's SMS waves (`smsWaves/{state}/{campaignId}_{suffix}_csv.json`) and the
    furthest state each reached (a config is written again as it moves on)."""
    order = {"scheduled": 0, "triggered": 1, "failed": 2, "completed": 3}
    states: dict[str, str] = {}
    for key in keys:
        found = _WAVE_FILE.match(key)
        if found is None or not found["wave"].startswith(f"{campaign_id}_"):
            continue
        wave, state = found["wave"], found["state"]
        if wave not in states or order.get(state, -1) > order.get(states[wave], -1):
            states[wave] = state
    return dict(sorted(states.items()))


_NORMALIZED_FILE = re.compile(r"^smsWaves/configs/(?P<wave>[^/]+)\.normalized\.json$")
CODE_COUNTS = ("out", "errors", "issued", "reused", "kept")
SEND_STATES = ("completed", "failed")


def campaign_normalized_configs(keys: Iterable[str], campaign_id: str) -> dict[str, str]:
    """The campaign's normalized wave configs (generate_sms_wave_codes): wave -> key."""
    found: dict[str, str] = {}
    for key in keys:
        match = _NORMALIZED_FILE.match(key)
        if match is not None and match["wave"].startswith(f"{campaign_id}_"):
            found[match["wave"]] = key
    return dict(sorted(found.items()))


def campaign_sent_configs(keys: Iterable[str], campaign_id: str) -> dict[str, str]:
    """The campaign's sent wave configs (sms_wave_send's `_move_config`): wave -> key of the
    furthest one (completed over failed), so a wave whose config is in both is counted once."""
    found: dict[str, tuple[int, str]] = {}
    for key in keys:
        match = _WAVE_FILE.match(key)
        if match is None or match["state"] not in SEND_STATES:
            continue
        wave = match["wave"]
        if not wave.startswith(f"{campaign_id}_"):
            continue
        rank = SEND_STATES.index(match["state"])
        if wave not in found or rank < found[wave][0]:
            found[wave] = (rank, key)
    return {wave: key for wave, (_, key) in sorted(found.items())}


@dataclass
class SendTally:
    """Codes issued per wave (normalized configs' `codeCounts`) and texts/emails per outcome
    (sent configs' `sendResult.count.detail`), summed over a campaign's waves."""

    codes: Counter[str] = field(default_factory=Counter)
    codes_by_wave: dict[str, dict[str, int]] = field(default_factory=dict)
    texts: Counter[str] = field(default_factory=Counter)
    emails: Counter[str] = field(default_factory=Counter)

    def add_codes(self, wave: str, config: Mapping[str, Any]) -> None:
        counts = config.get("codeCounts")
        if not isinstance(counts, Mapping):
            return  # still generating (or never finished): nothing issued to count yet
        row = {name: _int(counts.get(name)) for name in CODE_COUNTS}
        self.codes_by_wave[wave] = row
        self.codes.update(row)

    def add_sent(self, config: Mapping[str, Any]) -> None:
        result = config.get("sendResult")
        count = result.get("count") if isinstance(result, Mapping) else None
        detail = count.get("detail") if isinstance(count, Mapping) else None
        if not isinstance(detail, Mapping):
            return  # a failed wave's result holds a reason, no counts
        for channel, into in (("sms", self.texts), ("email", self.emails)):
            outcomes = detail.get(channel)
            if isinstance(outcomes, Mapping):
                into.update({str(k): _int(v) for k, v in outcomes.items()})

    def codes_json(self) -> dict[str, Any]:
        return {
            "issued": self.codes["issued"] + self.codes["reused"],
            "reused": self.codes["reused"],
            "kept": self.codes["kept"],
            "waveRows": self.codes["out"],
            "waveErrors": self.codes["errors"],
            "byWave": dict(self.codes_by_wave),
        }


def _outcomes_json(counts: Counter[str]) -> dict[str, int]:
    names = ("sent", "failed", "skipped", "opted_out", "unknown")
    return {name: counts[name] for name in names} | {
        k: v for k, v in sorted(counts.items()) if k not in names
    }


def stats_document(
    campaign_id: str,
    name: str,
    tally: CampaignTally,
    wave_prep: Mapping[str, Any],
    sms_waves: Mapping[str, str],
    generated_at: str,
    took_seconds: float,
    sends: SendTally | None = None,
) -> dict[str, Any]:
    """The stats object save_stats writes and slack_stats reads (docs/stats.md)."""
    sends = sends if sends is not None else SendTally()
    return {
        "campaignId": campaign_id,
        "name": name,
        "generatedAt": generated_at,
        "tookSeconds": round(took_seconds, 3),
        "registrations": tally.registrations,
        "scored": tally.scored,
        "accepted": tally.accepted,
        "rejected": sum(tally.rejected_by_reason.values()),
        "rejectedByReason": dict(sorted(tally.rejected_by_reason.items())),
        "tags": dict(sorted(tally.tags.items())),
        "selected": wave_prep.get("selected", 0),
        "selectedByMarket": dict(wave_prep.get("selectedByMarket", {})),
        "waitlisted": wave_prep.get("waitlisted", 0),
        "codes": {
            "published": tally.codes_published,
            "publishedByMarket": dict(sorted(tally.codes_by_market.items())),
            **sends.codes_json(),
        },
        "texts": _outcomes_json(sends.texts),
        "emails": _outcomes_json(sends.emails),
        "wavePrep": dict(wave_prep.get("waves", {})),
        "smsWaves": dict(sms_waves),
    }


def slack_lines(doc: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The stats object as Slack fields (numbers only: no fan data is in it)."""
    fields = [
        ("Registrations", f"{doc.get('registrations', 0):,}"),
        ("Scored", f"{doc.get('scored', 0):,}"),
        ("Accepted", f"{doc.get('accepted', 0):,}"),
        ("Rejected", f"{doc.get('rejected', 0):,}"),
        ("Selected", f"{doc.get('selected', 0):,}"),
        ("Codes issued", f"{(doc.get('codes') or {}).get('issued', 0):,}"),
        ("Codes published", f"{(doc.get('codes') or {}).get('published', 0):,}"),
        ("Texts sent", f"{(doc.get('texts') or {}).get('sent', 0):,}"),
        ("Emails sent", f"{(doc.get('emails') or {}).get('sent', 0):,}"),
    ]
    for reason, count in (doc.get("rejectedByReason") or {}).items():
        fields.append((f"Rejected: {reason}", f"{count:,}"))
    for market, count in (doc.get("selectedByMarket") or {}).items():
        fields.append((f"Selected: {market}", f"{count:,}"))
    for wave, state in (doc.get("smsWaves") or {}).items():
        fields.append((f"Wave {wave}", str(state)))
    for date_key, state in (doc.get("wavePrep") or {}).items():
        fields.append((f"Wave prep {date_key}", str(state)))
    return tuple(fields)
