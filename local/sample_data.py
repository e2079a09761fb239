"""Realistic scored files for the demo and the benchmarks: deterministic for a seed, streamed.

The mix is what a large presale really sends us: mostly home (US) mobiles in every format people
type, some Canadian and British numbers, a few invalid ones, blacklisted and throwaway emails,
unconfirmed phones, and a handful of rows broken the way exports break.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

HEADER = (
    "globalUserId",
    "memberId",
    "firstName",
    "lastName",
    "email",
    "phone",
    "phoneConfirmed",
    "marketId",
    "locale",
    "score",
)

_US_AREA_CODES = tuple(
    [
        "201",
        "202",
        "203",
        "206",
        "212",
        "213",
        "214",
        "215",
        "216",
        "217",
        "301",
        "302",
        "303",
        "305",
        "310",
        "312",
        "313",
        "314",
        "315",
        "404",
        "405",
        "407",
        "408",
        "410",
        "412",
        "415",
        "469",
        "470",
        "503",
        "504",
        "505",
        "512",
        "513",
        "602",
        "603",
        "612",
        "614",
        "615",
        "617",
        "619",
        "646",
        "650",
        "702",
        "703",
        "704",
        "713",
        "714",
        "718",
        "720",
        "727",
        "757",
        "773",
        "786",
        "804",
        "808",
        "813",
        "816",
        "818",
        "832",
        "858",
        "901",
        "904",
        "916",
        "917",
        "949",
        "972",
    ]
)
_CA_AREA_CODES = ("416", "604", "514", "403", "613")
_FIRST = ("Ana", "Ben", "Chloé", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kai", "Lea")
_LAST = ("Smith", "García", "Nguyen", "O'Brien", "Kowalski", "Okafor", "Müller", "Tanaka", "Lee")
_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "aol.com", "proton.me")
BLOCKED_DOMAINS = ("mailinator.com", "guerrillamail.com", "10minutemail.com")
_LOCALES = ("en-us", "en-us", "en-us", "es-us", "fr-ca", "en-gb")


@dataclass(frozen=True)
class SampleMix:
    """Shares of each kind of row, in percent of the file."""

    canadian_phone: float = 4.0
    british_phone: float = 2.0
    invalid_phone: float = 3.0
    unconfirmed_phone: float = 10.0
    blacklisted_email: float = 1.5
    blocked_domain_email: float = 1.0
    invalid_email: float = 1.0
    malformed_row: float = 0.1


def blacklisted_email(n: int) -> str:
    return f"banned.fan{n}@example.org"


def blacklist_lines(count: int) -> Iterator[str]:
    """The blacklist file matching the sample: `count` addresses, one per line."""
    for n in range(count):
        yield blacklisted_email(n)


def _us_phone(rng: random.Random) -> str:
    area = rng.choice(_US_AREA_CODES)
    exchange = rng.randint(201, 998)
    if exchange in (211, 311, 411, 511, 555, 611, 711, 811, 911):
        exchange += 1
    line = rng.randint(0, 9999)
    digits = f"{area}{exchange:03d}{line:04d}"
    style = rng.randrange(6)
    if style == 0:
        return f"+1{digits}"
    if style == 1:
        return f"({area}) {exchange:03d}-{line:04d}"
    if style == 2:
        return f"{area}-{exchange:03d}-{line:04d}"
    if style == 3:
        return f"1{digits}"
    if style == 4:
        return f" {digits} "
    return f"{area}.{exchange:03d}.{line:04d}"


def _phone(rng: random.Random, mix: SampleMix) -> str:
    roll = rng.uniform(0, 100)
    if roll < mix.canadian_phone:
        return f"+1{rng.choice(_CA_AREA_CODES)}{rng.randint(2000000, 9999999)}"
    roll -= mix.canadian_phone
    if roll < mix.british_phone:
        return f"+447{rng.randint(100000000, 999999999)}"
    roll -= mix.british_phone
    if roll < mix.invalid_phone:
        return rng.choice(("12345", "555-CALL-NOW", "+1 000 000 0000", "n/a", ""))
    return _us_phone(rng)


def _email(rng: random.Random, mix: SampleMix, n: int, first: str, last: str) -> str:
    roll = rng.uniform(0, 100)
    if roll < mix.blacklisted_email:
        return blacklisted_email(rng.randrange(max(1, n // 50 + 1)))
    roll -= mix.blacklisted_email
    if roll < mix.blocked_domain_email:
        return f"fan{n}@{rng.choice(BLOCKED_DOMAINS)}"
    roll -= mix.blocked_domain_email
    if roll < mix.invalid_email:
        return rng.choice((f"fan{n}.at.gmail.com", f"fan{n}@", "@nobody", f"fan {n}@x.com"))
    user = _ascii(f"{first}.{last}{n}").replace("'", "").replace(" ", "")
    return f"{user}@{rng.choice(_DOMAINS)}"


def _ascii(name: str) -> str:
    """Addresses are ASCII in practice even when names are not (Chloé -> chloe). Internationalised
    local parts are legal but rare, and cost the scrub a full email-validator call each."""
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()


def _malformed(rng: random.Random, n: int) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return f"gu{n:09d}\tonly-three\tcolumns"
    if kind == 1:
        return f"gu{n:09d}\tm{n}\tA\tB\ta@b.com\t2125550100\ttrue\t1\ten-us\tnot-a-score"
    if kind == 2:
        return f"gu{n:09d}\tm{n}\tA\tB\ta@b.com\t2125550100\ttrue\t1\ten-us\t1.7"
    return f"\tm{n}\tA\tB\ta@b.com\t2125550100\ttrue\t1\ten-us\t0.5"


def scored_lines(fans: int, *, seed: int = 7, mix: SampleMix | None = None) -> Iterator[str]:
    """Header then one line per fan (no line endings), generated lazily."""
    mix = mix or SampleMix()
    rng = random.Random(seed)
    yield "\t".join(HEADER)
    for n in range(fans):
        if rng.uniform(0, 100) < mix.malformed_row:
            yield _malformed(rng, n)
            continue
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        confirmed = "false" if rng.uniform(0, 100) < mix.unconfirmed_phone else "true"
        score = rng.betavariate(5, 2)
        yield "\t".join(
            (
                f"gu{n:09d}",
                f"m{n}",
                first,
                last,
                _email(rng, mix, n, first, last),
                _phone(rng, mix),
                confirmed,
                str(rng.randint(1, 50)),
                rng.choice(_LOCALES),
                f"{score:.6f}",
            )
        )


def scored_file_bytes(fans: int, *, seed: int = 7, chunk_lines: int = 10_000) -> Iterator[bytes]:
    """The file as UTF-8 chunks with LF line ends, for streaming uploads."""
    buffer: list[str] = []
    for line in scored_lines(fans, seed=seed):
        buffer.append(line)
        if len(buffer) >= chunk_lines:
            yield ("\n".join(buffer) + "\n").encode()
            buffer.clear()
    if buffer:
        yield ("\n".join(buffer) + "\n").encode()


@dataclass(frozen=True)
class GeneratedFile:
    """A whole sample file in memory (benchmarks), with the blacklist that matches it."""

    data: bytes
    rows: int
    blacklist: frozenset[str]


def generate(fans: int, *, seed: int = 7) -> GeneratedFile:
    data = b"".join(scored_file_bytes(fans, seed=seed))
    return GeneratedFile(data, fans, frozenset(blacklist_lines(fans // 50 + 1)))
