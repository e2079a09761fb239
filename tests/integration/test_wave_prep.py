"""Wave prep adapters over HTTP and the emulator's S3, and the worker end to end on them."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from returns.result import Failure, Success

from adapters.aws.s3 import S3ObjectStore
from adapters.aws.wave_prep import S3ReservationLedger, S3WaveStatusStore
from adapters.campaign_config import S3CampaignDirectory
from adapters.http.campaigns import HttpCampaignDirectory
from adapters.http.client import JsonHttpClient
from adapters.http.eligible_fans import HttpEligibleFans
from adapters.leases import ObjectLeases
from adapters.wave_package import ZipPackage
from adapters.wave_selections import StoredWaveSelections
from domain.backoff import no_wait
from domain.codes import Reservation
from domain.models import ObjectRef
from domain.streaming import DependencyUnavailable
from domain.wave_prep.fans import BrokenSource, EligibilityQuery
from domain.wave_prep.markets import CampaignMarket
from domain.wave_prep.request import WavePrepRequest
from domain.wave_prep.status import Phase, WaveStatus
from domain.wave_prep.turns import SelectionTurns
from domain.workers.process_sms_wave_files import (
    market_details_ref,
    package_ref,
    process_sms_wave_files,
)
from tests.support.code_fakes import MemoryCodeInventory
from tests.support.fake_wave_services import FakeScoringService, entry
from tests.support.http_server import Fault, LocalHttpServer, Response, running_server
from tests.support.wave_world import StepClock, market_csv


def selection_turns(store: S3ObjectStore, bucket: str, clock: StepClock) -> SelectionTurns:
    """The campaign's selection lease as in production: an object in S3, conditional puts."""
    return SelectionTurns(
        ObjectLeases(store, bucket, "leases/", holder="t", clock=clock), clock.sleep
    )


pytestmark = pytest.mark.integration


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with running_server() as s:
        yield s


@pytest.fixture
def service(server: LocalHttpServer) -> FakeScoringService:
    return FakeScoringService(server)


def client(server: LocalHttpServer) -> JsonHttpClient:
    return JsonHttpClient("entry service", server.url, read_timeout=1.0, retry=no_wait(retries=2))


def test_eligible_fans_are_paged_with_the_query_and_parsed(
    server: LocalHttpServer, service: FakeScoringService
) -> None:
    service.entries["c1"] = [entry(i, i / 2500, ["m1", "m2"]) for i in range(2500)]
    server.inject(Fault.status(503))  # a blip, retried by the client
    source = HttpEligibleFans(client(server), page_size=1000)
    query = EligibilityQuery(min_score=0.5, market_ids=("m1",))
    fans = [r.unwrap() for r in source.eligible_fans("c1", query)]
    assert len(fans) == 1250 and fans[0].phone.startswith("+1212555")
    calls = server.requests_to("GET", "/c1/entries/scoring")
    assert [c.query["offset"][0] for c in calls if c.fault is None] == ["0", "1000"]
    assert calls[-1].query["minScore"] == ["0.5"] and calls[-1].query["marketIds"] == ["m1"]


@pytest.mark.parametrize(
    ("misbehave", "expected"),
    [("forever", "more than the"), ("ignore_offset", "ignores the offset")],
)
def test_a_service_that_pages_forever_or_ignores_the_offset_is_broken(
    server: LocalHttpServer, service: FakeScoringService, misbehave: str, expected: str
) -> None:
    service.entries["c1"] = [entry(i, 0.5, ["m1"]) for i in range(25)]
    service.misbehave = misbehave
    source = HttpEligibleFans(client(server), page_size=10)
    with pytest.raises(BrokenSource, match=expected):
        list(source.eligible_fans("c1", EligibilityQuery()))


def test_garbage_pages_are_broken_and_bad_entries_are_counted_one_by_one(
    server: LocalHttpServer,
) -> None:
    server.route("GET", "/c1/entries/scoring", lambda r: Response.json({"items": []}))
    with pytest.raises(BrokenSource, match="unexpected response shape"):
        list(HttpEligibleFans(client(server)).eligible_fans("c1", EligibilityQuery()))
    bad = {
        "list": [
            entry(1, 0.5, ["m1"]),
            {"_id": {}},
            entry(2, "high", ["m1"]),  # type: ignore[arg-type]  # a score that is not a number
        ],
        "counts": {"total": 3},
    }
    server.route("GET", "/c2/entries/scoring", lambda r: Response.json(bad))
    results = list(HttpEligibleFans(client(server)).eligible_fans("c2", EligibilityQuery()))
    assert isinstance(results[0], Success)
    assert [r.failure() for r in results[1:]] == [  # type: ignore[union-attr]
        "entry without _id.globalUserId",
        "entry g00002: score is not a number",
    ]


