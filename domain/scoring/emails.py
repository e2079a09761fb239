"""Email checks: syntax (fast path + email-validator), the exact blacklist, blocked domains.

Syntax: `email_validator.validate_email(..., check_deliverability=False)` costs about 30 µs a row.
`is_valid_email` first tries a strict ASCII regex that accepts only plain dot-atom addresses with
an alphabetic top-level domain, within the RFC length limits and outside the special-use domains;
a hypothesis property (tests/property/test_scoring_emails.py) checks that everything it accepts,
email-validator accepts too. Anything else (quoted local parts, IDN, odd lengths) is decided by
email-validator itself, so the answer is always email-validator's.

Domain policy: a domain is blocked when it, or any parent of it, is on the blocked list
(`mail.mailinator.com` is blocked by `mailinator.com`); an allow-list entry matching the domain
or a parent wins over any block. The default blocked list is `disposable-email-domains`' list
plus DEFAULT_EXTRA_BLOCKED_DOMAINS; its allow list plus DEFAULT_ALLOWED_DOMAINS allow.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import email_validator
from disposable_email_domains import allowlist as _disposable_allowlist
from disposable_email_domains import blocklist as _disposable_blocklist
from email_validator import EmailNotValidError

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
# Plain dot-atom local part @ labels of letters and digits joined by single dashes, then an
# alphabetic top-level domain. Group 1: the domain, group 2: the TLD.
_LABEL = r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"
_FAST_EMAIL = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*@((?:{_LABEL}\.)+([A-Za-z]{{2,63}}))")
_LABEL_MAX = 63
_LOCAL_MAX = 64
_ADDRESS_MAX = 254
# email-validator refuses labels like "ab--cd" (only Punycode "xn--" may have dashes there).
_SPECIAL_USE = tuple(email_validator.SPECIAL_USE_DOMAIN_NAMES)
# Every special-use name is one label today, so checking the TLD is enough; should a dotted one
# appear in a later email-validator, the full suffix check below takes over.
_SPECIAL_USE_TLDS = frozenset(d for d in _SPECIAL_USE if "." not in d)
_SPECIAL_USE_DOTTED = tuple(d for d in _SPECIAL_USE if "." in d)

# Kept short on purpose: throwaway-inbox services the disposable list misses and reserved names.
DEFAULT_EXTRA_BLOCKED_DOMAINS: frozenset[str] = frozenset(
    {"mailinator.com", "guerrillamail.com", "example.com", "example.net", "example.org"}
)
# Big providers that must never be caught by an over-broad block entry.
DEFAULT_ALLOWED_DOMAINS: frozenset[str] = frozenset(
    {"gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "aol.com"}
)


def _fast_accepts(email: str) -> bool:
    return _fast_domain(email) is not None


def _fast_domain(email: str) -> str | None:
    """The lowercased domain when the fast path accepts `email`, else None (ask the library).

    Accepts: a dot-atom ASCII local part of at most 64 characters; a domain of ASCII labels, none
    empty, longer than 63, starting or ending with '-' or holding '--' (Punycode and the
    'ab--' rule are left to the library); an alphabetic top-level domain of 2-63 letters that is
    not special-use; at most 254 characters in all.
    """
    match = _FAST_EMAIL.fullmatch(email)
    if match is None or len(email) > _ADDRESS_MAX or match.start(1) - 1 > _LOCAL_MAX:
        return None
    return _fast_domain_verdict(match.group(1))


def _fast_domain_verdict(domain: str) -> str | None:
    """The domain part of `_fast_domain`: `domain` (as matched by _FAST_EMAIL) lowercased, or
    None when the fast path leaves it to the library."""
    if domain.rpartition(".")[2].lower() in _SPECIAL_USE_TLDS:
        return None
    domain = domain.lower()
    if len(domain) > _LABEL_MAX and any(len(label) > _LABEL_MAX for label in domain.split(".")):
        return None
    if _SPECIAL_USE_DOTTED and any(
        domain == d or domain.endswith("." + d) for d in _SPECIAL_USE_DOTTED
    ):
        return None
    return domain


def library_accepts(email: str) -> bool:
    """The reference: email-validator, syntax only (no DNS)."""
    try:
        email_validator.validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def is_valid_email(email: str) -> bool:
    """email-validator's verdict on `email` (already trimmed), usually without asking it."""
    return _fast_accepts(email) or library_accepts(email)


_LIBRARY_CACHE_LIMIT = 50_000


def library_email_facts(email: str) -> tuple[bool, str]:
    """`email_facts` asking email-validator every time (the benchmark's baseline)."""
    return library_accepts(email), domain_of(email)


def email_facts(email: str) -> tuple[bool, str]:
    """(is_valid_email(email), domain_of(email)) in one pass for the common case."""
    domain = _fast_domain(email)
    if domain is not None:
        return True, domain
    return _cached_library_accepts(email), domain_of(email)


