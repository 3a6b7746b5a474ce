"""The register of official documents (0011): gapless numbers, the register rows and the signed PDFs.

A number is taken by locking the counter row of its organ, series and year ``FOR UPDATE`` and inserting the
register row in the same transaction: a second issue waits for the first to commit or roll back, so numbers
follow each other without a gap and none is given twice. A retried issue (same idempotency key) finds its
row and its number; two racing retries of one key cannot both insert (the key is unique) and the loser's
transaction, its number with it, is rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import asyncpg

from schemas.documents import DocumentKind, IssuedDocument, document_number


@dataclass(frozen=True)
class Registered:
    document_id: str
    number: str


@dataclass(frozen=True)
class Registration:
    document_id: str
    key: str
    case_id: str
    kind: DocumentKind
    title: str
    organ: str
    prefix: str
    series: str
    legal_basis: str
    issued_on: date


_REGISTERED = "SELECT document_id, number FROM documents WHERE idempotency_key = $1"


async def register(pool: asyncpg.Pool, entry: Registration) -> Registered:
    """The document's register row and number: the existing one for a known key, else the next number."""
    existing = await pool.fetchrow(_REGISTERED, entry.key)
    if existing:
        return Registered(existing["document_id"], existing["number"])
    year = entry.issued_on.year
    try:
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO document_counters (organ, series, year, last_number) VALUES ($1, $2, $3, 0) "
                "ON CONFLICT DO NOTHING",
                entry.organ,
                entry.series,
                year,
            )
            last = await connection.fetchval(
                "SELECT last_number FROM document_counters WHERE organ = $1 AND series = $2 AND year = $3 FOR UPDATE",
                entry.organ,
                entry.series,
                year,
            )
            sequence = last + 1
            await connection.execute(
                "UPDATE document_counters SET last_number = $4 WHERE organ = $1 AND series = $2 AND year = $3",
                entry.organ,
                entry.series,
                year,
                sequence,
            )
            number = document_number(entry.prefix, entry.series, year, sequence)
            await connection.execute(
                "INSERT INTO documents (document_id, idempotency_key, case_id, kind, title, organ, series, year, "
                "sequence, number, legal_basis, issued_on) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                entry.document_id,
                entry.key,
                entry.case_id,
                entry.kind.value,
                entry.title,
                entry.organ,
                entry.series,
                year,
                sequence,
                number,
                entry.legal_basis,
                entry.issued_on,
            )
    except asyncpg.UniqueViolationError:  # a concurrent retry of the same key registered it first
        existing = await pool.fetchrow(_REGISTERED, entry.key)
        assert existing is not None
        return Registered(existing["document_id"], existing["number"])
    return Registered(entry.document_id, number)


async def stored_pdf(pool: asyncpg.Pool, document_id: str) -> bytes | None:
    return await pool.fetchval("SELECT pdf FROM document_files WHERE document_id = $1", document_id)


async def store_pdf(pool: asyncpg.Pool, document_id: str, pdf: bytes, sha256: str) -> bytes:
    """Stores the signed PDF once; returns the bytes stored (an earlier attempt's, if it stored first)."""
    await pool.execute(
        "INSERT INTO document_files (document_id, pdf, sha256) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        document_id,
        pdf,
        sha256,
    )
    stored = await stored_pdf(pool, document_id)
    assert stored is not None
    return stored


_LISTED = """
    SELECT d.document_id, d.kind, d.title, d.number, f.sha256, length(f.pdf) AS size, d.legal_basis, d.issued_on
    FROM documents d JOIN document_files f USING (document_id)
"""


def _issued(row: asyncpg.Record) -> IssuedDocument:
    return IssuedDocument(**dict(row))


async def case_documents(pool: asyncpg.Pool, case_id: str) -> list[IssuedDocument]:
    """The case's stored documents, in the order they were registered."""
    rows = await pool.fetch(_LISTED + " WHERE d.case_id = $1 ORDER BY d.registered_at, d.document_id", case_id)
    return [_issued(row) for row in rows]


async def case_document(pool: asyncpg.Pool, case_id: str, document_id: str) -> bytes | None:
    """The stored PDF of one of the case's documents (None: the case has no such document)."""
    return await pool.fetchval(
        "SELECT f.pdf FROM documents d JOIN document_files f USING (document_id) "
        "WHERE d.case_id = $1 AND d.document_id = $2",
        case_id,
        document_id,
    )
