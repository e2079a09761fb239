"""The lake's CLI commands killed with SIGKILL part-way, again and again, on the emulator, then
run to the end: a day of 170 lake files (a re-run file among them) is merged once, with each
dedupeId once, and archived once, and no upload is left behind by the killed runs.

The kills land wherever they land (listing, inspection, the sidecar, a part of the merged file in
flight, the count check, the move's copies and deletes): only the end state is asserted, so a run
that finishes before its kill is as good as one killed."""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest

from adapters.avro import AvroSchemas
from benchmarks.stream_records import registration
from domain.records import canonical_json, with_dedupe_id
from tests.conftest import unique_name
from tests.support.lake_files import lake_environment

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DAY = "2024/05/03"
FILES, PER_FILE = 170, 1_000  # ~11 MB merged (65 KB a file without header keys): 2 parts of 8 MiB
RERUN = 3  # the last 3 files hold the first 3 files' records again


def upload_day(s3: Any, bucket: str) -> set[str]:
    schemas = AvroSchemas(compression_level=1)
    arrived = datetime(2024, 5, 3, 9, tzinfo=UTC)
    ids: set[str] = set()
    for number in range(FILES):
        first = (number - (FILES - RERUN)) if number >= FILES - RERUN else number
        records = []
        for position in range(PER_FILE):
            i = first * PER_FILE + position
            raw = with_dedupe_id(registration(random.Random(i), i), canonical_json)
            records.append(schemas.conform("registration", raw, arrived).unwrap())
            ids.add(str(records[-1]["dedupeId"]))
        key = f"avro/registration/{DAY}/shardId-000000000000-{number:06d}.avro"
        s3.put_object(Bucket=bucket, Key=key, Body=schemas.encode("registration", records))
    return ids


# When to kill a run, asked every 10 ms with the seconds since it started; made as it starts.
Moment = Callable[[float], bool]


# A merge's lease term: long, so only the early takeover of a killed (provably dead) holder's
# lease lets the next run in within the test.
LEASE_SECONDS = 600


@dataclass
class Lake:
    s3: Any
    bucket: str
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "entrypoints.cli", *args, "--quiet"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def killed_then_finished(
        self, moments: list[Callable[[], Moment]], *args: str
    ) -> tuple[int, int]:
        """The command killed at each moment (if still running), then run to its end; the
        kills that landed, and the most uploads open at a kill (a killed run cannot abort its
        own: a later run must)."""
        landed = most_open = 0
        for make in moments:
            moment = make()
            child, started = self.run(*args), time.monotonic()
            while child.poll() is None and not moment(time.monotonic() - started):
                time.sleep(0.01)
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                landed += child.wait() == -signal.SIGKILL
                most_open = max(most_open, len(self.open_uploads("")))
                # The next run takes the killed run's lease over at once: its holder, killed and
                # reaped here, is provably dead (domain/lease.py; one refused as busy is
                # test_lake_merge_exclusive's case). The final run below exiting 0 proves it.
        assert self.run(*args).wait() == 0
        return landed, most_open

    def keys(self, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def open_uploads(self, key: str) -> list[dict[str, Any]]:
        """The open multipart uploads of `key` ("": of any key)."""
        uploads = self.s3.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
        return [u for u in uploads.get("Uploads", []) if not key or u["Key"] == key]

    def after(self, seconds: float) -> Callable[[], Moment]:
        return lambda: lambda elapsed: elapsed >= seconds

    def uploading(self, key: str, then: float = 0.0) -> Callable[[], Moment]:
        """Once the run opened a multipart upload of `key`, and `then` seconds more."""

        def make() -> Moment:
            seen = {u["UploadId"] for u in self.open_uploads(key)}
            opened: list[float] = []

            def moment(elapsed: float) -> bool:
                if not opened and {u["UploadId"] for u in self.open_uploads(key)} - seen:
                    opened.append(elapsed)
                return bool(opened) and elapsed >= opened[0] + then

            return moment

        return make

    def changed(self, prefix: str) -> Callable[[], Moment]:
        """Once the number of objects under `prefix` differs from when the run began."""

        def make() -> Moment:
            before = len(self.keys(prefix))
            return lambda elapsed: len(self.keys(prefix)) != before

        return make


@pytest.fixture
def lake(emulator: Any, make_bucket: Callable[[], str], aws: Any) -> tuple[Lake, set[str]]:
    bucket, sqs, s3 = make_bucket(), aws.client("sqs"), aws.client("s3")
    queue = sqs.create_queue(QueueName=unique_name("move"))["QueueUrl"]
    env = {
        **os.environ,
        **lake_environment(emulator.endpoint_url, bucket, queue),
        "AWS_REGION": "us-east-1",
        "RUN_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    return Lake(s3, bucket, env), upload_day(s3, bucket)


def test_a_merge_and_a_move_killed_again_and_again_end_once_with_nothing_lost(
    lake: tuple[Lake, set[str]],
) -> None:
    day, ids = lake
    source_prefix = f"avro/registration/{DAY}/"
    sources = day.keys(source_prefix)
    merged_key = f"avro/registration/merged/{DAY}.avro"

    merge_kills, left_open = day.killed_then_finished(
        [
            day.after(0.8),  # inspecting
            day.uploading(merged_key),  # the merged file's first part on its way
            day.after(1.6),
            day.uploading(merged_key, then=0.3),  # another part, or the count check
        ],
        *("merge-avro-files", "--prefix", DAY, "--type", "registration"),
    )

    body = day.s3.get_object(Bucket=day.bucket, Key=merged_key)["Body"].read()
    merged = [r["dedupeId"] for r in fastavro.reader(io.BytesIO(body))]  # type: ignore[index,call-overload]
    assert len(merged) == len(set(merged)) == len(ids) == (FILES - RERUN) * PER_FILE
    assert set(merged) == ids
    # Killed runs left uploads open; a later run's completed upload aborted them.
    assert left_open >= 1 and day.open_uploads("") == []

    archive = f"avro/archived/registration/{DAY}/"
    move_kills, _ = day.killed_then_finished(
        [day.changed(archive), day.after(0.3), day.changed(source_prefix)],  # copying, deleting
        *("move-merged-avro-files", DAY, "--type", "registration"),
    )

    archived = day.keys(archive)
    assert sorted(k.rsplit("/", 1)[1] for k in archived) == sorted(
        k.rsplit("/", 1)[1] for k in sources
    )
    assert day.keys(source_prefix) == []
    assert day.s3.get_object(Bucket=day.bucket, Key=merged_key)["Body"].read() == body
    assert merge_kills + move_kills >= 4, "too few kills landed to have tested anything"


def test_a_run_that_finds_the_day_merged_aborts_the_uploads_killed_runs_left_open(
    lake: tuple[Lake, set[str]],
) -> None:
    """A run killed between completing the merged file and reaping the others' uploads leaves
    them open (billed, invisible); the next run finds the day merged and reaps them."""
    day, _ = lake
    args = ("merge-avro-files", "--prefix", DAY, "--type", "registration")
    assert day.run(*args).wait() == 0
    merged_key = f"avro/registration/merged/{DAY}.avro"
    sidecar_key = f"avro/merged-keys/registration/{DAY}.keys"
    for key in (merged_key, sidecar_key):
        day.s3.create_multipart_upload(Bucket=day.bucket, Key=key)
    assert len(day.open_uploads("")) == 2
    assert day.run(*args).wait() == 0
    assert day.open_uploads("") == []
