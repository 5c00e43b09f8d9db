"""Where parts of a chunked upload wait until their file is assembled.

Every part has a ``push_parts`` row (size, sha1, where it is). Its bytes live in that row
(``bytea``, the default: nothing else to run) or, when ``KAIXUPUSH_S3_BUCKET`` is set, in S3
under ``KAIXUPUSH_S3_PREFIX<job>/<part>`` (``KAIXUPUSH_S3_ENDPOINT_URL`` points boto3 at an
S3-compatible server; credentials come the usual AWS way). Each part remembers where it
went, so changing the setting never loses parts already staged. Parts are read back one at
a time, so assembling a file never holds more than one part in memory.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import psycopg

from shared import config, db

_S3_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys


class MissingPart(Exception):
    """A part the job needs is not staged (expired, or its S3 object is gone)."""


@functools.lru_cache(maxsize=4)
def _s3_client(endpoint_url: str) -> Any:
    import boto3  # only deployments that stage in S3 pay for importing it

    return boto3.client("s3", endpoint_url=endpoint_url or None)


def _s3() -> Any:
    return _s3_client(config.settings().kaixupush_s3_endpoint_url)


def _key(job_id: int, part: int) -> str:
    return f"{config.settings().kaixupush_s3_prefix}{job_id}/{part:05d}"


async def previous_size(conn: psycopg.AsyncConnection, job_id: int, part: int) -> int:
    cur = await conn.execute("SELECT size FROM push_parts WHERE job_id = %s AND part = %s", (job_id, part))
    row = await cur.fetchone()
    return row["size"] if row else 0


async def put_part(conn: psycopg.AsyncConnection, job_id: int, part: int, data: bytes, sha1: str) -> None:
    """Stage (or replace) one part, in the caller's transaction for the row."""
    bucket = config.settings().kaixupush_s3_bucket
    if bucket:
        await asyncio.to_thread(_s3().put_object, Bucket=bucket, Key=_key(job_id, part), Body=data)
    await conn.execute(
        "INSERT INTO push_parts (job_id, part, size, sha1, storage, data) VALUES (%s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (job_id, part) DO UPDATE SET size = excluded.size, sha1 = excluded.sha1, "
        "storage = excluded.storage, data = excluded.data, updated_at = now()",
        (job_id, part, len(data), sha1, "s3" if bucket else "pg", None if bucket else data),
    )


async def read_part(job_id: int, part: int) -> bytes:
    row = await db.fetch_one(
        "SELECT storage, data FROM push_parts WHERE job_id = %s AND part = %s", (job_id, part)
    )
    if row is None:
        raise MissingPart(f"part {part} is not staged")
    if row["storage"] == "pg":
        return bytes(row["data"])
    try:
        answer = await asyncio.to_thread(
            _s3().get_object, Bucket=config.settings().kaixupush_s3_bucket, Key=_key(job_id, part)
        )
        return await asyncio.to_thread(answer["Body"].read)
    except Exception as exc:  # botocore's errors are generated classes; any failure means "gone"
        raise MissingPart(f"part {part} could not be read from S3 ({type(exc).__name__})") from None


async def delete_parts(job_ids: list[int]) -> int:
    """Forget the staged parts of these jobs (S3 objects first, then the rows)."""
    if not job_ids:
        return 0
    rows = await db.fetch_all(
        "SELECT job_id, part FROM push_parts WHERE job_id = ANY(%s) AND storage = 's3'", (job_ids,)
    )
    bucket = config.settings().kaixupush_s3_bucket
    keys = [{"Key": _key(row["job_id"], row["part"])} for row in rows]
    for start in range(0, len(keys) if bucket else 0, _S3_DELETE_BATCH):
        batch = {"Objects": keys[start : start + _S3_DELETE_BATCH], "Quiet": True}
        await asyncio.to_thread(_s3().delete_objects, Bucket=bucket, Delete=batch)
    return await db.execute("DELETE FROM push_parts WHERE job_id = ANY(%s)", (job_ids,))
