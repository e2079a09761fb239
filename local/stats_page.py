"""The demo's final stats as one self-contained HTML page (docs/demo.md): per-stage counts, the
per-market selection and the codes/texts/emails from the stats object, the reconciliation.
Every value goes through html.escape (a campaign name or a reason is data, not markup); no
script, no stylesheet or image fetched from anywhere, so the file opens offline."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from local.campaign import CampaignRun

STATS_PAGE = "stats.html"
_STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left}td.n{text-align:right}"
    ".bad{color:#b00}.ok{color:#070}"
)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any) -> str:
    return _e(f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value)


def _table(title: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_num(cell)}</td>' if isinstance(cell, int) else f"<td>{_e(cell)}</td>"
            for cell in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<h2>{_e(title)}</h2><table><tr>{head}</tr>{body}</table>"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def stats_page(campaign_id: str, run: CampaignRun) -> str:
    stats = _mapping(run.stats)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Campaign {_e(campaign_id)}: stats</title><style>{_STYLE}</style></head><body>",
        f"<h1>Campaign {_e(campaign_id)}</h1>",
    ]
    if stats.get("generatedAt"):
        parts.append(f"<p>stats object generated at {_e(stats['generatedAt'])}</p>")
    parts.append(
        _table(
            "Stages",
            ("stage", "worker", "in", "out", "rejected", "reasons", "seconds"),
            (
                (
                    s.title,
                    s.worker,
                    s.received,
                    s.out,
                    s.rejected,
                    ", ".join(f"{k} {v:,}" for k, v in s.reasons.most_common()),
                    f"{s.seconds:.1f}",
                )
                for s in run.stages
            ),
        )
    )
    by_market = _mapping(stats.get("selectedByMarket"))
    parts.append(
        _table(
            f"Selected per market ({stats.get('selected', 0)} in all)",
            ("market", "selected"),
            sorted(by_market.items()),
        )
    )
    codes = _mapping(stats.get("codes"))
    parts.append(
        _table(
            "Codes",
            ("what", "count"),
            ((k, codes.get(k, 0)) for k in ("issued", "kept", "published")),
        )
    )
    texts, emails = _mapping(stats.get("texts")), _mapping(stats.get("emails"))
    parts.append(
        _table(
            "Texts and emails",
            ("outcome", "texts", "emails"),
            ((k, texts.get(k, 0), emails.get(k, 0)) for k in sorted({*texts, *emails})),
        )
    )
    rec = run.reconciliation
    if rec is None:
        parts.append('<p class="bad">no reconciliation: the campaign stopped early</p>')
    else:
        rows: list[Sequence[Any]] = list(sorted(rec.where.items()))
        rows.append(("accounted for", sum(rec.where.values())))
        rows.append(("unaccounted", rec.unaccounted))
        parts.append(_table(f"Reconciliation: {rec.fans:,} fans", ("where", "fans"), rows))
        parts.append(f"<p>total fans: {_num(rec.fans)}</p><ul>")
        for check, ok in rec.checks:
            mark = '<span class="ok">ok</span>' if ok else '<span class="bad">FAILED</span>'
            parts.append(f"<li>{mark} {_e(check)}</li>")
        parts.append("</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_stats_page(campaign_id: str, run: CampaignRun, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / STATS_PAGE
    path.write_text(stats_page(campaign_id, run), encoding="utf-8")
    return path.resolve()
