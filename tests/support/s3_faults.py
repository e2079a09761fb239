"""S3's own fault answers, for the fault-injecting proxy in front of the emulator
(tests/support/http_server.py; the `s3_proxy` fixture in tests/conftest.py)."""

from __future__ import annotations

from tests.support.http_server import Fault

# S3's throttle is a 503 SlowDown, its blip a 500 InternalError.
SLOW_DOWN = Fault.status(
    503,
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
    {"Content-Type": "application/xml"},
)
INTERNAL_ERROR = Fault.status(
    500,
    b"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message>"
    b"</Error>",
    {"Content-Type": "application/xml"},
)
