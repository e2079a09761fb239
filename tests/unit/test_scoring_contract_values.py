"""Known answers for the values downstream consumers key on (issue 6, item 12): a change to a
hash input, the band draw or the CSV format fails here, not in production where every consumer
would see every record as new. Change these only with a migration note for the consumers.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from adapters.clock import FixedClock
from domain.models import DEFAULT_BAND_TIERS, Campaign, ObjectRef
from domain.scoring.bands import BandScale
from domain.scoring.records import DedupeIds
from domain.workers.process_scored_files import process_scored_files
from tests.support.memory_objects import InMemoryObjectStore
from tests.support.memory_scored_files import (
    InMemoryCampaignDirectory,
    InMemoryRecordStream,
    RecordingNotifier,
)

SOURCE = ObjectRef("b", "scored/c1.20261201.txt")
BLACKLIST = ObjectRef("b", "blacklist")


def test_the_scoring_dedupe_id_of_a_fan_and_score() -> None:
    assert DedupeIds("c1")("gu1", 0.5) == "fc1159b2c789cf2d11387075e796df89"
    assert DedupeIds("c1")("gu1", 0.97) == "fbc94361556d305c1b573132d9d407c6"


def test_the_band_score_for_a_fixed_salt_and_fan() -> None:
    scale = BandScale.build("c1", DEFAULT_BAND_TIERS, b"known-salt").unwrap()
    assert tuple(scale.band_for(0.97, "gu1")) == ("high", 0.9580104145356715)
    assert tuple(scale.band_for(0.5, "gu2")) == ("low", 0.4157097926958779)
    assert tuple(scale.band_for(0.1, "gu3")) == ("none", 0.1)


def test_the_scrubbed_csv_bytes_and_the_record_of_a_small_file(chunk_transform) -> None:
    body = (
        b"globalUserId\temail\tphone\tscore\n"
        b"gu1\tfan@gmail.com\t(212) 555-0123\t0.97\n"
        b"gu2\tbanned@x.org\t+44 20 7946 0958\t0.5\n"
        b"gu3\t=HYPERLINK(1)\t\tnope\n"
    )
    store = InMemoryObjectStore({SOURCE: body, BLACKLIST: b"banned@x.org\n"})
    stream = InMemoryRecordStream()
    process_scored_files(
        SOURCE,
        store=store,
        stream=stream,
        campaigns=InMemoryCampaignDirectory([Campaign("c1", band_salt=b"known-salt")]),
        notifier=RecordingNotifier(),
        clock=FixedClock(datetime(2026, 12, 1, tzinfo=UTC)),
        encode=orjson.dumps,
        blacklist=BLACKLIST,
        transform=chunk_transform,
    ).unwrap()
    assert store.objects[ObjectRef("b", "scrubbed/c1.20261201.csv")] == KNOWN_CSV
    (record,) = [orjson.loads(r.data) for r in stream.records]
    assert (record["dedupeId"], record["band"], record["band_score"]) == KNOWN_RECORD


KNOWN_CSV = (
    b"row,verdict,reason,tags,band,band_score,phone_e164,globalUserId,email,phone,score,raw\r\n"
    b"2,true,,unconfirmed_phone,high,0.9580104145356715,+12125550123,gu1,fan@gmail.com,"
    b"(212) 555-0123,0.97,\r\n"
    b"3,false,blacklisted_email: email is on the blacklist,intl_phone|unconfirmed_phone,low,"
    b"0.4157097926958779,+442079460958,gu2,banned@x.org,'+44 20 7946 0958,0.5,\r\n"
    b"4,false,bad_score: score 'nope' is not a number,,,,,gu3,'=HYPERLINK(1),,nope,\r\n"
)
# The same fan, score and salt as the first two tests: the record carries those values.
KNOWN_RECORD = ("fbc94361556d305c1b573132d9d407c6", "high", 0.9580104145356715)
