"""The embedded emulator and its Kinesis fix (moto 5.2's quadratic shard made linear).

If moto is upgraded and the patched methods moved or changed, the fix stops applying and the
first tests here fail, naming what changed: review local/emulator.py, then re-pin.
"""

from __future__ import annotations

import tomllib
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import moto
import pytest
from botocore.exceptions import EndpointConnectionError
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.kinesis.models import Shard

from adapters.aws.clients import ClientFactory, ClientOptions
from local import emulator as emu
from local.moto_patch import PATCHED_MOTO_VERSION, fingerprint

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_the_kinesis_fix_applies_to_the_pinned_moto() -> None:
    status = emu.KINESIS_FIX.apply()
    assert status.applied, status.reason
    for qualified, replacement in emu.PATCHES.items():
        name = qualified.removeprefix("Shard.")
        assert Shard.__dict__[name] is replacement, f"{qualified} is not patched"


def test_the_patched_originals_are_the_ones_the_fix_was_written_for() -> None:
    emu.KINESIS_FIX.apply()
    assert set(emu.KINESIS_FIX.originals) == set(emu.ORIGINAL_FINGERPRINTS)
    for name, original in emu.KINESIS_FIX.originals.items():
        assert fingerprint(original) == emu.ORIGINAL_FINGERPRINTS[name], name


def test_moto_is_pinned_to_the_version_the_fix_was_written_for() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert (
        f"moto[server]=={PATCHED_MOTO_VERSION}"
        in project["project"]["optional-dependencies"]["local"]
    )
    assert moto.__version__ == PATCHED_MOTO_VERSION


def test_a_changed_method_is_detected_and_not_patched() -> None:
    class ChangedShard:
        def get_records(self) -> None: ...

        def get_max_sequence_number(self) -> None: ...

    problem = emu.KINESIS_FIX.check({"Shard": ChangedShard})
    assert problem is not None and "differs" in problem
    assert "is gone" in (emu.KINESIS_FIX.check({"Shard": type("Empty", (), {})}) or "")


class NoFullScans(OrderedDict[int, Any]):
    """A shard's records that refuse the whole-shard scans the stock methods make."""

    def _scan(self) -> NoReturn:
        raise AssertionError("scanned the whole shard")

    def keys(self) -> NoReturn:  # type: ignore[override]
        self._scan()

    def values(self) -> NoReturn:  # type: ignore[override]
        self._scan()

    def items(self) -> NoReturn:  # type: ignore[override]
        self._scan()


def shard_with(count: int, records: OrderedDict[int, Any] | None = None) -> Shard:
    emu.KINESIS_FIX.apply()
    shard = Shard(0, 0, 2**128 - 1)
    if records is not None:
        shard.records = records
    for i in range(count):
        shard.put_record(f"k{i % 7}", f"data-{i}", None)  # type: ignore[arg-type]
    return shard


def test_puts_and_reads_no_longer_scan_the_shard() -> None:
    """The linearity, checked structurally (no clock): neither a put nor a read from the middle
    touches keys()/values()/items(), which the stock methods copy or walk in full."""
    shard = shard_with(1_000, NoFullScans())
    records, last, _ = shard.get_records("499", 10)
    assert [r.sequence_number for r in records] == list(range(500, 510))
    assert last == 509
    assert shard.get_min_sequence_number() == 1
    assert shard.get_max_sequence_number() == 1_000
    with pytest.raises(AssertionError, match="scanned"):
        emu.KINESIS_FIX.originals["Shard.get_max_sequence_number"](shard)


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(0, 60),
    start=st.integers(-2, 70),
    limit=st.one_of(st.none(), st.integers(1, 80)),
)
def test_patched_get_records_answers_exactly_like_moto(
    count: int, start: int, limit: int | None
) -> None:
    shard = shard_with(count)
    stock = emu.KINESIS_FIX.originals["Shard.get_records"](shard, str(start), limit)
    fixed = shard.get_records(str(start), limit)
    assert fixed[0] == stock[0]
    assert fixed[1] == stock[1]
    assert fixed[2] == stock[2]
    assert shard.get_min_sequence_number() == emu.KINESIS_FIX.originals[
        "Shard.get_min_sequence_number"
    ](shard)
    assert shard.get_max_sequence_number() == emu.KINESIS_FIX.originals[
        "Shard.get_max_sequence_number"
    ](shard)


def test_get_records_from_the_middle_of_a_shard_over_http(
    kinesis_client: Any, make_stream: Callable[..., str]
) -> None:
    name = make_stream(shards=1)
    for start in range(0, 1_000, 500):
        kinesis_client.put_records(
            StreamName=name,
            Records=[
                {"PartitionKey": "k", "Data": f"r{i}".encode()} for i in range(start, start + 500)
            ],
        )
    shard_id = kinesis_client.list_shards(StreamName=name)["Shards"][0]["ShardId"]

    def iterator(kind: str, sequence: str | None = None) -> str:
        extra = {"StartingSequenceNumber": sequence} if sequence else {}
        return str(
            kinesis_client.get_shard_iterator(
                StreamName=name, ShardId=shard_id, ShardIteratorType=kind, **extra
            )["ShardIterator"]
        )

    first = kinesis_client.get_records(ShardIterator=iterator("TRIM_HORIZON"), Limit=1)
    base = int(first["Records"][0]["SequenceNumber"])
    middle = str(base + 400)

    page = kinesis_client.get_records(
        ShardIterator=iterator("AT_SEQUENCE_NUMBER", middle), Limit=50
    )
    assert [r["Data"] for r in page["Records"]] == [f"r{i}".encode() for i in range(400, 450)]
    following = kinesis_client.get_records(ShardIterator=page["NextShardIterator"], Limit=3)
    assert [r["Data"] for r in following["Records"]] == [b"r450", b"r451", b"r452"]

    after = kinesis_client.get_records(
        ShardIterator=iterator("AFTER_SEQUENCE_NUMBER", middle), Limit=2
    )
    assert [r["Data"] for r in after["Records"]] == [b"r401", b"r402"]

    latest = iterator("LATEST")
    assert kinesis_client.get_records(ShardIterator=latest, Limit=10)["Records"] == []
    kinesis_client.put_record(StreamName=name, PartitionKey="k", Data=b"new")
    assert [r["Data"] for r in kinesis_client.get_records(ShardIterator=latest)["Records"]] == [
        b"new"
    ]


def test_the_emulator_runs_in_its_own_process_for_benchmarks() -> None:
    with emu.EmulatorProcess() as process:
        assert process.endpoint_url.startswith("http://127.0.0.1:")
        factory = ClientFactory(ClientOptions(endpoint_url=process.endpoint_url))
        s3 = factory.client("s3", max_attempts=1)
        s3.create_bucket(Bucket="separate-process")
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert names == ["separate-process"], "a separate process has its own backends"
    with pytest.raises(EndpointConnectionError):
        s3.list_buckets()


def test_test_credentials_are_used_only_for_local_endpoints(
    emulator: emu.EmbeddedEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    local = ClientFactory(ClientOptions(endpoint_url=emulator.endpoint_url))
    assert local.session.get_credentials().access_key == "testing"  # type: ignore[union-attr]
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    remote = ClientFactory(ClientOptions(endpoint_url="https://kinesis.us-east-1.amazonaws.com"))
    assert remote.session.get_credentials() is None, "never test credentials against real AWS"
