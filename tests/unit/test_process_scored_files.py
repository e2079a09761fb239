"""The scored-file worker, end to end over the in-memory fakes."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from returns.result import Failure, Success

from adapters.clock import FixedClock
from adapters.parallel import ProcessPoolChunkMapper
from domain.models import Campaign, ObjectRef, PutOutcome, StreamRecord
from domain.workers.process_scored_files import (
    ScoredFileCounts,
    ScoredFileFailure,
    process_scored_files,
)
from tests.support.memory_objects import InMemoryObjectStore
from tests.support.memory_scored_files import (
    InMemoryCampaignDirectory,
    InMemoryRecordStream,
    RecordingNotifier,
)

BUCKET = "scoring"
SOURCE = ObjectRef(BUCKET, "scored/cmp1.20240501T1200.txt")
SCRUBBED = ObjectRef(BUCKET, "scrubbed/cmp1.20240501T1200.csv")
BLACKLIST = ObjectRef(BUCKET, "blacklist.txt")
HEADER = "globalUserId\temail\tphone\tscore\tphoneConfirmed"
CAMPAIGN = Campaign("cmp1", name="Tour", band_salt=b"salt-1", slack_channel="#fans")


@pytest.fixture(autouse=True)
def _each_transform(chunk_transform: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here runs on the Python transform and on the compiled kernel."""
    monkeypatch.setattr(Run, "transform", staticmethod(chunk_transform))


class Run:
    transform: Any = None

    def __init__(
        self,
        body: str | bytes,
        *,
        campaign: Campaign = CAMPAIGN,
        blacklist: str = "Banned@Example.org\n# comment\n\n",
        stream: InMemoryRecordStream | None = None,
        notifier: RecordingNotifier | None = None,
        source: ObjectRef = SOURCE,
    ) -> None:
        data = body if isinstance(body, bytes) else body.encode()
        self.store = InMemoryObjectStore({source: data, BLACKLIST: blacklist.encode()})
        self.stream = stream or InMemoryRecordStream()
        self.notifier = notifier or RecordingNotifier()
        self.campaigns = InMemoryCampaignDirectory([campaign])
        self.source = source

    def __call__(self, **kwargs: Any) -> Success[ScoredFileCounts] | Failure[ScoredFileFailure]:
        return process_scored_files(  # type: ignore[return-value]
            self.source,
            store=self.store,
            stream=self.stream,
            campaigns=self.campaigns,
            notifier=self.notifier,
            clock=FixedClock(datetime(2024, 5, 1, 12, tzinfo=UTC)),
            encode=orjson.dumps,
            blacklist=BLACKLIST,
            transform=type(self).transform,
            **kwargs,
        )

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(r.data) for r in self.stream.records]

    def csv_rows(self) -> list[dict[str, str]]:
        text = self.store.objects[SCRUBBED].decode()
        return list(csv.DictReader(io.StringIO(text)))


def tsv(*rows: Sequence[str], header: str = HEADER) -> str:
    return header + "\n" + "".join("\t".join(row) + "\n" for row in rows)


GOOD = ("gu1", "fan@gmail.com", "(212) 555-0123", "0.97", "true")


def test_a_good_row_becomes_one_scoring_record_keyed_by_global_user_id() -> None:
    run = Run(tsv(GOOD))
    counts = run().unwrap()
    assert (counts.rows_in, counts.rows_out, counts.rows_rejected) == (1, 1, 0)
    (record,) = run.records()
    assert run.stream.records[0].partition_key == "gu1"
    assert record["type"] == "scoring"
    assert record["campaignId"] == "cmp1"
    assert record["phone"] == "+12125550123"
    assert record["score"] == 0.97
    assert record["band"] == "high"
    assert 0.95 <= record["band_score"] < 1.0
    assert record["verdict"] is True
    assert record["tags"] == []
    assert record["phoneConfirmed"] is True
    assert record["__meta"] == {"source": SOURCE.uri, "row": 2}
    assert len(record["dedupeId"]) == 32


def test_a_rerun_gives_the_same_records_and_csv() -> None:
    body = tsv(GOOD, ("gu2", "b@yahoo.com", "416-555-0199", "0.5", "no"))
    first, second = Run(body), Run(body)
    first().unwrap()
    second().unwrap()
    assert [r.data for r in first.stream.records] == [r.data for r in second.stream.records]
    assert first.store.objects[SCRUBBED] == second.store.objects[SCRUBBED]


