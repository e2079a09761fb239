"""The email fast path never accepts what email-validator refuses; the answer is always the
library's."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from domain.scoring.emails import (
    DomainPolicy,
    _fast_accepts,
    domain_of,
    email_facts,
    is_valid_email,
    library_accepts,
)

ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-"
LOCAL = st.text(alphabet=ATEXT + ".", min_size=0, max_size=70)
LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=0, max_size=66)
TLD = st.sampled_from(["com", "org", "ca", "io", "test", "local", "onion", "c", "c0m", "123", "X"])


@st.composite
def email_like(draw: st.DrawFn) -> str:
    labels = draw(st.lists(LABEL, min_size=0, max_size=4))
    domain = ".".join([*labels, draw(TLD)])
    return f"{draw(LOCAL)}@{domain}"


@settings(max_examples=2000)
@given(st.one_of(email_like(), st.emails(), st.text(max_size=40)))
@example("john.doe@gmail.com")
@example("a@b.c")
@example("x@ab--cd.com")
@example("x@xn--bcher-kva.com")
@example("x@localhost.localhost")
@example("a" * 65 + "@gmail.com")
def test_fast_path_accepts_only_what_email_validator_accepts(email: str) -> None:
    if _fast_accepts(email):
        assert library_accepts(email)
    assert is_valid_email(email) == library_accepts(email)


@settings(max_examples=500)
@given(st.one_of(email_like(), st.emails()))
def test_email_facts_agree_with_their_parts(email: str) -> None:
    assert email_facts(email) == (is_valid_email(email), domain_of(email))


@given(
    st.lists(st.from_regex(r"[a-z]{1,6}", fullmatch=True), min_size=1, max_size=4),
    st.integers(min_value=0, max_value=3),
)
def test_a_blocked_domain_blocks_its_subdomains_and_an_allowed_parent_wins(
    labels: list[str], cut: int
) -> None:
    domain = ".".join([*labels, "com"])
    parent = ".".join(domain.split(".")[min(cut, len(labels)) :])
    assert DomainPolicy(blocked=frozenset({parent})).is_blocked(domain)
    both = DomainPolicy(blocked=frozenset({parent}), allowed=frozenset({parent}))
    assert not both.is_blocked(domain)
    assert not DomainPolicy(blocked=frozenset({"x" + domain})).is_blocked(domain)
