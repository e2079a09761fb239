"""The code service and Pacman as small local HTTP services (contracts in adapters/http/codes.py).

FakeCodeService keeps codes per campaign with the sibling service's statuses (available,
reserved for 24 h, assigned) and answers in its `{data, meta}` envelope. FakePacman issues one
code per POST. Failures are injected through the server (`server.inject(Fault...)`); `delay`
makes Pacman answer like the real one does (~20 ms). The benchmark serves the same FakePacman
from the asyncio server (tests/support/async_http_server.py), cheaper per request.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.fake_services import _authorized, _unauthorized
from tests.support.http_server import LocalHttpServer, Request, Response


def _envelope(data: Any, status: int = 200) -> Response:
    meta = {"timestamp": datetime.now(UTC).isoformat(), "correlationId": "fake"}
    return Response.json({"data": data, "meta": meta}, status)


@dataclass
class FakeCodeService:
    server: LocalHttpServer
    token: str | None = None
    # campaign -> code -> [type, status, reserved_until]
    codes: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    _reserve_ids: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server.route("GET", "/{campaign_id}/reserve", self._reserve)
        self.server.route("POST", "/{campaign_id}/assign", self._assign)
        self.server.route("GET", "/{campaign_id}/codes", self._lookup)

    def stock(self, campaign_id: str, codes: list[str], code_type: str = "external") -> None:
        pool = self.codes.setdefault(campaign_id, {})
        for code in codes:
            pool.setdefault(code, [code_type, "available", None])

    def status(self, campaign_id: str, code: str) -> str:
        _kind, status, until = self.codes[campaign_id][code]
        if status == "reserved" and until <= datetime.now(UTC):
            return "available"
        return str(status)

    def _reserve(self, request: Request) -> Response:
        if not _authorized(request, self.token):
            return _unauthorized()
        campaign_id = request.path_params["campaign_id"]
        try:
            count = int(request.query.get("count", [""])[0])
        except ValueError:
            return _envelope({"error": "count must be an integer"}, 400)
        code_type = request.query.get("type", ["external"])[0]
        with self._lock:
            pool = self.codes.get(campaign_id, {})
            free = [
                c
                for c, (kind, _s, _u) in pool.items()
                if kind == code_type and self.status(campaign_id, c) == "available"
            ][:count]
            until = datetime.now(UTC) + timedelta(hours=24)
            for code in free:
                pool[code][1:] = ["reserved", until]
            return _envelope({"codes": free, "reserveId": f"r{next(self._reserve_ids)}"})

    def _assign(self, request: Request) -> Response:
        if not _authorized(request, self.token):
            return _unauthorized()
        try:
            body = request.json()
        except ValueError:
            return _envelope({"error": "body is not JSON"}, 400)
        codes = body.get("codes") if isinstance(body, dict) else None
        if not isinstance(codes, list) or not codes or not all(isinstance(c, str) for c in codes):
            return _envelope({"error": "codes must be a non-empty array of strings"}, 400)
        with self._lock:
            pool = self.codes.setdefault(request.path_params["campaign_id"], {})
            updated = 0
            for code in codes:
                entry = pool.setdefault(code, ["external", "available", None])
                if entry[1] != "assigned":
                    entry[1:] = ["assigned", None]
                    updated += 1
        return _envelope({"count": {"in": len(codes), "updated": updated}})

    def _lookup(self, request: Request) -> Response:
        if not _authorized(request, self.token):
            return _unauthorized()
        campaign_id = request.path_params["campaign_id"]
        wanted = [c for c in request.query.get("codes", [""])[0].split(",") if c]
        pool = self.codes.get(campaign_id, {})
        found = [{"code": c, "status": self.status(campaign_id, c)} for c in wanted if c in pool]
        return _envelope({"codes": found})


@dataclass
class FakePacman:
    """Pacman's contract (adapters/http/codes.py): `answer` is the whole of it, routed by the
    threaded LocalHttpServer when one is given (the tests: faults, request log) and by
    AsyncHttpServer for load (the benchmark: tests/support/async_http_server.py)."""

    server: LocalHttpServer | None = None
    token: str | None = None
    delay: float = 0.0  # LocalHttpServer only: AsyncHttpServer waits with asyncio.sleep
    keep: bool = True  # False: count only (benchmarks issue 100,000s)
    issued: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.server is not None:
            self.server.route("POST", "/passwords", self._delayed)

    def _delayed(self, request: Request) -> Response:
        if self.delay:
            time.sleep(self.delay)
        return self.answer(request)

    def answer(self, request: Request) -> Response:
        if not _authorized(request, self.token):
            return _unauthorized()
        try:
            body = request.json()
        except ValueError:
            return Response.json({"error": "body is not JSON"}, 400)
        required = ("productId", "source", "beginDate", "endDate", "globalUserId")
        if not isinstance(body, dict) or any(not body.get(k) for k in required):
            return Response.json({"error": f"required: {', '.join(required)}"}, 400)
        if body["beginDate"] >= body["endDate"]:
            return Response.json({"error": "beginDate must be before endDate"}, 400)
        with self._lock:
            code = f"PAC{next(self._numbers):09d}"
            self.count += 1
            if self.keep:
                self.issued.append({**body, "code": code})
        return Response.json({"passwords": [code]})