def test_bom_crlf_padding_and_header_case_are_accepted() -> None:
    body = (
        "\ufeffGLOBALUSERID\tEmail\tPHONE\tScore\r\n  gu1 \t fan@gmail.com\t2125550123 \t 0.9\r\n"
    )
    run = Run(body)
    counts = run().unwrap()
    assert counts.rows_out == 1
    (record,) = run.records()
    assert (record["globalUserId"], record["email"], record["score"]) == (
        "gu1",
        "fan@gmail.com",
        0.9,
    )
    assert "unconfirmed_phone" in record["tags"]  # no phoneConfirmed column: unconfirmed


def test_unknown_columns_pass_through_and_absent_optional_ones_are_null() -> None:
    body = tsv(("gu1", "fan@gmail.com", "2125550123", "0.5", "vip"), header=HEADER.replace(
        "\tphoneConfirmed", "\tsegment"
    ))  # fmt: skip
    run = Run(body)
    run().unwrap()
    (record,) = run.records()
    assert record["segment"] == "vip"
    assert record["memberId"] is None
    assert run.csv_rows()[0]["segment"] == "vip"


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("globalUserId\temail\tphone", "score"),
        ("id\temail\tmobile\tscore", "globalUserId, phone"),
    ],
)
def test_missing_required_columns_fail_the_file_before_anything_is_streamed(
    header: str, missing: str
) -> None:
    run = Run(header + "\nx\ty\tz\t0.5\n")
    failure = run().failure()
    assert failure.kind == "missing_columns"
    assert missing in failure.message
    assert run.stream.records == []
    assert SCRUBBED not in run.store.objects
    assert run.notifier.notifications[0].ok is False


def test_an_empty_file_fails() -> None:
    run = Run(b"")
    assert run().failure().kind == "empty_file"
    assert SCRUBBED not in run.store.objects


def test_a_key_outside_the_scored_convention_fails_naming_the_key() -> None:
    source = ObjectRef(BUCKET, "scored/registrants.csv")
    run = Run(tsv(GOOD), source=source)
    failure = run().failure()
    assert failure.kind == "bad_key"
    assert "scored/registrants.csv" in failure.message


def test_a_campaign_without_band_salt_fails_the_file() -> None:
    run = Run(tsv(GOOD), campaign=replace(CAMPAIGN, band_salt=b""))
    failure = run().failure()
    assert failure.kind == "bad_campaign"
    assert "campaign cmp1 has no band salt" in failure.message
    assert run.stream.records == []


def test_an_unknown_campaign_fails_the_file_as_not_found() -> None:
    run = Run(tsv(GOOD), campaign=replace(CAMPAIGN, campaign_id="other"))
    assert run().failure().kind == "campaign_not_found"
    assert run.stream.records == []


def test_an_unreachable_campaign_directory_fails_the_file_as_unavailable() -> None:
    run = Run(tsv(GOOD))
    run.campaigns = InMemoryCampaignDirectory([CAMPAIGN], unavailable=True)
    assert run().failure().kind == "campaign_unavailable"
    assert run.stream.records == []


def test_a_missing_blacklist_fails_the_file() -> None:
    run = Run(tsv(GOOD))
    del run.store.objects[BLACKLIST]
    failure = run().failure()
    assert failure.kind == "blacklist_unavailable"
    assert BLACKLIST.uri in failure.message


