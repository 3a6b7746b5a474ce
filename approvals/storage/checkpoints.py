"""The ``audit_checkpoints`` chain and the leaves each checkpoint sealed (append-only, migration 0007).

Sealing runs in one transaction under an advisory lock, so several workers (and ``approvals audit
checkpoint``) never write two checkpoints with the same predecessor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

SEALING_LOCK_KEY = 0x61707072_7365616C  # "apprseal": serialises the sealers of this database.

LeafRow = tuple[str, int, str]
"""(case id, last seq, last hash)."""

_LATEST_EVENTS = """
SELECT DISTINCT ON (case_id) case_id, seq, hash FROM audit_events ORDER BY case_id, seq DESC
"""

_SEALED_LEAVES = """
SELECT DISTINCT ON (case_id) case_id, last_seq, last_hash FROM audit_checkpoint_leaves
WHERE checkpoint_seq <= $1
ORDER BY case_id, checkpoint_seq DESC
"""

_HASHES_AT = """
SELECT e.case_id, e.seq, e.hash
FROM unnest($1::text[], $2::integer[]) AS wanted (case_id, seq)
JOIN audit_events e ON e.case_id = wanted.case_id AND e.seq = wanted.seq
"""

_CHECKPOINT_COLUMNS = "seq, format, sealed_at, tree_size, root, prev_hash, hash, algorithm, key_id, signature"

_INSERT_CHECKPOINT = f"""
INSERT INTO audit_checkpoints ({_CHECKPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""

_INSERT_LEAVES = """
INSERT INTO audit_checkpoint_leaves (case_id, checkpoint_seq, last_seq, last_hash)
SELECT case_id, $1, last_seq, last_hash FROM unnest($2::text[], $3::integer[], $4::text[])
    AS leaf (case_id, last_seq, last_hash)
"""

_COVERING = """
SELECT coalesce(
    (SELECT min(later.checkpoint_seq) - 1 FROM audit_checkpoint_leaves later
     WHERE later.case_id = sealed.case_id AND later.checkpoint_seq > sealed.checkpoint_seq),
    (SELECT max(seq) FROM audit_checkpoints)
)
FROM audit_checkpoint_leaves sealed
WHERE sealed.case_id = $1 AND sealed.last_seq = $2 AND sealed.last_hash = $3
"""


@dataclass(frozen=True)
class StoredCheckpoint:
    seq: int
    format: str
    sealed_at: datetime
    tree_size: int
    root: str
    prev_hash: str
    hash: str
    algorithm: str
    key_id: str
    signature: str


async def lock_sealing(connection: asyncpg.Connection) -> None:
    """Holds the sealers' lock until the transaction ends."""
    await connection.execute("SELECT pg_advisory_xact_lock($1)", SEALING_LOCK_KEY)


async def latest_events(connection: asyncpg.Connection) -> list[LeafRow]:
    """Every case's last audit event."""
    return [(row["case_id"], row["seq"], row["hash"]) for row in await connection.fetch(_LATEST_EVENTS)]


async def sealed_leaves(connection: asyncpg.Connection, checkpoint_seq: int) -> list[LeafRow]:
    """The leaves checkpoint ``checkpoint_seq`` sealed: each case's leaf as of that checkpoint."""
    rows = await connection.fetch(_SEALED_LEAVES, checkpoint_seq)
    return [(row["case_id"], row["last_seq"], row["last_hash"]) for row in rows]


async def hashes_at(connection: asyncpg.Connection, positions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """The hash the audit log holds at each (case id, seq) asked for (absent: no such row)."""
    rows = await connection.fetch(_HASHES_AT, [case for case, _ in positions], [seq for _, seq in positions])
    return {(row["case_id"], row["seq"]): row["hash"] for row in rows}


async def latest_checkpoint(connection: asyncpg.Connection) -> StoredCheckpoint | None:
    row = await connection.fetchrow(f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")
    return StoredCheckpoint(**dict(row)) if row else None


async def get_checkpoint(connection: asyncpg.Connection, seq: int) -> StoredCheckpoint | None:
    row = await connection.fetchrow(f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq = $1", seq)
    return StoredCheckpoint(**dict(row)) if row else None


async def insert_checkpoint(
    connection: asyncpg.Connection, checkpoint: StoredCheckpoint, new_leaves: Sequence[LeafRow]
) -> None:
    """Appends the checkpoint and the leaves it seals for the first time (call inside a transaction)."""
    await connection.execute(
        _INSERT_CHECKPOINT,
        checkpoint.seq, checkpoint.format, checkpoint.sealed_at, checkpoint.tree_size, checkpoint.root,
        checkpoint.prev_hash, checkpoint.hash, checkpoint.algorithm, checkpoint.key_id, checkpoint.signature,
    )  # fmt: skip
    await connection.execute(
        _INSERT_LEAVES,
        checkpoint.seq,
        [leaf[0] for leaf in new_leaves],
        [leaf[1] for leaf in new_leaves],
        [leaf[2] for leaf in new_leaves],
    )


async def covering_checkpoint(connection: asyncpg.Connection, leaf: LeafRow) -> int | None:
    """The latest checkpoint whose leaf for the case is exactly ``leaf`` (None: no checkpoint sealed it)."""
    return await connection.fetchval(_COVERING, *leaf)