# What the fast path leaves over repeats in real files ("n/a", "none"): remember the library's
# answers (a pure function of the text), within a fixed size.
_cached_library_accepts = lru_cache(maxsize=_LIBRARY_CACHE_LIMIT)(library_accepts)


def domain_of(email: str) -> str:
    """The part after the last '@', normalised (normalised_domain); '' when there is no '@'."""
    at = email.rfind("@")
    return normalised_domain(email[at + 1 :]) if at >= 0 else ""


def normalised_domain(domain: str) -> str:
    """The domain as the blocked-domain and blacklist checks compare it: lowercased, and when
    not ASCII, Unicode NFKC (a fullwidth-letter `mailinator.com` is `mailinator.com`, as
    email-validator also reads it) then IDNA (an internationalised domain as its `xn--` name).
    Comparing the raw text let a fullwidth spelling of a blocked domain through."""
    if domain.isascii():
        return domain.lower()
    text = unicodedata.normalize("NFKC", domain).lower()
    try:
        return text.encode("idna").decode("ascii")
    except UnicodeError:  # not a valid IDN: compare the NFKC text
        return text


def blacklist_key(email: str) -> str:
    """What the blacklist matches on: the address casefolded, and when not ASCII, NFKC and the
    domain normalised (normalised_domain), so case, fullwidth letters and IDN spellings of a
    listed address are the same address."""
    if email.isascii():
        return email.casefold()
    at = email.rfind("@")
    if at < 0:
        return unicodedata.normalize("NFKC", email).casefold()
    local = unicodedata.normalize("NFKC", email[:at]).casefold()
    return f"{local}@{normalised_domain(email[at + 1 :])}"


def _suffixes(domain: str) -> list[str]:
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


@dataclass(frozen=True)
class DomainPolicy:
    """Blocked domain patterns and allow-list patterns (suffix match on whole labels)."""

    blocked: frozenset[str]
    allowed: frozenset[str] = frozenset()

    def is_blocked(self, domain: str) -> bool:
        return _blocked(self, domain)


# Domains repeat (gmail.com): remember each policy's verdicts, within a fixed size that keeps
# memory flat on junk. A function of (policy, domain): the policy is frozen and hashable.
@lru_cache(maxsize=100_000)
def _blocked(policy: DomainPolicy, domain: str) -> bool:
    suffixes = _suffixes(domain)
    if any(s in policy.allowed for s in suffixes):
        return False
    return any(s in policy.blocked for s in suffixes)


@cache
def default_domain_policy() -> DomainPolicy:
    return DomainPolicy(
        blocked=frozenset(d.lower() for d in _disposable_blocklist) | DEFAULT_EXTRA_BLOCKED_DOMAINS,
        allowed=frozenset(d.lower() for d in _disposable_allowlist) | DEFAULT_ALLOWED_DOMAINS,
    )


def normalise_blacklist_entry(line: str) -> str | None:
    """One blacklist line -> its match key (casefolded), or None for blanks and # comments."""
    entry = line.strip()
    if not entry or entry.startswith("#"):
        return None
    return blacklist_key(entry)


# _FAST_EMAIL for a whole column, one address per line, with its length limits as look-aheads;
# every line yields one item: the domain when the fast path's pattern and limits accept the
# address, else "". (An address holds no newline: lines and cells were split on them.)
_FAST_EMAIL_LINES = re.compile(
    rf"(?m)^(?:(?=[^\n@]{{1,{_LOCAL_MAX}}}@)(?=.{{1,{_ADDRESS_MAX}}}$)"
    rf"{_ATEXT}+(?:\.{_ATEXT}+)*@((?:{_LABEL}\.)+[A-Za-z]{{2,63}})|.*)$"
)
_DOMAIN_CACHE_LIMIT = 100_000


@lru_cache(maxsize=_DOMAIN_CACHE_LIMIT)
def _cached_fast_domain(domain: str) -> str | None:
    """The fast path's per-domain verdict ("" = the address did not match: None)."""
    return _fast_domain_verdict(domain) if domain else None


def email_column_facts(emails: Sequence[str]) -> tuple[list[bool], list[str]]:
    """`email_facts` over a whole column: (valid, lowercased domain) lists, the same answers.

    One regex pass over the joined column finds each address's domain; the per-domain part of
    the fast path runs once per distinct domain (a chunk holds few); the rest of the rows (odd
    addresses) go through `email_facts` one by one."""
    found = _FAST_EMAIL_LINES.findall("\n".join(emails))
    if len(found) != len(emails):  # pragma: no cover - one match per line, by construction
        valid_and_domains = [email_facts(email) for email in emails]
        return [v for v, _ in valid_and_domains], [d for _, d in valid_and_domains]
    domains = list(map(_cached_fast_domain, found))
    valid = [True] * len(emails)
    for row in [row for row, domain in enumerate(domains) if domain is None]:
        valid[row], domains[row] = email_facts(emails[row])
    return valid, domains  # type: ignore[return-value]  # every None was replaced just above