def test_bad_rows_are_rejected_with_row_and_field_and_the_file_goes_on() -> None:
    run = Run(
        tsv(
            GOOD,
            ("gu2", "a@gmail.com", "2125550123"),
            ("", "b@gmail.com", "2125550123", "0.5", "true"),
            ("gu4", "c@gmail.com", "2125550123", "high", "true"),
            ("gu5", "d@gmail.com", "2125550123", "1.5", "true"),
            ("gu6", "e@gmail.com", "2125550123", "0.4", "true"),
        )
        .encode()
        .replace(b"gu6", b"gu\xff6")
        + b"gu7\tf@gmail.com\t2125550123\t0.3\ttrue\n"
    )
    counts = run().unwrap()
    assert (counts.rows_in, counts.rows_out, counts.rows_rejected) == (7, 2, 5)
    assert dict(counts.rejected_by_reason) == {
        "bad_column_count": 1,
        "missing_global_user_id": 1,
        "bad_score": 1,
        "score_out_of_range": 1,
        "bad_encoding": 1,
    }
    rows = {int(r["row"]): r for r in run.csv_rows()}
    assert sorted(rows) == [2, 3, 4, 5, 6, 7, 8]
    assert rows[3]["reason"].startswith("bad_column_count: 3 columns")
    assert rows[3]["raw"] == "gu2\ta@gmail.com\t2125550123"
    assert rows[4]["reason"] == "missing_global_user_id: globalUserId is empty"
    assert rows[5]["reason"] == "bad_score: score 'high' is not a number"
    assert "score '1.5' is outside [0, 1]" in rows[6]["reason"]
    assert rows[7]["raw"] == "gu\\xff6\te@gmail.com\t2125550123\t0.4\ttrue"
    assert [r["globalUserId"] for r in run.records()] == ["gu1", "gu7"]


def test_a_blacklisted_email_is_rejected_case_insensitively() -> None:
    run = Run(tsv(("gu1", " banned@EXAMPLE.org ", "2125550123", "0.9", "true")))
    counts = run().unwrap()
    assert dict(counts.rejected_by_reason) == {"blacklisted_email": 1}
    (row,) = run.csv_rows()
    assert (row["verdict"], row["reason"]) == (
        "false",
        "blacklisted_email: email is on the blacklist",
    )


def test_blocked_domains_match_subdomains_and_allowed_domains_win() -> None:
    run = Run(
        tsv(
            ("gu1", "x@inbox.mailinator.com", "2125550123", "0.9", "true"),
            ("gu2", "y@gmail.com", "2125550123", "0.9", "true"),
        )
    )
    counts = run().unwrap()
    assert dict(counts.rejected_by_reason) == {"blocked_domain": 1}
    assert [r["globalUserId"] for r in run.records()] == ["gu2"]


def test_international_phones_are_rejected_unless_the_campaign_allows_them() -> None:
    body = tsv(("gu1", "a@gmail.com", "+44 20 7946 0958", "0.9", "true"))
    strict = Run(body)
    assert dict(strict().unwrap().rejected_by_reason) == {"intl_phone": 1}
    assert strict.csv_rows()[0]["tags"] == "intl_phone"
    lenient = Run(body, campaign=replace(CAMPAIGN, allow_intl_phones=True))
    assert lenient().unwrap().rows_out == 1
    (record,) = lenient.records()
    assert record["tags"] == ["intl_phone"]
    assert record["phone"] == "+442079460958"


def test_canadian_numbers_are_domestic_for_a_us_campaign() -> None:
    run = Run(tsv(("gu1", "a@gmail.com", "416-555-0199", "0.9", "yes")))
    run().unwrap()
    (record,) = run.records()
    assert record["tags"] == []
    assert record["phone"] == "+14165550199"


def test_invalid_phones_and_emails_are_tagged_but_still_flow() -> None:
    run = Run(tsv(("gu1", "not-an-email", "555-1234", "0.9", "true")))
    counts = run().unwrap()
    assert counts.rows_out == 1
    assert counts.tagged == 1
    (record,) = run.records()
    assert set(record["tags"]) == {"invalid_phone", "invalid_email"}
    assert record["phone"] == "555-1234"
    assert dict(counts.by_tag) == {"invalid_email": 1, "invalid_phone": 1}


def test_scores_below_every_tier_keep_their_score_and_band_none() -> None:
    run = Run(tsv(("gu1", "a@gmail.com", "2125550123", "0.1", "true")))
    run().unwrap()
    (record,) = run.records()
    assert (record["band"], record["band_score"]) == ("none", 0.1)


def test_a_record_over_the_stream_limit_is_rejected_with_a_reason() -> None:
    run = Run(tsv(GOOD), stream=InMemoryRecordStream(max_record_bytes=100))
    counts = run().unwrap()
    assert dict(counts.rejected_by_reason) == {"record_too_large": 1}
    assert "the stream takes at most 100" in run.csv_rows()[0]["reason"]


