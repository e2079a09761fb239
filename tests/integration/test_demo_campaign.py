"""`make demo` at a small size: the whole campaign (Workflow 1) on its own embedded emulator,
every worker through its Lambda handler or the shard poller; every fan of the scored file is
accounted for, each stage's counts balance, and each stage takes in what the one before it put
out."""

from __future__ import annotations

import html
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from entrypoints import runtime
from local.demo import DemoResult, demo_run

pytestmark = pytest.mark.integration

WORKERS = [
    "process_scored_files",
    "save_campaign_data",
    "translate_ranks_to_scores",
    "process_sms_wave_files",
    "(upload service, in the demo)",
    "generate_sms_wave_codes",
    "process_scheduled_wave",
    "sms_wave_scheduler",
    "load_code_assignments_to_stream",
    "save_campaign_data",
    "transform_code_assignments",
    "save_selection",
    "sms_wave_send",
    "merge_avro_files",
    "move_merged_avro_files",
    "save_stats + slack_stats",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoResult, str]]:
    """One run for the module; the process's environment and settings restored after it (the
    demo points them at its own emulator)."""
    saved = dict(os.environ)
    out = io.StringIO()
    try:
        result = demo_run(
            fans=300,
            wave=50,
            parallel=False,
            console=Console(file=out, width=120),
            output=tmp_path_factory.mktemp("demo-output"),
        )
        yield result, out.getvalue()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        runtime.reset_settings()


def test_every_fan_of_the_scored_file_is_accounted_for(demo: tuple[DemoResult, str]) -> None:
    result, printed = demo
    assert result.code == 0, printed
    run = result.campaign
    assert run is not None and run.left_out == []
    rec = run.reconciliation
    assert rec is not None
    assert rec.fans == 300 and rec.unaccounted == 0, printed
    assert all(ok for _, ok in rec.checks), rec.checks
    assert "unaccounted" in printed and "FAILED" not in printed
    selected = sum(n for w, n in rec.where.items() if w.startswith("selected"))
    assert rec.where["selected, coded, texted"] > 0 and selected == run.stages[3].out


def test_every_stage_runs_its_worker_and_balances(demo: tuple[DemoResult, str]) -> None:
    result, _ = demo
    assert result.campaign is not None
    stages = result.campaign.stages
    assert [s.worker for s in stages] == WORKERS
    for stage in stages:
        assert stage.problem is None, stage
        assert stage.consistent, stage  # in = out + rejected, rejected = the sum of its reasons


def test_each_stage_takes_in_what_the_one_before_put_out(demo: tuple[DemoResult, str]) -> None:
    result, _ = demo
    assert result.campaign is not None
    (scored, lake, ranks, prep, wave, codes, assign, scheduler, streamed, lake_codes,
     transform, save, send, merge, moved, stats) = result.campaign.stages  # fmt: skip
    assert scored.received == 300 and lake.received == lake.out == scored.out
    assert ranks.out == scored.out and ranks.reasons == {
        "rank_missing": 1,
        "rank_not_an_integer": 1,
    }
    # one place in each of 50 markets: a market without a fan in a file this small leaves its
    # place empty
    assert prep.received == scored.out and 45 <= prep.out <= 50
    assert wave.received == prep.out == codes.received == codes.out == assign.out
    assert scheduler.out == 1
    assert streamed.received == streamed.out == codes.out
    assert lake_codes.out == transform.out == save.received == save.out == streamed.out
    assert transform.received == scored.out + streamed.out  # the scored fans are filtered
    assert send.received == codes.out
    assert merge.received == scored.out + streamed.out
    assert moved.received == moved.out == 2  # one move per merged record type
    assert stats.out == 1


def test_the_final_stats_are_an_html_page_at_the_path_it_prints(
    demo: tuple[DemoResult, str],
) -> None:
    result, printed = demo
    assert result.stats_page is not None and result.campaign is not None
    page = Path(result.stats_page)
    assert page.is_file() and str(page) in printed.replace("\n", "")
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "demo-presale" in text
    rec = result.campaign.reconciliation
    assert rec is not None
    assert f"total fans: {rec.fans:,}" in text and f"{rec.fans:,}" == "300"
    assert '<td>unaccounted</td><td class="n">0</td>' in text
    assert '<td>accounted for</td><td class="n">300</td>' in text
    stats = result.campaign.stats
    assert stats is not None
    for market, n in stats["selectedByMarket"].items():
        assert f'<td>{html.escape(market)}</td><td class="n">{n:,}</td>' in text
    assert not re.search(r"(src|href)=", text)  # self-contained: nothing fetched


def test_the_stats_object_counts_the_codes_issued_and_the_texts_sent(
    demo: tuple[DemoResult, str],
) -> None:
    result, _ = demo
    assert result.campaign is not None and result.campaign.stats is not None
    stats, rec = result.campaign.stats, result.campaign.reconciliation
    codes = result.campaign.stages[5]
    assert rec is not None and codes.worker == "generate_sms_wave_codes"
    assert stats["codes"]["issued"] + stats["codes"]["kept"] == codes.out
    assert stats["texts"]["sent"] == rec.where["selected, coded, texted"]
