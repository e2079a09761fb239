"""Unguessable access codes from the operating system's CSPRNG (`secrets`).

Alphabet: the 32 symbols `23456789ABCDEFGHJKLMNPQRSTUVWXYZ` (digits and upper-case letters
without 0/O and 1/I, which people misread when typing a code from an SMS). Each symbol carries
exactly 5 bits, so a code of the default length 12 is one of 32**12 = 2**60 ≈ 1.15e18 values,
drawn uniformly (`secrets.choice` has no modulo bias).

What that means for guessing: with N codes live, one random guess hits *some* live code with
probability N / 2**60. For a campaign of 1,000,000 codes that is 8.7e-13 per guess; an attacker
making a billion guesses (far beyond what any rate-limited redemption endpoint allows) hits one
with probability ~8.7e-4. Each extra symbol divides those odds by 32.

Uniqueness is not left to luck (with 10 million codes the chance that two draws collide is
~4e-5): DynamoCodeIssuer writes each new code with a conditional put that fails if the code
exists, and draws again. Codes never start with `=`, `+`, `-` or `@`, so a wave CSV opened in a
spreadsheet cannot turn one into a formula.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
DEFAULT_LENGTH = 12


@dataclass(frozen=True, slots=True)
class CodeGenerator:
    length: int = DEFAULT_LENGTH
    alphabet: str = ALPHABET

    def __post_init__(self) -> None:
        if self.length < 8:
            raise ValueError(f"codes shorter than 8 symbols are guessable, got {self.length}")
        if len(set(self.alphabet)) != len(self.alphabet) or len(self.alphabet) < 16:
            raise ValueError("the alphabet needs at least 16 distinct symbols")

    @property
    def bits(self) -> float:
        """Entropy of one code, in bits."""
        import math

        return self.length * math.log2(len(self.alphabet))

    def __call__(self) -> str:
        return "".join(secrets.choice(self.alphabet) for _ in range(self.length))