def test_stranded_records_stop_the_run_with_what_was_streamed_and_a_rerun_puts_only_them() -> None:
    def strand_gu2(record: StreamRecord) -> bool:
        return record.partition_key == "gu2"

    rows = [GOOD, ("gu2", "b@gmail.com", "2125550123", "0.5", "true")]
    rows += [(f"gu{i}", f"f{i}@gmail.com", "2125550123", "0.5", "true") for i in range(3, 9)]
    run = Run(tsv(*rows), stream=InMemoryRecordStream(strand=strand_gu2))
    failure = run(rows_per_chunk=4).failure()
    assert failure.kind == "stranded"
    assert "1 record(s)" in failure.message and "resumes at line 2" in failure.message
    assert failure.counts is not None
    assert (failure.counts.rows_in, failure.counts.rows_out, failure.counts.stranded) == (4, 3, 1)
    assert SCRUBBED not in run.store.objects  # the CSV appears only when the file is complete
    assert run.notifier.notifications[-1].ok is False

    run.stream.strand = None  # the stream recovers; Lambda retries the event
    counts = run(rows_per_chunk=4).unwrap()
    assert [r.partition_key for r in run.stream.records] == [
        "gu1", "gu3", "gu4", "gu2", *(f"gu{i}" for i in range(5, 9))
    ]  # fmt: skip
    assert counts.resumed_at_line == 2
    uninterrupted = Run(tsv(*rows))
    expected = uninterrupted(rows_per_chunk=4).unwrap()
    assert run.store.objects[SCRUBBED] == uninterrupted.store.objects[SCRUBBED]
    assert _report(counts) == _report(expected)
    assert run.notifier.notifications[-1] == uninterrupted.notifier.notifications[-1]


def _report(counts: ScoredFileCounts) -> tuple[object, ...]:
    return (
        counts.rows_in,
        counts.rows_out,
        counts.rows_rejected,
        counts.stranded,
        counts.tagged,
        dict(counts.rejected_by_reason),
        dict(counts.by_tag),
        dict(counts.by_band),
    )


def test_a_completed_file_run_again_is_a_no_op_that_says_so() -> None:
    run = Run(tsv(GOOD, ("gu2", "b@gmail.com", "2125550123", "0.5", "true")))
    first = run().unwrap()
    scrubbed = run.store.objects[SCRUBBED]
    again = run().unwrap()
    assert again.already_processed and not first.already_processed
    assert _report(again) == _report(first)
    assert len(run.stream.records) == 2
    assert len(run.notifier.notifications) == 1
    assert run.store.objects[SCRUBBED] == scrubbed
    leftovers = [ref.key for ref in run.store.objects if ref.key.startswith("progress/")]
    # The done marker, and the lease the last run released (lease.py).
    assert sorted(leftovers) == [
        "progress/cmp1.20240501T1200/done.json",
        "progress/cmp1.20240501T1200/lease.json",
    ]


def test_a_new_upload_under_the_same_key_is_processed_afresh() -> None:
    run = Run(tsv(GOOD))
    run().unwrap()
    run.store.put_bytes(
        SOURCE, tsv(GOOD, ("gu2", "b@gmail.com", "2125550123", "0.5", "t")).encode()
    )
    counts = run().unwrap()
    assert (counts.rows_in, counts.rows_out, counts.already_processed) == (2, 2, False)
    assert [r.partition_key for r in run.stream.records] == ["gu1", "gu1", "gu2"]


def test_an_over_long_line_is_one_rejected_row_and_the_file_goes_on() -> None:
    rows = [
        GOOD,
        ("gu2", "x" * 500, "2125550123", "0.5", "true"),
        ("gu3", "c@gmail.com", "", "0.3", ""),
    ]
    run = Run(tsv(*rows))
    run.store.max_line_bytes = 200
    counts = run().unwrap()
    assert (counts.rows_in, counts.rows_out) == (3, 2)
    assert dict(counts.rejected_by_reason) == {"line_too_long": 1}
    row = run.csv_rows()[1]
    assert (row["row"], row["verdict"]) == ("3", "false")
    assert row["reason"].startswith("line_too_long: line is 5")
    assert "x" * 10 not in run.store.objects[SCRUBBED].decode()  # never echoed


