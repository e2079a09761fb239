"""translate-ranks-to-scores through the installed CLI against the emulator: a spreadsheet-saved
fanlist upload becomes one record per good row on the ranks stream, a manifest beside it, and the
same command again puts nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).with_name("campaign-workers"))
KEY = "fanlist/uploaded/camp9/list.csv"


def stream_data(kinesis: Any, stream: str) -> list[dict[str, Any]]:
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return [json.loads(r["Data"]) for r in kinesis.get_records(ShardIterator=iterator)["Records"]]


def test_a_fanlist_upload_is_scored_onto_the_ranks_stream_once_with_its_manifest(
    emulator: Any,
    make_bucket: Callable[[], str],
    make_stream: Callable[..., str],
    s3_client: Any,
    kinesis_client: Any,
    tmp_path: Path,
) -> None:
    bucket, stream = make_bucket(), make_stream()
    config = {"id": "camp9", "name": "Fanlist", "scoring": "xnum"}
    s3_client.put_object(Bucket=bucket, Key="campaigns/camp9.json", Body=json.dumps(config))
    body = '\ufeffmemberId,rank,note\r\nm1,1,"a, b"\r\nm2,2,x\r\nm3,two,y\r\nm4,4,z\r\n'
    s3_client.put_object(Bucket=bucket, Key=KEY, Body=body.encode())
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "SCORING_BUCKET": bucket,
        "FANLIST_RANKS_STREAM": stream,
    }

    def run() -> dict[str, Any]:
        done = subprocess.run(
            [CLI, "translate-ranks-to-scores", KEY, "--quiet"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        answer: dict[str, Any] = json.loads(done.stdout)
        return answer

    first = run()
    records = stream_data(kinesis_client, stream)
    assert [(r["memberId"], r["rank"], r["score"]) for r in records] == [
        ("m1", 1, 1.0), ("m2", 2, 0.75), ("m4", 4, 0.25),
    ]  # fmt: skip
    manifest = json.loads(
        s3_client.get_object(Bucket=bucket, Key="fanlist/uploaded/camp9/manifest.json")[
            "Body"
        ].read()
    )
    assert manifest["count"] == {"rows": 4, "streamed": 3, "bad": 1, "rejected": 0}
    assert manifest["badRows"] == [{"row": 3, "reason": "rank_not_an_integer"}]
    assert first["alreadyProcessed"] is False and first["maxRank"] == 4
    second = run()
    assert second["alreadyProcessed"] is True
    assert len(stream_data(kinesis_client, stream)) == 3
