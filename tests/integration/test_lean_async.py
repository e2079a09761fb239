"""adapters/http/lean_async.py over real sockets: what the Pacman client and the SMS gateway
rely on beyond their own tests (tests/integration/test_http_codes.py runs every Pacman case on
it, tests/integration/test_sms_gateways.py the SMS gateway's)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from adapters.http.lean_async import LeanHttp, NotSent
from tests.support.async_http_server import AsyncHttpServer
from tests.support.http_server import Request, Response, silent_listener

pytestmark = pytest.mark.integration


def _read_to_end(server_end: socket.socket) -> bytes:
    """Everything the client sent until it closed its end (b"" then); raises TimeoutError if
    the client still holds the connection open after 5 s."""
    server_end.settimeout(5.0)
    received = b""
    while chunk := server_end.recv(65536):
        received += chunk
    return received


def test_a_request_cancelled_while_waiting_closes_its_connection() -> None:
    """The batch deadline cancels calls still waiting: each one's connection must close then,
    not stay open (one socket leaked per hung call until collected) nor go back to the pool
    (its late answer would be read as the next request's)."""
    with silent_listener() as listener:
        http = LeanHttp(listener.url, {}, timeout=60.0)

        async def cancelled() -> bytes:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(http.request("POST", "/passwords", b"{}"), 0.2)
            (server_end,) = listener.accepted()
            # Read in a thread while this loop runs: the loop's selector still holds an open
            # transport, so a leak shows as a timeout here rather than being collected.
            return await asyncio.to_thread(_read_to_end, server_end)

        sent = asyncio.run(cancelled())
    assert sent.startswith(b"POST /passwords HTTP/1.1\r\n") and sent.endswith(b"\r\n\r\n{}")


def test_requests_carry_the_method_extra_headers_and_read_the_asked_headers_and_body() -> None:
    seen: list[Request] = []

    def answer(request: Request) -> Response:
        seen.append(request)
        return Response(201, b'{"ok":true}', (("Retry-After", "3"), ("X-Other", "no")))

    with AsyncHttpServer({("PUT", "/things"): answer}) as server:
        http = LeanHttp(server.url, {"Authorization": "Bearer t"}, timeout=5.0)

        async def calls() -> list[tuple[int, dict[bytes, bytes], bytes]]:
            out = []
            for correlation in ("c1", "c2"):
                got = await http.request(
                    "PUT", "/things", b"x", headers={"X-Correlation-Id": correlation}
                )
                out.append((got.status, dict(got.headers), got.body))
            await http.aclose()
            return out

        answers = asyncio.run(calls())
    assert answers == [(201, {b"retry-after": b"3"}, b'{"ok":true}')] * 2
    assert [r.headers["x-correlation-id"] for r in seen] == ["c1", "c2"]
    assert all(r.headers["authorization"] == "Bearer t" and r.body == b"x" for r in seen)


def test_a_connection_that_cannot_be_opened_is_not_sent() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    http = LeanHttp(f"http://127.0.0.1:{port}", {}, timeout=1.0)
    with pytest.raises(NotSent):
        asyncio.run(http.request("POST", "/passwords", b"{}"))
