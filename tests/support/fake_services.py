"""Small implementations of the service contracts, with in-memory state, on a LocalHttpServer.

Each checks what the real service would check (bearer token, body shape, the entry service's
JSON schema) and answers as the adapters' docstrings document. Failures are injected through
the server (`server.inject(Fault...)`), not here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.support.http_server import LocalHttpServer, Request, Response


def _authorized(request: Request, token: str | None) -> bool:
    return token is None or request.headers.get("authorization") == f"Bearer {token}"


def _unauthorized() -> Response:
    return Response.json({"error": "missing or wrong bearer token"}, 401)


@dataclass
class FakeCampaignService:
    server: LocalHttpServer
    token: str | None = None
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # /campaigns/ids first: routes match in order and {campaign_id} would swallow "ids".
        self.server.route("GET", "/campaigns/ids", self._ids)
        self.server.route("GET", "/campaigns/{campaign_id}", self._campaign)

    def add(self, doc: Mapping[str, Any]) -> None:
        self.campaigns[str(doc["id"])] = dict(doc)

    def _campaign(self, request: Request) -> Response:
        if not _authorized(request, self.token):
            return _unauthorized()
        doc = self.campaigns.get(request.path_params["campaign_id"])
        if doc is None:
            return Response.json({"error": "campaign not found"}, 404)
        return Response.json(doc)

    def _ids(self, request: Request) -> Response:
        if not _authorized(request, self.token):
            return _unauthorized()
        raw = request.query.get("categoryIds")
        if not raw:
            return Response.json({"error": "categoryIds is required"}, 400)
        wanted = [c for c in raw[0].split(",") if c]
        answer = {}
        for doc in self.campaigns.values():
            for category in doc.get("categoryIds", []):
                if category in wanted:
                    answer[category] = doc["id"]
        return Response.json(answer)


@dataclass
class FakeUserService:
    server: LocalHttpServer
    token: str | None = None
    users: dict[str, str] = field(default_factory=dict)  # globalUserId -> userId
    max_batch: int = 500

    def __post_init__(self) -> None:
        self.server.route("POST", "/users/lookup", self._lookup)

    def _lookup(self, request: Request) -> Response:
        if not _authorized(request, self.token):
            return _unauthorized()
        try:
            body = request.json()
        except ValueError:
            return Response.json({"error": "body is not JSON"}, 400)
        ids = body.get("globalUserIds") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return Response.json({"error": "globalUserIds must be a list of strings"}, 400)
        if len(ids) > self.max_batch:
            return Response.json({"error": f"at most {self.max_batch} ids"}, 400)
        found = [{"globalUserId": g, "userId": self.users[g]} for g in ids if g in self.users]
        return Response.json({"users": found})


@dataclass
class FakeEntryService:
    """The entry service's assignCodes: schema-checked, and a code is set per fan only once.

    `entries` holds the fans (userIds) with an entry in each campaign; items for anyone else
    count in `input` only."""

    server: LocalHttpServer
    token: str | None = None
    entries: dict[str, set[str]] = field(default_factory=dict)
    codes: dict[tuple[str, str], str] = field(default_factory=dict)  # (campaign, user) -> code

    def __post_init__(self) -> None:
        self.server.route("POST", "/{campaign_id}/entries/codes", self._assign)

    def register(self, campaign_id: str, *user_ids: str) -> None:
        self.entries.setdefault(campaign_id, set()).update(user_ids)

    def _assign(self, request: Request) -> Response:
        if not _authorized(request, self.token):
            return _unauthorized()
        try:
            items = request.json()
        except ValueError:
            return Response.json({"error": "body is not JSON"}, 400)
        problem = _assign_codes_schema_problem(items)
        if problem:
            return Response.json({"error": "invalid assignCodes body", "detail": problem}, 400)
        campaign_id = request.path_params["campaign_id"]
        fans = self.entries.get(campaign_id, set())
        assigned = scoring = 0
        for item in items:
            if item["userId"] not in fans:
                continue
            scoring += 1
            key = (campaign_id, item["userId"])
            if self.codes.get(key) != item["code"]:
                self.codes[key] = item["code"]
                assigned += 1
        return Response.json(
            {"count": {"input": len(items), "assigned": assigned, "scoring": scoring}}
        )


def _assign_codes_schema_problem(items: Any) -> str | None:
    """The original's JSON schema `assignCodes`: array, 1..1000 unique items, each
    {userId: 24 chars, code: non-empty string, date: {start required, end, revealCode, created}}."""
    if not isinstance(items, list):
        return "body is not an array"
    if not 1 <= len(items) <= 1000:
        return f"array has {len(items)} items, allowed 1..1000"
    if len({json.dumps(i, sort_keys=True) for i in items}) != len(items):
        return "items are not unique"
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            return f"[{index}] is not an object"
        if not isinstance(item.get("userId"), str) or len(item["userId"]) != 24:
            return f"[{index}].userId must be a 24-character string"
        if not isinstance(item.get("code"), str) or not item["code"]:
            return f"[{index}].code must be a non-empty string"
        date = item.get("date")
        if not isinstance(date, dict) or not date.get("start"):
            return f"[{index}].date.start is required"
    return None


@dataclass
class FakeSlackWebhook:
    """A Slack incoming webhook at /services/T000/B000/{secret}: answers "ok" or an error word."""

    server: LocalHttpServer
    secret: str = "XXXXXXXXXXXXXXXXXXXXXXXX"
    messages: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server.route("POST", "/services/T000/B000/{secret}", self._post)

    @property
    def url(self) -> str:
        return f"{self.server.url}/services/T000/B000/{self.secret}"

    def _post(self, request: Request) -> Response:
        if request.path_params["secret"] != self.secret:
            return Response.text("no_service", 404)
        try:
            payload = request.json()
        except ValueError:
            return Response.text("invalid_payload", 400)
        if not isinstance(payload, dict) or not (payload.get("text") or payload.get("blocks")):
            return Response.text("no_text", 400)
        if len(payload.get("blocks", [])) > 50:
            return Response.text("invalid_blocks", 400)
        self.messages.append(payload)
        return Response.text("ok")
