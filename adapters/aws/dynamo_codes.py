"""The codes table's adapters, by concern (this module names them for existing imports):
the table and its shared helpers (dynamo_table.py), CodeInventory (dynamo_inventory.py, rules in
domain/inventory.py), CodeIssuer (dynamo_issuer.py). The issued-code ledger is the once-ledger
in this table (dynamo_ledger.py, domain/issued_codes.py)."""

from adapters.aws.dynamo_inventory import DynamoCodeInventory, StockCount
from adapters.aws.dynamo_issuer import DynamoCodeIssuer
from adapters.aws.dynamo_table import POOL_INDEX, code_pk, create_codes_table, iter_table_codes

__all__ = [
    "POOL_INDEX",
    "DynamoCodeInventory",
    "DynamoCodeIssuer",
    "StockCount",
    "code_pk",
    "create_codes_table",
    "iter_table_codes",
]