def test_an_over_long_header_fails_the_file_before_anything_is_streamed() -> None:
    run = Run("globalUserId\temail\tphone\tscore" + "\tx" * 200 + "\n" + "\t".join(GOOD))
    run.store.max_line_bytes = 100
    failure = run().failure()
    assert failure.kind == "bad_header" and "line 1" in failure.message
    assert run.stream.records == []


def test_a_failing_notifier_never_fails_the_run() -> None:
    run = Run(tsv(GOOD), notifier=RecordingNotifier(fail_with="webhook 500"))
    counts = run().unwrap()
    assert counts.notify_error == "webhook 500"
    assert counts.rows_out == 1


def test_the_slack_summary_gives_in_out_tagged_rejected_by_tag_and_reason() -> None:
    run = Run(
        tsv(
            GOOD,
            ("gu2", "b@gmail.com", "bad", "0.5", "true"),
            ("gu3", "banned@example.org", "2125550123", "0.5", "true"),
        )
    )
    run().unwrap()
    (note,) = run.notifier.notifications
    assert dict(note.fields) == {"in": "3", "out": "2", "tagged": "1", "rejected": "1"}
    assert "tag invalid_phone: 1" in note.lines
    assert "rejected blacklisted_email: 1" in note.lines
    assert note.channel == "#fans"


def test_formula_injection_is_neutralised_but_e164_phones_stay_plain() -> None:
    run = Run(
        tsv(
            ("gu1", "a@gmail.com", "+12125550123", "0.9", "true"),
            ("gu2", "=HYPERLINK(1)", "+1 212 555 0123", "0.9", "true"),
        )
    )
    run().unwrap()
    first, second = run.csv_rows()
    assert first["phone"] == "+12125550123"
    assert second["email"] == "'=HYPERLINK(1)"
    assert second["phone"] == "'+1 212 555 0123"


def test_rows_stream_through_in_chunks_with_progress() -> None:
    rows = [(f"gu{i}", f"f{i}@gmail.com", "2125550123", "0.5", "true") for i in range(25)]
    seen: list[int] = []
    run = Run(tsv(*rows))
    counts = run(rows_per_chunk=10, checkpoint_rows=10, on_progress=seen.append).unwrap()
    assert seen == [10, 20, 25]
    assert counts.rows_out == 25
    assert run.store.writes[SCRUBBED] == 4  # header + one write per checkpoint


class CheckpointLog(InMemoryObjectStore):
    """Keeps every checkpoint written (the run deletes them at the end)."""

    def __init__(self, objects: dict[ObjectRef, bytes]) -> None:
        super().__init__(objects)
        self.parts: list[tuple[str, bytes]] = []

    def put_versioned(
        self, ref: ObjectRef, data: bytes, expected_version: str | None
    ) -> str | None:
        if "/part-" in ref.key:
            self.parts.append((ref.key.rsplit("/", 1)[1], data))
        return super().put_versioned(ref, data, expected_version)


def test_a_checkpoint_holds_the_chunks_acknowledged_until_checkpoint_rows_lines() -> None:
    rows = [(f"gu{i}", f"f{i}@gmail.com", "2125550123", "0.5", "true") for i in range(25)]
    run = Run(tsv(*rows))
    run.store = store = CheckpointLog(run.store.objects)
    run(rows_per_chunk=10, checkpoint_rows=15).unwrap()
    # 10 + 10 lines reach 15: one checkpoint; the last 5 at the end. The CSV rows all there.
    assert [name for name, _ in store.parts] == ["part-000001", "part-000002"]
    states = [json.loads(data.partition(b"\n")[0]) for _, data in store.parts]
    assert [state["next_line"] for state in states] == [22, 27]
    csv_rows = [data.partition(b"\n")[2].count(b"\r\n") for _, data in store.parts]
    assert csv_rows == [20, 5]


@dataclass
class FailingThirdPut(InMemoryRecordStream):
    """A stream whose third call raises (a connection lost for good, a bug)."""

    def put_records(self, records: Iterable[StreamRecord]) -> PutOutcome:
        if self.calls == 2:
            raise ConnectionError("the stream went away")
        return super().put_records(records)


