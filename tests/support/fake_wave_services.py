"""The entry service's eligible-fans query and the campaign service's markets, on a
LocalHttpServer, as adapters/http/eligible_fans.py documents them. `misbehave` makes the
scoring query page forever ('forever': every page full of new fans, past the announced total)
or ignore the offset ('ignore_offset')."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.http_server import LocalHttpServer, Request, Response


def entry(i: int, score: float, markets: list[str], **more: Any) -> dict[str, Any]:
    return {
        "_id": {"globalUserId": f"g{i:05d}"},
        "user_id": f"u{i}",
        "name": {"first": f"First{i}", "last": "Fan"},
        "email": f"fan{i}@example.com",
        "phone": {"number": f"+1212555{i % 10000:04d}", "type": "mobile"},
        "score": score,
        "verdict": True,
        "locale": "en-US",
        "marketIds": markets,
        "codes": [],
    } | more


@dataclass
class FakeScoringService:
    server: LocalHttpServer
    entries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    markets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    misbehave: str | None = None

    def __post_init__(self) -> None:
        self.server.route("GET", "/campaigns/{campaign_id}/markets", self._markets)
        self.server.route("GET", "/{campaign_id}/entries/scoring", self._scoring)

    def _markets(self, request: Request) -> Response:
        found = self.markets.get(request.path_params["campaign_id"])
        if found is None:
            return Response.json({"error": "campaign not found"}, 404)
        return Response.json(found)

    def _scoring(self, request: Request) -> Response:
        q = {k: v[0] for k, v in request.query.items()}
        limit, offset = int(q.get("limit", "1000")), int(q.get("offset", "0"))
        wanted = set(q["marketIds"].split(",")) if q.get("marketIds") else None
        low = float(q["minScore"]) if "minScore" in q else None
        high = float(q["maxScore"]) if "maxScore" in q else None
        reassign = q.get("reassign") == "true"
        matching = [
            e
            for e in self.entries.get(request.path_params["campaign_id"], [])
            if e.get("verdict") is not False
            and (low is None or e["score"] >= low)
            and (high is None or e["score"] <= high)
            and (reassign or not e.get("codes"))
            and (wanted is None or wanted & set(e.get("marketIds", [])))
        ]
        if self.misbehave == "forever":
            page = [entry(offset + i, 0.5, ["m1"]) for i in range(limit)]
        elif self.misbehave == "ignore_offset":
            page = matching[:limit]
        else:
            page = matching[offset : offset + limit]
        return Response.json({"list": page, "counts": {"total": len(matching)}})
