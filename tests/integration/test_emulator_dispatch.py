"""moto's request dispatch in the emulator: the backend for each host found as moto finds it,
without listing moto's package directory on every request (local/moto_dispatch.py)."""

from __future__ import annotations

from typing import Any

import pytest

from local import moto_dispatch
from local.moto_patch import fingerprint

pytestmark = pytest.mark.integration


def test_the_dispatch_fix_applies_to_the_pinned_moto(emulator: Any) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    status = moto_dispatch.DISPATCH_FIX.status()
    assert status.applied, status.reason
    installed = DomainDispatcherApplication.__dict__["get_backend_for_host"]
    assert installed is moto_dispatch.get_backend_for_host
    for qualified, original in moto_dispatch.DISPATCH_FIX.originals.items():
        assert fingerprint(original) == moto_dispatch.ORIGINAL_FINGERPRINTS[qualified]


@pytest.mark.parametrize(
    "host",
    [
        None,
        "moto_api",
        "kinesis",
        "s3",
        "dynamodb",
        "kinesis.us-east-1.amazonaws.com",
        "s3.eu-west-1.amazonaws.com",
        "bucket.s3.amazonaws.com",
        "sqs.us-east-1.amazonaws.com",
        "localhost:5000",
        "127.0.0.1",
        "nothing.example",
    ],
)
def test_each_host_gets_the_backend_moto_would_give_it(emulator: Any, host: str | None) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app = DomainDispatcherApplication(create_backend_app)
    original = moto_dispatch.DISPATCH_FIX.originals[
        "DomainDispatcherApplication.get_backend_for_host"
    ]
    assert moto_dispatch.get_backend_for_host(app, host) == original(app, host)
