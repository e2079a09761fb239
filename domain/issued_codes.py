"""The issued-code ledger (IssuedCodeLedger) as a use of the once-ledger (OnceLedger).

generate_sms_wave_codes records each fan's code per wave before writing it anywhere else, and
a re-run reuses it. That is the once-ledger's `record`: issuing is safe to repeat under its own
key (the DynamoDB issuer and the in-memory one return the same code to the same issue key,
`{wave}#{globalUserId}`), so no claim and no start are needed; the first record wins a race.
It used to be a second, write-once ledger of its own (`issued#{wave}#{fan}` items with their
own conditional transactions in adapters/aws/dynamo_codes.py and a dict in memory): the same
compare-and-set written twice, with no way to tell an entry's owner or when it was written.

Entry key `issued-code#{wave}#{globalUserId}` (not the old `issued#...`: an old item does not
parse as an entry); result `{row}:{code}` (the row that first held the fan, then the code as
written, leading zeros and all).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from domain.codes import IssuedCode
from domain.once import Done, Entry, EntryState, LedgerConflict
from domain.ports import OnceLedger

KEY_PREFIX = "issued-code#"


def issued_key(wave: str, global_user_id: str) -> str:
    return f"{KEY_PREFIX}{wave}#{global_user_id}"


def _result(code: IssuedCode) -> Done:
    return Done(f"{code.row}:{code.code}")


def _issued(entry: Entry) -> IssuedCode:
    row, _, code = entry.detail.partition(":")
    return IssuedCode(code=code, row=int(row))


class OnceIssuedCodes:
    """IssuedCodeLedger on a OnceLedger (module docstring). `owner` names the run in the entries
    it records. Raises DependencyUnavailable as the ledger does; LedgerConflict when a key holds
    something other than a recorded code (another worker used the key: a bug)."""

    def __init__(self, once: OnceLedger, owner: str) -> None:
        self.once, self.owner = once, owner

    def recall(self, wave: str, global_user_ids: Sequence[str]) -> Mapping[str, IssuedCode]:
        keys = {issued_key(wave, g): g for g in global_user_ids}
        entries = self.once.read(list(keys))
        return {keys[k]: _issued(e) for k, e in entries.items() if e.state is EntryState.DONE}

    def record(self, wave: str, issued: Mapping[str, IssuedCode]) -> Mapping[str, IssuedCode]:
        keys = {issued_key(wave, g): g for g in issued}
        entries = self.once.record({k: _result(issued[g]) for k, g in keys.items()}, self.owner)
        held: dict[str, IssuedCode] = {}
        for key, entry in entries.items():
            if entry.state is not EntryState.DONE:
                raise LedgerConflict(key, "record an issued code", entry)
            held[keys[key]] = _issued(entry)
        return held
