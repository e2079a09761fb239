"""The lake merge writing its merged file through S3 parts that fail, over HTTP: the emulator's
S3 behind a fault-injecting proxy (tests/support/http_server.py). A part that outlasts
botocore's retries fails the merge cleanly (no merged file, no upload left, no move queued);
the re-run merges the day."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

import fastavro
import pytest

from adapters.aws.clients import ClientFactory, ClientOptions
from adapters.aws.s3 import S3ObjectStore
from adapters.lake_compactor import AvroLakeCompactor
from domain.lake import LakeLayout, MoveRequest
from domain.streaming import DependencyUnavailable
from domain.workers.merge_avro_files import MergeRequest, merge_avro_files
from tests.support.http_server import LocalHttpServer
from tests.support.lake_files import ban_record, lake_file
from tests.support.memory_compaction import MemoryMoveQueue
from tests.support.s3_faults import INTERNAL_ERROR

pytestmark = pytest.mark.integration
DAY = "2024/05/03"
PART = 5 * 1024 * 1024
FILES, RECORDS = 6, 500


def padded(dedupe_id: str, arrival: int) -> dict[str, Any]:
    """A ban with 8 KB of incompressible-ish payload: six files make a merged file of 3 parts."""
    record = ban_record(dedupe_id, arrival=arrival)
    return {**record, "payload": f'{{"id":"{dedupe_id}","pad":"{os.urandom(4096).hex()}"}}'}


def write_day(s3: Any, bucket: str) -> int:
    """FILES lake files of RECORDS bans each, the last one starting with 10 of the first's
    again (a re-run); the number of distinct records."""
    files = [[padded(f"d{n}-{i}", n * RECORDS + i) for i in range(RECORDS)] for n in range(FILES)]
    files[-1][:10] = files[0][:10]
    for number, records in enumerate(files):
        key = f"avro/codeBan/{DAY}/shardId-000000000000-{number:03}.avro"
        s3.put_object(Bucket=bucket, Key=key, Body=lake_file("codeBan", records, blocks=[100] * 4))
    return FILES * RECORDS - 10


def test_a_part_that_keeps_failing_fails_the_merge_cleanly_and_the_rerun_merges(
    s3_proxy: LocalHttpServer, s3_client: Any, make_bucket: Callable[[], str]
) -> None:
    bucket = make_bucket()
    total = write_day(s3_client, bucket)
    client = ClientFactory(ClientOptions(endpoint_url=s3_proxy.url, max_attempts=2)).client("s3")
    store = S3ObjectStore(client, part_size=PART)
    layout, queue = LakeLayout(bucket), MemoryMoveQueue()
    merged = layout.merged_ref("codeBan", DAY)

    def merge() -> Any:
        return merge_avro_files(
            MergeRequest(DAY, ("codeBan",)),
            store=store,
            compactor=AvroLakeCompactor(store),
            manifests=AvroLakeCompactor(store),
            queue=queue,
            layout=layout,
        )

    # Part 2 fails both of botocore's tries (5xx): the merge stops, naming the object and part.
    s3_proxy.inject(INTERNAL_ERROR, times=2, method="PUT", query={"partNumber": "2"})
    with pytest.raises(DependencyUnavailable, match=rf"{merged.uri} .*part 2 .*InternalError"):
        merge()
    assert s3_client.list_objects_v2(Bucket=bucket, Prefix="avro/codeBan/merged/")["KeyCount"] == 0
    assert s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert queue.requests == []

    counts = merge()  # the re-run: S3 answers again

    assert counts.refusals == ()
    (merged_type,) = counts.types
    assert (merged_type.records, merged_type.duplicates) == (total, 10)
    data = s3_client.get_object(Bucket=bucket, Key=merged.key)["Body"].read()
    assert len(data) > 2 * PART, "a merged file of three parts"
    ids = [record["dedupeId"] for record in fastavro.reader(io.BytesIO(data))]  # type: ignore[index, call-overload]
    assert len(ids) == len(set(ids)) == total
    assert queue.requests == [MoveRequest("codeBan", DAY)]
    assert s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