def test_a_put_that_raises_still_checkpoints_the_chunks_acknowledged_before_it() -> None:
    rows = [(f"gu{i}", f"f{i}@gmail.com", "2125550123", "0.5", "true") for i in range(25)]
    run = Run(tsv(*rows), stream=FailingThirdPut())
    run.store = store = CheckpointLog(run.store.objects)
    with pytest.raises(ConnectionError):
        run(rows_per_chunk=10, checkpoint_rows=10_000)
    # The re-run starts after the 20 rows the stream took, not from the first row.
    assert [json.loads(data.partition(b"\n")[0])["next_line"] for _, data in store.parts] == [22]


def test_checkpoint_rows_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="checkpoint_rows must be at least 1, got 0"):
        Run(tsv(("gu1", "f@gmail.com", "2125550123", "0.5", "true")))(checkpoint_rows=0)


def test_the_process_pool_mapper_gives_the_same_output_as_the_sequential_one() -> None:
    rows: list[tuple[str, ...]] = [
        (f"gu{i}", f"f{i}@gmail.com", f"212555{i:04d}", f"0.{i:02d}", "true") for i in range(60)
    ]
    rows.append(("gu-bad", "x"))
    sequential, parallel = Run(tsv(*rows)), Run(tsv(*rows))
    expected = sequential(rows_per_chunk=7).unwrap()
    mapper = ProcessPoolChunkMapper(processes=2, max_in_flight=3)
    got = parallel(rows_per_chunk=7, mapper=mapper).unwrap()
    assert (got.rows_in, got.rows_out, got.rows_rejected) == (
        expected.rows_in,
        expected.rows_out,
        expected.rows_rejected,
    )
    assert [r.data for r in parallel.stream.records] == [r.data for r in sequential.stream.records]
    assert parallel.store.objects[SCRUBBED] == sequential.store.objects[SCRUBBED]


def test_a_score_of_minus_zero_streams_as_zero_and_unicode_digits_are_not_a_score() -> None:
    rows = [
        ("gu1", "a@gmail.com", "2125550123", "-0", "t"),
        ("gu2", "b@gmail.com", "", "\uff11", ""),
    ]
    run = Run(tsv(*rows))
    counts = run().unwrap()
    (record,) = run.records()
    assert str(record["score"]) == "0.0" and run.stream.records[0].data.count(b'"score":0.0,') == 1
    assert dict(counts.rejected_by_reason) == {"bad_score": 1}


def test_a_file_with_cr_only_line_ends_says_it_has_no_line_breaks() -> None:
    rows = "\r".join(["\t".join(GOOD)] * 300)
    failure = Run(HEADER + "\r" + rows + "\r")().failure()
    assert failure.kind == "bad_header"
    assert "no line breaks" in failure.message and len(failure.message) < 120


FULLWIDTH_MAILINATOR = "".join(chr(0xFF41 + ord(c) - ord("a")) for c in "mailinator") + ".com"


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        (f"ivy@{FULLWIDTH_MAILINATOR}", "blocked_domain"),  # fullwidth letters: NFKC
        ("ivy@MailInator.COM", "blocked_domain"),  # case
        ("ivy@inbox.MAILINATOR.com", "blocked_domain"),  # a subdomain, in capitals
        ("BANNED@EXAMPLE.ORG", "blacklisted_email"),  # case against the blacklist
        ("zoë@bücher.de", "blacklisted_email"),  # an IDN listed in its xn-- form
    ],
)
def test_blacklist_and_blocked_domains_compare_the_normalised_address(
    email: str, reason: str
) -> None:
    blacklist = "banned@example.org\nzoë@xn--bcher-kva.de\n"
    run = Run(tsv(("gu1", email, "2125550123", "0.5", "true")), blacklist=blacklist)
    counts = run().unwrap()
    assert dict(counts.rejected_by_reason) == {reason: 1}, email


def test_a_chunk_of_no_rows_is_refused_before_anything_is_read_or_written() -> None:
    # islice(lines, 0) reads nothing: such a run would mark the file done with no row streamed.
    run = Run(tsv(GOOD))
    with pytest.raises(ValueError, match="rows_per_chunk must be at least 1"):
        run(rows_per_chunk=0)
    assert run.stream.records == [] and SCRUBBED not in run.store.objects
