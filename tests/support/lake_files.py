"""Lake files for tests: Avro container files of lake records, split into blocks as a test says."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro

from adapters.avro import AvroSchemas
from adapters.avro_container import lake_metadata

SCHEMAS = AvroSchemas()
EPOCH = datetime(2024, 5, 3, 8, 0, tzinfo=UTC)


def ban_record(dedupe_id: str, *, copy: int = 0, arrival: int = 0) -> dict[str, Any]:
    """A conformed codeBan record (envelope schema). `copy` marks which copy a duplicate is,
    in its payload, so a test can tell which one survived a merge."""
    return {
        "type": "codeBan",
        "dedupeId": dedupe_id,
        "receivedAt": EPOCH + timedelta(milliseconds=arrival),
        "payload": f'{{"id":"{dedupe_id}","copy":{copy}}}',
    }


def lake_file(
    record_type: str,
    records: Sequence[Mapping[str, Any]],
    *,
    blocks: Iterable[int] | None = None,
    keyed: bool = True,
    codec: str = "deflate",
    schema: Any = None,
) -> bytes:
    """A container file of `records`, cut into blocks of the given sizes (the rest in one more
    block), with save_campaign_data's header keys unless `keyed` is False."""
    out = io.BytesIO()
    metadata = lake_metadata(records) if keyed else {}
    writer = fastavro.write.Writer(
        out,
        schema if schema is not None else SCHEMAS.schema(record_type),
        codec=codec,
        metadata=metadata,
        sync_interval=1 << 30,
    )
    cuts = list(blocks or [])
    written = 0
    for record in records:
        writer.write(dict(record))
        written += 1
        if cuts and written == cuts[0]:
            writer.flush()
            cuts.pop(0)
            written = 0
    writer.flush()
    return out.getvalue()


def read_records(data: bytes) -> list[dict[str, Any]]:
    return [dict(r) for r in fastavro.reader(io.BytesIO(data))]  # type: ignore[arg-type]


def merge_bans(store: Any, prefix: str, layout: Any, **wiring: Any) -> Any:
    """merge_avro_files of the codeBan type over `store`, with the block compactor on it and an
    in-memory move queue; `wiring`: the worker's other arguments (index, key log, finder)."""
    from adapters.lake_compactor import AvroLakeCompactor
    from domain.workers.merge_avro_files import MergeRequest, merge_avro_files
    from tests.support.memory_compaction import MemoryMoveQueue

    compactor = AvroLakeCompactor(store)
    return merge_avro_files(
        MergeRequest(prefix, ("codeBan",)),
        store=store,
        compactor=compactor,
        manifests=compactor,
        queue=MemoryMoveQueue(),
        layout=layout,
        **wiring,
    )


def lake_environment(endpoint_url: str, bucket: str, move_queue: str) -> dict[str, str]:
    """The environment the lake's handlers and CLI read, pointed at the emulator."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "CAMPAIGN_DATA_BUCKET": bucket,
        "MOVE_QUEUE": move_queue,
    }
