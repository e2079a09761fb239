"""The scored file's reason and tag codes: one table, used by both transforms and the worker.

Their string values are a contract (the scrubbed CSV's `reason` and `tags` columns, the stream
record's `tags`, the counts in the notification): never change one
(tests/unit/test_contract_values.py and the scrubbed CSV known-answer tests pin them).

Each rejected row has exactly one reason. The first seven make a row unusable and are checked
in the order listed. Of the three rules over a usable row, the later-listed wins when several
apply (a blacklisted fan with an international phone is `blacklisted_email`);
`record_too_large` is checked last, on rows no rule rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Reason(StrEnum):
    """Why a row was rejected (the CSV's reason is `<code>: <what, naming the field>`)."""

    # Unusable rows, checked in this order.
    LINE_TOO_LONG = "line_too_long"  # longer than the line reader's bound
    BAD_ENCODING = "bad_encoding"  # the line is not UTF-8
    BLANK_ROW = "blank_row"  # the line is empty or whitespace only
    BAD_COLUMN_COUNT = "bad_column_count"  # tabs do not split it into the header's width
    MISSING_GLOBAL_USER_ID = "missing_global_user_id"  # globalUserId is empty
    BAD_SCORE = "bad_score"  # score is empty or not a number
    SCORE_OUT_OF_RANGE = "score_out_of_range"  # score outside [0, 1] (nan, inf too)
    # Rules over a usable row; when several apply, the later-listed wins.
    INTL_PHONE = "intl_phone"  # international phone, the campaign disallows them
    BLOCKED_DOMAIN = "blocked_domain"  # the email's domain is blocked
    BLACKLISTED_EMAIL = "blacklisted_email"  # the email is on the blacklist
    RECORD_TOO_LARGE = "record_too_large"  # the encoded record exceeds the stream's maximum
    # After the transform: the producer refused a record the domain accepted.
    STREAM_REJECTED = "stream_rejected"


class Tag(StrEnum):
    """What a fan carries besides its verdict (several at once; a tag never rejects by itself),
    in the order the CSV and the record list them."""

    INTL_PHONE = "intl_phone"  # a valid phone outside the campaign's home country
    INVALID_PHONE = "invalid_phone"  # empty, unparseable or invalid number
    UNCONFIRMED_PHONE = "unconfirmed_phone"  # a phone but no phoneConfirmed=true
    INVALID_EMAIL = "invalid_email"


def plain_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """`counts` keyed by plain str: the codes leave the transforms as data (JSON checkpoints,
    notifications), and orjson refuses str subclasses as dict keys ("Dict key must be str")."""
    return {str(code): n for code, n in counts.items()}
