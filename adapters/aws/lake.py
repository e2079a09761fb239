"""The data lake on S3: RecordArchive writing one Avro container file per type per batch.

Keys: `avro/{type}/YYYY/MM/DD/{name}.avro` in the campaign-data bucket (domain.records.LakeKey;
the prefix is fixed), `name` = the batch's shard and first sequence number, day =
the batch's first record's arrival day (UTC). A replay of the batch therefore writes the same
keys: PutObject replaces the earlier attempt's objects whole (S3 never shows half an object),
and one DeleteObjects call removes the objects of types the replay no longer holds, so no
record stays in the lake twice. The bytes are AvroSchemas.encode's: the same batch gives the
same object in any process (adapters/avro.py).
"""

from __future__ import annotations

from typing import Any

from adapters.avro import AvroSchemas
from adapters.aws.errors import AWS_ERRORS, unavailable
from domain.models import ObjectRef
from domain.records import RECORD_TYPES, LakeBatch, LakeKey
from domain.streaming import DependencyUnavailable

AVRO_CONTENT_TYPE = "avro/binary"


class S3Lake:
    """RecordArchive on an S3 bucket (boto3 client; any endpoint: AWS, moto, LocalStack)."""

    def __init__(self, s3: Any, bucket: str, schemas: AvroSchemas) -> None:
        self._s3 = s3
        self.bucket = bucket
        self._schemas = schemas

    def replace_batch(self, batch: LakeBatch) -> tuple[ObjectRef, ...]:
        written: list[ObjectRef] = []
        for lake_key in batch.lake_keys():
            body = self._schemas.encode(lake_key.record_type, batch.parts[lake_key.record_type])
            try:
                self._s3.put_object(
                    Bucket=self.bucket,
                    Key=lake_key.key,
                    Body=body,
                    ContentType=AVRO_CONTENT_TYPE,
                )
            except AWS_ERRORS as error:
                raise unavailable(f"lake s3://{self.bucket}", error) from error
            written.append(ObjectRef(self.bucket, lake_key.key))
        self._remove_stale(batch)
        return tuple(written)

    def _remove_stale(self, batch: LakeBatch) -> None:
        stale = [
            {"Key": LakeKey(record_type, batch.day, batch.name).key}
            for record_type in sorted(RECORD_TYPES - set(batch.parts))
        ]
        if not stale:  # S3 refuses an empty Delete list (MalformedXML)
            return
        try:
            answer = self._s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": stale, "Quiet": True}
            )
        except AWS_ERRORS as error:
            raise unavailable(f"lake s3://{self.bucket}", error) from error
        errors = answer.get("Errors") or []
        if errors:
            first = errors[0]
            raise DependencyUnavailable(
                f"lake s3://{self.bucket}",
                f"{len(errors)} stale objects not deleted, e.g. {first.get('Key')}: "
                f"{first.get('Code')} {first.get('Message', '')}".rstrip(),
            )
