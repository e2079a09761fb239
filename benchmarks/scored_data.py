"""A realistic generated scored file, for the benchmarks (and anyone who needs a big one).

Mix per 1,000 rows (seeded, reproducible): ~870 US phones in the shapes people type, 50
Canadian, 30 international (+44, +33, +52, +61), 30 invalid or junk, 20 empty; emails on
common providers, 10 blacklisted, 10 on disposable domains (some on subdomains), 10 with bad
syntax; ~2 malformed rows (wrong column count, empty id, score "n/a", score 1.7); names with
stray spaces; 80 % phoneConfirmed=true.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

import phonenumbers

HEADER = (
    "globalUserId\tmemberId\temail\tphone\tscore\tfirstName\tlastName\tmarketId\tlocale"
    "\tphoneConfirmed"
)
FIRST = ("Anna", "Ben", "Chloé", "Dmitri", "Emma", "Farah", "Grace", "Hiro", "Ivan", "José")
LAST = ("Smith", "Nguyen", "García", "O'Brien", "Kowalski", "Müller", "Okafor", "Lee", "Patel")
PROVIDERS = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "aol.com",
             "comcast.net", "verizon.net", "mail.utoronto.ca", "proton.me")  # fmt: skip
DISPOSABLE = ("mailinator.com", "inbox.mailinator.com", "guerrillamail.com", "yopmail.com")
INTL = ("+44 20 7946 0{:03d}", "+33 1 42 68 5{:03d}", "+52 55 5{:03d} 1234", "+61 2 9374 4{:03d}")
JUNK_PHONES = ("555-1234", "12345", "call me", "+1 (123) 456-7890", "000-000-0000", "n/a")
APOSTROPHE = "'"
BAD_EMAILS = ("fan at gmail.com", "fan@@gmail.com", "fan@gmail", ".fan@gmail.com", "fan@")


@dataclass(frozen=True)
class GeneratedFile:
    data: bytes
    rows: int
    blacklist: frozenset[str]


def _prefixes(region: str, count: int, rnd: random.Random) -> list[str]:
    """Valid NPA-NXX prefixes of `region`, found by asking phonenumbers."""
    found: list[str] = []
    while len(found) < count:
        prefix = f"{rnd.randint(200, 999)}{rnd.randint(200, 999)}"
        number = phonenumbers.parse(prefix + "1234", "US")
        if phonenumbers.region_code_for_number(number) == region and phonenumbers.is_valid_number(
            number
        ):
            found.append(prefix)
    return found


def _ascii(name: str) -> str:
    """Addresses are ASCII in practice even when names are not (José -> jose)."""
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()


def _format(nsn: str, rnd: random.Random) -> str:
    a, b, c = nsn[:3], nsn[3:6], nsn[6:]
    shapes = (f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}{b}{c}", f"+1{a}{b}{c}", f"+1 {a} {b} {c}",
              f"1-{a}-{b}-{c}", f"{a}.{b}.{c}")  # fmt: skip
    return rnd.choice(shapes)


def iter_rows(rows: int, seed: int = 7) -> Iterator[str]:
    rnd = random.Random(seed)
    us, ca = _prefixes("US", 400, rnd), _prefixes("CA", 60, rnd)
    for i in range(rows):
        roll = rnd.random()
        if roll < 0.87:
            phone = _format(rnd.choice(us) + f"{rnd.randint(0, 9999):04d}", rnd)
        elif roll < 0.92:
            phone = _format(rnd.choice(ca) + f"{rnd.randint(0, 9999):04d}", rnd)
        elif roll < 0.95:
            phone = rnd.choice(INTL).format(rnd.randint(0, 999))
        elif roll < 0.98:
            phone = rnd.choice(JUNK_PHONES)
        else:
            phone = ""
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        roll = rnd.random()
        if roll < 0.01:
            email = f"banned{rnd.randint(0, 9999)}@gmail.com"
        elif roll < 0.02:
            email = f"{_ascii(first)}{i}@{rnd.choice(DISPOSABLE)}"
        elif roll < 0.03:
            email = rnd.choice(BAD_EMAILS)
        else:
            local = f"{_ascii(first)}.{_ascii(last).replace(APOSTROPHE, '')}{i % 997}"
            email = f"{local}@{rnd.choice(PROVIDERS)}"
        score = f"{rnd.betavariate(5, 2):.6f}"
        gid = f"{rnd.getrandbits(64):016x}"
        confirmed = "true" if rnd.random() < 0.8 else rnd.choice(("false", "", "0"))
        pad = " " if rnd.random() < 0.05 else ""
        cells = [gid, str(100000 + i), email, phone, score, pad + first, last + pad,
                 str(rnd.randint(1, 50)), rnd.choice(("en-us", "en-ca", "fr-ca", "es-mx")),
                 confirmed]  # fmt: skip
        roll = rnd.random()
        if roll < 0.0005:
            cells = cells[:-2]
        elif roll < 0.001:
            cells[0] = ""
        elif roll < 0.0015:
            cells[4] = "n/a"
        elif roll < 0.002:
            cells[4] = "1.7"
        yield "\t".join(cells)


def blacklist_entries() -> frozenset[str]:
    return frozenset(f"banned{n}@gmail.com" for n in range(10_000))


def generate(rows: int, seed: int = 7) -> GeneratedFile:
    body = "\n".join(iter_rows(rows, seed))
    return GeneratedFile((HEADER + "\n" + body + "\n").encode(), rows, blacklist_entries())
