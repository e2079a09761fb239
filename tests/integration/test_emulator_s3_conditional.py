"""The emulator's conditional PutObject is atomic under concurrent requests
(local/s3_conditional.py), as S3's is: racing `If-None-Match: *` creates of one key have exactly
one winner, and racing `If-Match` replaces of one version too. moto's window between the check
and the write is short, so the race is shown with the store slowed down: stock moto then lets
several creates win, which is also what proves this test can see the race."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local import s3_conditional
from local.moto_patch import fingerprint

pytestmark = pytest.mark.integration

RACERS = 8


def test_the_s3_fix_applies_to_the_pinned_moto(emulator: Any) -> None:
    fix = s3_conditional.S3_CONDITIONAL_FIX
    status = fix.status()
    assert status.applied, status.reason
    assert set(fix.originals) == set(fix.fingerprints)
    for qualified, original in fix.originals.items():
        assert fingerprint(original) == fix.fingerprints[qualified]


@pytest.fixture
def slow_store(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every PutObject waits 20 ms between its condition check and its write."""
    from moto.s3.models import S3Backend

    from local.emulator import EmbeddedEmulator

    if not isinstance(emulator, EmbeddedEmulator):
        pytest.skip("slows the in-process emulator's store; CW_TEST_ENDPOINT names another")

    original = S3Backend.put_object

    def slowed(self: Any, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.02)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "put_object", slowed)


def _race(attempt: Callable[[int], None]) -> list[int]:
    """Runs `attempt(n)` for RACERS claimants at once; the claimants that were not refused."""
    barrier = threading.Barrier(RACERS)
    won: list[int] = []

    def claimant(n: int) -> None:
        barrier.wait()
        try:
            attempt(n)
        except ClientError as refused:
            assert refused.response["Error"]["Code"] == "PreconditionFailed"
        else:
            won.append(n)

    threads = [threading.Thread(target=claimant, args=(n,)) for n in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won


def test_racing_creates_of_one_key_have_one_winner(
    s3_client: Any, make_bucket: Callable[[], str], slow_store: None
) -> None:
    bucket = make_bucket()
    for key in ("lease-a", "lease-b", "lease-c"):
        won = _race(
            lambda n, key=key: s3_client.put_object(  # type: ignore[misc]
                Bucket=bucket, Key=key, Body=f"holder {n}".encode(), IfNoneMatch="*"
            )
        )
        assert len(won) == 1
        body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == f"holder {won[0]}".encode()  # the winner's write is the one kept


def test_racing_replaces_of_one_version_have_one_winner(
    s3_client: Any, make_bucket: Callable[[], str], slow_store: None
) -> None:
    bucket = make_bucket()
    etag = s3_client.put_object(Bucket=bucket, Key="lease", Body=b"expired")["ETag"]
    won = _race(
        lambda n: s3_client.put_object(
            Bucket=bucket, Key="lease", Body=f"holder {n}".encode(), IfMatch=etag
        )
    )
    assert len(won) == 1


def test_without_the_fix_racing_creates_have_several_winners(
    s3_client: Any,
    make_bucket: Callable[[], str],
    slow_store: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.s3.responses import S3Response

    stock = S3Response.put_object.__wrapped__  # type: ignore[attr-defined]
    monkeypatch.setattr(S3Response, "put_object", stock)
    bucket = make_bucket()
    won = _race(
        lambda n: s3_client.put_object(
            Bucket=bucket, Key="lease", Body=f"holder {n}".encode(), IfNoneMatch="*"
        )
    )
    assert len(won) > 1