def test_a_service_that_stays_down_raises_dependency_unavailable(server: LocalHttpServer) -> None:
    server.inject(Fault.status(500), times=3)
    with pytest.raises(DependencyUnavailable):
        list(HttpEligibleFans(client(server)).eligible_fans("c1", EligibilityQuery()))


def test_campaign_markets_over_http_and_from_the_s3_config(
    server: LocalHttpServer,
    service: FakeScoringService,
    s3_client: Any,
    make_bucket: Callable[[], str],
) -> None:
    service.markets["c1"] = [{"id": "m1", "name": "New York"}, {"id": 7, "name": "Paris"}]
    directory = HttpCampaignDirectory(client(server))
    assert directory.markets("c1").unwrap() == (
        CampaignMarket("m1", "New York"),
        CampaignMarket("7", "Paris"),
    )
    assert directory.markets("zz").failure().kind == "not_found"  # type: ignore[union-attr]
    bucket = make_bucket()
    store = S3ObjectStore(s3_client)
    store.put_bytes(
        ObjectRef(bucket, "campaigns/c1.json"), b'{"id": "c1", "markets": [{"id": "m1"}]}'
    )
    store.put_bytes(ObjectRef(bucket, "campaigns/c2.json"), b'{"id": "c2"}')
    s3_directory = S3CampaignDirectory(store, bucket)
    assert s3_directory.markets("c1").unwrap() == (CampaignMarket("m1"),)
    assert "lists no markets" in s3_directory.markets("c2").failure().detail  # type: ignore[union-attr]


def test_the_status_is_written_only_by_the_writer_that_read_it_last(
    s3_client: Any, make_bucket: Callable[[], str]
) -> None:
    store = S3WaveStatusStore(S3ObjectStore(s3_client), make_bucket())
    started = datetime(2026, 12, 1, tzinfo=UTC)
    status = WaveStatus("c1", "2026-12-01", Phase.TRIGGERED, 1, started)
    assert store.read("c1", "2026-12-01") is None
    first = store.write(status, None)
    assert first is not None
    assert store.write(status, None) is None  # a second trigger racing the first
    second = store.write(status.fail(started, "boom"), first)
    assert second is not None
    assert store.write(status, first) is None  # a stale version
    read = store.read("c1", "2026-12-01")
    assert read is not None and read[0].phase is Phase.FAILED and read[1] == second


def test_a_reservation_is_recorded_once_and_the_first_one_wins(
    s3_client: Any, make_bucket: Callable[[], str]
) -> None:
    ledger = S3ReservationLedger(S3ObjectStore(s3_client), make_bucket())
    key = "c1/2026-12-01/m1/0"
    assert ledger.recorded(key) is None
    first = Reservation(key, "r1", ("A", "B"))
    assert ledger.record(first) == first
    assert ledger.record(Reservation(key, "r2", ("C", "D"))) == first
    assert ledger.recorded(key) == first


def test_scenario_4_end_to_end_over_http_and_s3(
    server: LocalHttpServer,
    service: FakeScoringService,
    s3_client: Any,
    make_bucket: Callable[[], str],
) -> None:
    bucket = make_bucket()
    store = S3ObjectStore(s3_client)
    store.put_bytes(ObjectRef(bucket, "campaigns/c1.json"), b'{"id": "c1", "bandSalt": "s"}')
    markets = [("m1", "New York", 40, "external"), ("m2", "London", 30, "external")]
    store.put_bytes(market_details_ref(bucket, "c1", "2026-12-01"), market_csv(markets))
    service.markets["c1"] = [{"id": "m1"}, {"id": "m2"}]
    service.entries["c1"] = [
        entry(i, (i * 37 % 100) / 100, ["m1", "m2"] if i % 2 else ["m2", "m1"]) for i in range(300)
    ]
    inventory = MemoryCodeInventory(fail_calls={4})
    status = S3WaveStatusStore(S3ObjectStore(s3_client), bucket)
    ledger = S3ReservationLedger(S3ObjectStore(s3_client), bucket)
    clock = StepClock()

    def run() -> Any:
        return process_sms_wave_files(
            WavePrepRequest("c1", "2026-12-01", random_selection=True),
            bucket=bucket,
            store=store,
            campaigns=S3CampaignDirectory(store, bucket),
            markets=HttpCampaignDirectory(client(server)),
            fans=HttpEligibleFans(client(server), page_size=64),
            codes=inventory,
            ledger=ledger,
            status=status,
            package=ZipPackage(store),
            selections=StoredWaveSelections(store, bucket),
            turns=selection_turns(store, bucket, clock),
            clock=clock,
            reserve_batch=16,
        )

    first = run()
    assert isinstance(first, Failure) and first.failure().kind == "codes_unavailable"
    assert store.head(package_ref(bucket, "c1", "2026-12-01")) is None
    read = status.read("c1", "2026-12-01")
    assert read is not None and (read[0].phase, read[0].attempts) == (Phase.FAILED, 1)
    second = run()
    assert isinstance(second, Success)
    assert len(inventory.reserved) == len(set(inventory.reserved)) == 70
    raw = store.read_bytes(package_ref(bucket, "c1", "2026-12-01"))
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        master = [
            line.split(",")[0]
            for name in ("masterCodes/m1.csv", "masterCodes/m2.csv")
            for line in archive.read(name).decode().splitlines()[1:]
        ]
    assert len(master) == len(set(master)) == 70
    final = status.read("c1", "2026-12-01")
    assert final is not None and (final[0].phase, final[0].attempts) == (Phase.FINISHED, 2)


