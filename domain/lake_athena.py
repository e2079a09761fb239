"""The Athena engine of merge_avro_files: Athena names the dedupe ids that occur more than once.

Built for a lake too large to hold its ids in one function; since the embedded duplicate index
spills to disk (adapters/lake_keys.py) that is no longer a limit, and this engine is kept for a
second opinion on which ids repeat. The merge then writes the merged file block by block as
always, dropping only those ids (the duplicate index's `watch`), so the first-by-arrival rule and
the block copies are the same whichever engine found the duplicates.

Why not the original's way (a consolidating `SELECT DISTINCT` whose output becomes the merged
file): Athena's output would be another schema (lower-cased column names), every record would be
decoded and encoded again, and which copy survives would be Athena's choice, not the first by
arrival. The query below is the same consolidation, asked for what the block merge needs.

Orchestration, for one type and prefix:
1. a temporary external table per source location that holds files (the day's sources; for a
   month also the days' merged files), `STORED AS AVRO` with a projection schema on `dedupeId`
   (Avro resolution reads only that field);
2. `SELECT dedupeid ... GROUP BY dedupeid HAVING count(*) > 1` over their union, polled to its end;
3. its rows read (paged) into the set of repeating ids;
4. always, on success and failure alike: every temporary table dropped and every execution's
   output removed (outputs of people's data do not linger in the bucket).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from returns.result import Failure, Result, Success

from domain.lake import LakeLayout, MergeRefusal, SourceFile, dedupe_key
from domain.ports import QueryEngine

_SAFE = re.compile(r"[^a-z0-9_]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def table_name(record_type: str, prefix: str, index: int) -> str:
    """A temporary table's name from the type and prefix: deterministic, so a crashed run's
    table is dropped (or replaced) by the next one instead of piling up."""
    return _SAFE.sub("_", f"cw_merge_{record_type.lower()}_{prefix.replace('/', '')}_{index}")


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class AthenaDuplicates:
    """DuplicateFinder over Athena (domain.workers.merge_avro_files)."""

    engine: QueryEngine
    database: str
    layout: LakeLayout
    # record type -> the Avro schema JSON of a record of the type's name with only `dedupeId`
    projection: Callable[[str], str]

    def __post_init__(self) -> None:
        if not _IDENTIFIER.fullmatch(self.database):
            raise ValueError(f"not an Athena database name: {self.database!r}")

    def __call__(
        self, record_type: str, prefix: str, files: Sequence[SourceFile]
    ) -> Result[frozenset[bytes], MergeRefusal]:
        locations = [
            location
            for location in self.layout.source_prefixes(record_type, prefix)
            if any(f.info.ref.key.startswith(location) for f in files)
        ]
        tables = [
            f"`{self.database}`.`{table_name(record_type, prefix, i)}`"
            for i in range(len(locations))
        ]
        executions: list[str] = []
        try:
            for table, location in zip(tables, locations, strict=True):
                created = self._run(
                    executions,
                    f"CREATE EXTERNAL TABLE IF NOT EXISTS {table} (`dedupeid` string) "
                    "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.avro.AvroSerDe' "
                    "WITH SERDEPROPERTIES ('avro.schema.literal'="
                    f"{_quoted(self.projection(record_type))}) "
                    f"STORED AS AVRO LOCATION {_quoted(f's3://{self.layout.bucket}/{location}')}",
                )
                if isinstance(created, MergeRefusal):
                    return Failure(created)
            # Only identifiers go into the SQL, and only checked ones (table_name, __post_init__).
            union = " UNION ALL ".join(f"SELECT dedupeid FROM {t}" for t in tables)  # noqa: S608
            query = self._run(
                executions,
                f"SELECT dedupeid FROM ({union}) GROUP BY dedupeid HAVING count(*) > 1",  # noqa: S608
            )
            if isinstance(query, MergeRefusal):
                return Failure(query)
            repeating = frozenset(
                dedupe_key(row[0]) for row in self.engine.rows(query) if row and row[0]
            )
            return Success(repeating)
        finally:
            for table in tables:
                self._run(executions, f"DROP TABLE IF EXISTS {table}")
            for execution in executions:
                self.engine.discard(execution)

    def _run(self, executions: list[str], sql: str) -> str | MergeRefusal:
        match self.engine.execute(sql):
            case Success(execution):
                executions.append(execution)
                return str(execution)
            case Failure(why):
                return MergeRefusal("query_failed", f"Athena: {why} (in: {sql[:80]}...)")
        raise AssertionError("unreachable")
