"""Market details CSV and code files: what they accept and the errors they give."""

from __future__ import annotations

import pytest
from returns.result import Failure, Success

from domain.codes import CodeType
from domain.wave_prep.markets import (
    CampaignMarket,
    combine,
    parse_code_file,
    parse_market_details,
)
from domain.wave_prep.request import request_from_json

SRC = "s3://b/wavePrep/c/data/2026-12-01.csv"


def test_a_well_formed_file_with_a_bom_and_admin_column_names_parses() -> None:
    text = (
        "\ufeffID,Market Name,Limit,selectionTime,type\r\n"
        "m1,New York,10,2026-12-02T15:00:00Z,TM\r\nm2,,0,,\r\n"
    )
    details = parse_market_details(text, SRC).unwrap()
    assert [(d.market_id, d.capacity, d.code_type) for d in details] == [
        ("m1", 10, CodeType.TM),
        ("m2", 0, CodeType.EXTERNAL),
    ]
    assert details[0].selection_time is not None and details[1].selection_time is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("marketId;name;capacity\nm1;NY;3\n", "separated by ';'"),
        ("marketId\tcapacity\nm1\t3\n", "separated by tab"),
        ("marketId,name,capacity\nm1,NY,-3\n", "capacity -3 is negative"),
        ("marketId,name,capacity\nm1,NY,\n", "capacity is missing"),
        ("marketId,name,capacity\nm1,NY,1e3\n", "not a whole number"),
        ("marketId,name,capacity\nm1,NY,3\nm1,NY2,4\n", "row 3: market 'm1' repeats row 2"),
        ("marketId,name\nm1,NY\n", "no capacity column"),
        ("marketId,capacity,colour\nm1,3,red\n", "unknown columns ['colour']"),
        ("marketId,capacity\n../x,3\n", "has characters other than"),
        ("marketId,capacity,codeType\nm1,3,gold\n", "codeType 'gold' is not TM or external"),
        ("marketId,capacity,selectionTime\nm1,3,2026-12-02 15:00\n", "has no time zone"),
        ("", "empty"),
        ("marketId,capacity\n", "no market rows"),
    ],
)
def test_bad_market_files_say_where_and_why(text: str, expected: str) -> None:
    result = parse_market_details(text, SRC)
    assert isinstance(result, Failure)
    assert expected in result.failure() and SRC in result.failure()


def test_combining_names_markets_missing_on_either_side() -> None:
    details = parse_market_details("marketId,capacity\nm1,3\nm9,1\n", SRC).unwrap()
    result = combine(details, [CampaignMarket("m1", "NY"), CampaignMarket("m2", "LA")], "c")
    assert isinstance(result, Failure)
    assert "['m9']" in result.failure() and "['m2']" in result.failure()
    ok = combine(details[:1], [CampaignMarket("m1", "NY")], "c").unwrap()
    assert ok[0].name == "NY"


def test_code_files_skip_a_header_and_refuse_a_repeated_code() -> None:
    assert parse_code_file("code\nA\n\nB,extra\n", "f") == Success(("A", "B"))
    repeated = parse_code_file("A\nB\nA\n", "f")
    assert (
        isinstance(repeated, Failure) and "line 3 repeats the code of line 1" in repeated.failure()
    )


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"campaignId": "c1", "dateKey": "2026-13-01"}, "not a date"),
        ({"campaignId": "c1", "dateKey": "tomorrow"}, "not a date"),
        ({"campaignId": "../c", "dateKey": "2026-12-01"}, "not a usable campaign id"),
        ({"campaignId": "c1", "dateKey": "2026-12-01", "minScore": 2}, "minScore"),
        ({"campaignId": "c1", "dateKey": "2026-12-01", "reassign": "yes"}, "reassign"),
        ({"campaignId": "c1", "dateKey": "2026-12-01", "minScore": 0.9, "maxScore": 0.1}, "above"),
    ],
)
def test_bad_input_is_refused_with_the_field(doc: dict[str, object], expected: str) -> None:
    result = request_from_json(doc)
    assert isinstance(result, Failure) and expected in result.failure()


def test_input_flags_accept_form_strings() -> None:
    request = request_from_json(
        {"campaignId": "c1", "dateKey": "2026-12-01", "singleMarket": "true", "minScore": "0.5"}
    ).unwrap()
    assert request.single_market and request.min_score == 0.5