def _scoring(i: int, campaign: str, **more: Any) -> dict[str, Any]:
    return {
        "type": "scoring",
        "dedupeId": f"d{i}",
        "campaignId": campaign,
        "globalUserId": f"g{i}",
        "memberId": f"u{i}",
        "email": f"fan{i}@example.com",
        "phone": "+12125550100",
        "marketId": "m1",
        "score": 0.5,
        "band_score": 0.9,
        "tags": [],
        "verdict": True,
    } | more


def test_the_lake_streams_a_campaigns_scoring_records_with_who_is_coded(
    s3_client: Any, make_bucket: Callable[[], str], lake_decoder: str
) -> None:
    from adapters.avro import AvroSchemas
    from adapters.aws.lake_fans import LakeEligibleFans

    bucket = make_bucket()
    store = S3ObjectStore(s3_client, chunk_size=512)  # many chunks per object
    schemas = AvroSchemas()
    records = [_scoring(i, "c1") for i in range(300)] + [_scoring(900, "other")]
    records[1] = _scoring(1, "c1", band_score=None, verdict=None)
    store.put_bytes(
        ObjectRef(bucket, "avro/scoring/2026/12/01/a.avro"), schemas.encode("scoring", records)
    )
    coded = [
        {
            "type": "codeAssignment",
            "dedupeId": "x",
            "code": "C1",
            "globalUserId": "g2",
            "campaignId": "c1",
        }
    ]
    store.put_bytes(
        ObjectRef(bucket, "avro/codeAssignment/2026/12/01/b.avro"),
        schemas.encode("codeAssignment", coded),
    )
    lake = LakeEligibleFans(store, bucket, decoder=lake_decoder)
    fans = [r.unwrap() for r in lake.eligible_fans("c1", EligibilityQuery())]
    assert len(fans) == 300 and {f.global_user_id for f in fans} == {f"g{i}" for i in range(300)}
    by_id = {f.global_user_id: f for f in fans}
    assert by_id["g0"].score == 0.9 and by_id["g0"].market_ids == ("m1",)
    assert by_id["g1"].score == 0.5 and by_id["g1"].verdict
    assert by_id["g2"].has_codes and not by_id["g3"].has_codes


