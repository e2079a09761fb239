"""The ledger model (tests/support/ledger_model.py) against the in-memory once-ledger, which
workers' unit tests rely on behaving as the DynamoDB one does (same model, integration tier)."""

from __future__ import annotations

from hypothesis import settings

from tests.support.ledger_model import LedgerModel
from tests.support.memory_ledger import MemoryOnceLedger


class MemoryLedgerModel(LedgerModel):
    build = MemoryOnceLedger


MemoryLedgerModel.TestCase.settings = settings(max_examples=300, stateful_step_count=40)
TestMemoryOnceLedger = MemoryLedgerModel.TestCase
