"""save-stats then slack-stats through the installed CLI against the emulator: Avro files in
the lake bucket, a wave prep status object, a campaign config; the stats object written and
the post made (to the log notifier: no webhook configured)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro
import pytest

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).with_name("campaign-workers"))
SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "Registration",
        "fields": [
            {"name": "campaignId", "type": "string"},
            {"name": "globalUserId", "type": "string"},
        ],
    }
)


def avro(records: list[dict[str, Any]]) -> bytes:
    out = io.BytesIO()
    fastavro.writer(out, SCHEMA, records)
    return out.getvalue()


def test_stats_are_counted_from_the_lake_and_posted_for_open_campaigns_only(
    emulator: Any, make_bucket: Callable[[], str], s3_client: Any, tmp_path: Path
) -> None:
    scoring, lake = make_bucket(), make_bucket()
    for cid, status in (("c1", "open"), ("c2", "closed")):
        config = {"id": cid, "name": cid.upper(), "status": status,
                  "slack": {"channels": {"stats": f"#{cid}"}}}  # fmt: skip
        s3_client.put_object(Bucket=scoring, Key=f"campaigns/{cid}.json", Body=json.dumps(config))
    rows = [{"campaignId": "c1", "globalUserId": f"g{i}"} for i in range(7)]
    rows += [{"campaignId": "c2", "globalUserId": "x"}]
    s3_client.put_object(Bucket=lake, Key="avro/registration/2026/02/01/a.avro", Body=avro(rows))
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "SCORING_BUCKET": scoring,
        "CAMPAIGN_DATA_BUCKET": lake,
    }

    def run(command: str) -> dict[str, Any]:
        done = subprocess.run(
            [CLI, command, "--quiet"], env=env, cwd=tmp_path, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        answer: dict[str, Any] = json.loads(done.stdout)
        return answer

    saved = run("save-stats")
    assert saved["campaigns"] == 1 and saved["records"] == 8 and saved["tookSeconds"] >= 0
    doc = json.loads(s3_client.get_object(Bucket=scoring, Key="stats/c1.json")["Body"].read())
    assert doc["registrations"] == 7 and doc["name"] == "C1"
    posted = run("slack-stats")
    assert posted["posted"] == ["c1"]
    listing = s3_client.list_objects_v2(Bucket=scoring, Prefix="stats/")
    assert [o["Key"] for o in listing["Contents"]] == ["stats/c1.json"]