def test_scenario_4_with_the_code_service_timing_out_over_http(
    server: LocalHttpServer,
    service: FakeScoringService,
    s3_client: Any,
    make_bucket: Callable[[], str],
) -> None:
    import time as _time

    from adapters.http.codes import HttpCodeInventory
    from tests.support.fake_code_services import FakeCodeService
    from tests.support.http_server import Request

    class TimingOutCodeService(FakeCodeService):
        """Answers its third to fifth reserve calls too late for the client (a timeout; the
        service still reserves, as a real one would: those codes expire unused)."""

        calls = 0

        def _reserve(self, request: Request) -> Response:
            TimingOutCodeService.calls += 1
            if 3 <= TimingOutCodeService.calls <= 5:
                _time.sleep(0.5)
            return super()._reserve(request)

    with running_server() as code_server:
        codes_service = TimingOutCodeService(code_server)
        codes_service.stock("c1", [f"X{i:03d}" for i in range(300)])
        inventory = HttpCodeInventory(
            JsonHttpClient("code service", code_server.url, read_timeout=0.3, retry=no_wait(2))
        )
        bucket = make_bucket()
        store = S3ObjectStore(s3_client)
        store.put_bytes(ObjectRef(bucket, "campaigns/c1.json"), b'{"id": "c1"}')
        markets = [("m1", "New York", 40, "external"), ("m2", "London", 30, "external")]
        store.put_bytes(market_details_ref(bucket, "c1", "2026-12-01"), market_csv(markets))
        service.markets["c1"] = [{"id": "m1"}, {"id": "m2"}]
        service.entries["c1"] = [
            entry(i, (i * 37 % 100) / 100, ["m1", "m2"] if i % 2 else ["m2", "m1"])
            for i in range(300)
        ]
        status = S3WaveStatusStore(S3ObjectStore(s3_client), bucket)
        clock = StepClock()

        def run() -> Any:
            return process_sms_wave_files(
                WavePrepRequest("c1", "2026-12-01"),
                bucket=bucket,
                store=store,
                campaigns=S3CampaignDirectory(store, bucket),
                markets=HttpCampaignDirectory(client(server)),
                fans=HttpEligibleFans(client(server)),
                codes=inventory,
                ledger=S3ReservationLedger(S3ObjectStore(s3_client), bucket),
                status=status,
                package=ZipPackage(store),
                selections=StoredWaveSelections(store, bucket),
                turns=selection_turns(store, bucket, clock),
                clock=clock,
                reserve_batch=16,
            )

        first = run()
        assert isinstance(first, Failure) and first.failure().kind == "codes_unavailable"
        read = status.read("c1", "2026-12-01")
        assert read is not None and (read[0].phase, read[0].attempts) == (Phase.FAILED, 1)
        assert store.head(package_ref(bucket, "c1", "2026-12-01")) is None
        second = run()
        assert isinstance(second, Success) and second.unwrap().codes_reused == 32
        raw = store.read_bytes(package_ref(bucket, "c1", "2026-12-01"))
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            rows = [
                line.split(",")
                for name in ("masterCodes/m1.csv", "masterCodes/m2.csv")
                for line in archive.read(name).decode().splitlines()[1:]
            ]
        fans, used = [r[0] for r in rows], [r[6] for r in rows]
        assert len(set(fans)) == len(fans) == 70 and len(set(used)) == 70
        # Every code in the files is reserved (held for this wave), none assigned elsewhere.
        assert {codes_service.status("c1", c) for c in used} == {"reserved"}
        final = status.read("c1", "2026-12-01")
        assert final is not None and (final[0].phase, final[0].attempts) == (Phase.FINISHED, 2)


def test_a_damaged_lake_object_is_an_error_naming_it(
    s3_client: Any, make_bucket: Callable[[], str], lake_decoder: str
) -> None:
    from adapters.avro import AvroSchemas
    from adapters.avro_fans import LakeObjectDamaged
    from adapters.aws.lake_fans import LakeEligibleFans

    bucket = make_bucket()
    store = S3ObjectStore(s3_client, chunk_size=512)
    data = AvroSchemas().encode("scoring", [_scoring(i, "c1") for i in range(300)])
    key = "avro/scoring/2026/12/01/cut.avro"
    store.put_bytes(ObjectRef(bucket, key), data[: len(data) - 40])  # cut inside its last block
    lake = LakeEligibleFans(store, bucket, decoder=lake_decoder)
    with pytest.raises(LakeObjectDamaged, match=f"lake object {key}"):
        list(lake.eligible_fans("c1", EligibilityQuery(reassign=True)))


def test_a_lake_schema_the_kernel_does_not_take_is_read_by_fastavro_with_the_same_fans(
    s3_client: Any, make_bucket: Callable[[], str], lake_decoder: str
) -> None:
    import io

    import fastavro

    from adapters.aws.lake_fans import LakeEligibleFans

    bucket = make_bucket()
    store = S3ObjectStore(s3_client, chunk_size=512)
    # An evolved schema with the market as an enum: fastavro gives its symbol as text.
    schema = {
        "type": "record",
        "name": "Scoring",
        "fields": [
            {"name": "campaignId", "type": "string"},
            {"name": "globalUserId", "type": "string"},
            {"name": "marketId", "type": {"type": "enum", "name": "M", "symbols": ["m1", "m2"]}},
            {"name": "score", "type": "double"},
        ],
    }
    out = io.BytesIO()
    records = [
        {"campaignId": "c1", "globalUserId": f" g{i} ", "marketId": "m2", "score": 0.25}
        for i in range(50)
    ]
    fastavro.writer(out, fastavro.parse_schema(schema), records, codec="deflate")
    store.put_bytes(ObjectRef(bucket, "avro/scoring/2026/12/01/e.avro"), out.getvalue())
    lake = LakeEligibleFans(store, bucket, decoder=lake_decoder)
    fans = [r.unwrap() for r in lake.eligible_fans("c1", EligibilityQuery(reassign=True))]
    assert [(f.global_user_id, f.market_ids, f.score) for f in fans] == [
        (f"g{i}", ("m2",), 0.25) for i in range(50)
    ]
