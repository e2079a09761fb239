"""The inventory model (tests/support/inventory_model.py) against the in-memory inventory, which
the workers' unit tests rely on behaving as the DynamoDB one does (same model, integration tier)."""

from __future__ import annotations

from hypothesis import settings

from tests.support.inventory_model import InventoryModel
from tests.support.memory_codes import MemoryCodeInventory


class MemoryInventoryModel(InventoryModel):
    build = MemoryCodeInventory


MemoryInventoryModel.TestCase.settings = settings(max_examples=60, stateful_step_count=30)
TestMemoryInventory = MemoryInventoryModel.TestCase
