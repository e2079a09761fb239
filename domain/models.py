"""Value types shared by the workers and the ports. Frozen dataclasses: no behaviour, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class ObjectRef:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @classmethod
    def parse(cls, uri: str) -> ObjectRef:
        """`s3://bucket/key` -> ObjectRef. Raises ValueError naming the bad URI."""
        if not uri.startswith("s3://") or "/" not in uri[5:]:
            raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
        bucket, key = uri[5:].split("/", 1)
        if not bucket or not key:
            raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
        return cls(bucket, key)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    ref: ObjectRef
    size: int
    last_modified: datetime | None = None
    # S3's ETag, quotes removed: changes whenever the object is written with other bytes. A run
    # tells its source from a new upload under the same key by it, and the lake's move verifies
    # its copies by it. None where a store does not say.
    etag: str | None = None


class ObjectNotFound(LookupError):
    def __init__(self, ref: ObjectRef) -> None:
        super().__init__(f"no object at {ref.uri}")
        self.ref = ref


class ObjectMismatch(Exception):
    """A completed write whose stored object is not the bytes written (its checksum or size,
    as the store reports them after the write): the writer's caller removes it."""


@dataclass(frozen=True, slots=True)
class OverlongLine:
    """What a line reader yields in place of a line longer than its bound: the line's length in
    bytes (without its line end), never its bytes. The reader skipped to the next line end
    without holding the line, so one megabyte-long line costs no more memory than a short one."""

    length: int


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One record for a Kinesis-like stream: already encoded."""

    partition_key: str
    data: bytes


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    partition_key: str
    reason: str


@dataclass(frozen=True, slots=True)
class PutOutcome:
    """What a producer did with the records it was given: in = sent + rejected + stranded.

    `rejected` records can never be sent (too large, empty key); `stranded` ones were still
    failing when the retry budget ran out. Neither is ever dropped silently. `stranded_at` holds
    the stranded records' positions in the input (0-based), so a caller can resend exactly those
    and nothing the stream already acknowledged.
    """

    sent: int = 0
    rejected: tuple[RejectedRecord, ...] = ()
    stranded: int = 0
    calls: int = 0
    retries: int = 0
    stranded_at: tuple[int, ...] = ()

    @property
    def received(self) -> int:
        return self.sent + len(self.rejected) + self.stranded


@dataclass(frozen=True, slots=True)
class BandTier:
    """A quality tier: raw scores in [low, high) map here (high inclusive for the top tier)."""

    name: str
    low: float
    high: float


DEFAULT_BAND_TIERS: tuple[BandTier, ...] = (
    BandTier("high", 0.95, 1.0),
    BandTier("mid", 0.80, 0.95),
    BandTier("low", 0.22, 0.80),
)


@dataclass(frozen=True, slots=True)
class Campaign:
    campaign_id: str
    name: str = ""
    allow_intl_phones: bool = False
    home_region: str = "US"
    band_tiers: tuple[BandTier, ...] = DEFAULT_BAND_TIERS
    band_salt: bytes = b""
    slack_channel: str | None = None
    category_ids: tuple[str, ...] = field(default=())
    # A fanlist campaign's scoring type (`raw` | `xnum`, docs/ranks.md); None elsewhere.
    scoring: str | None = None
    # slack.channels.stats and slack.noAlert (slack_stats, docs/stats.md).
    stats_channel: str | None = None
    no_alert: bool = False


class FailureKind(StrEnum):
    """Why a port could not answer. A StrEnum, so it reads and compares as its text in logs,
    reasons and detail keys ("unavailable"), and a typo is a NameError, not a silent miss."""

    NOT_FOUND = "not_found"  # the thing asked for does not exist: the caller's to report
    INVALID = "invalid"  # the request or the answer is wrong: retrying cannot help
    UNAVAILABLE = "unavailable"  # transient, already retried by the adapter: replay later
    # The dependency itself is not there (no such table): the deployment's to fix, a retry
    # cannot help. Only ports that opt in say it (the code inventory's reserve); elsewhere a
    # missing resource stays UNAVAILABLE so stream workers replay rather than drop records.
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class LookupFailure:
    """A directory could not answer, and why (`kind`)."""

    what: str
    kind: FailureKind
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.what}: {self.kind}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True, slots=True)
class Notification:
    title: str
    lines: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()
    channel: str | None = None
    ok: bool = True


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """Which process holds a lease, precisely enough to prove it dead: the host, the kernel's
    boot id and the pid namespace say where the pid means something; the start time (clock ticks
    since boot) tells the holder from a later process given the same pid."""

    host: str
    boot_id: str
    pid_namespace: int
    pid: int
    start_time: int


@dataclass(frozen=True, slots=True)
class LeaseHeld:
    """Another run holds what this run wanted (a scored file, a wave, a lake day): who, until
    when its lease ends unless renewed, and since when it has held it. A 'busy' refusal: the
    refused run did nothing; run it again after `expires_at` (or once the holder is done)."""

    holder: str
    expires_at: datetime
    since: datetime | None = field(default=None, compare=False)
    subject: str = field(default="this file", compare=False)
    consequence: str = field(default="nothing was streamed", compare=False)

    def __str__(self) -> str:
        since = "" if self.since is None else f" (since {self.since:%Y-%m-%dT%H:%M:%SZ})"
        return (
            f"another run ({self.holder}) holds {self.subject} until "
            f"{self.expires_at:%Y-%m-%dT%H:%M:%SZ}{since}; {self.consequence}; "
            "run it again after that"
        )
