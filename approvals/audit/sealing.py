"""Sealing checkpoints over the live audit log, and proving a case's last event sealed (PostgreSQL).

Where sealing runs: in every worker process, every AUDIT_CHECKPOINT_INTERVAL_SECONDS, beside the outbox
dispatcher, and on demand (``approvals audit checkpoint``, and every export whose case's last event no
checkpoint seals yet). A case that closes is sealed by the next periodic pass: closing is one more
recorded batch like any other, and sealing inside ``record_events`` would put the signing key and a
global lock into every case's hot path. A pass with nothing new writes nothing, and the sealers of all
workers share one advisory lock, so more workers do not mean more checkpoints.

A sealer only extends what it sealed before: a case whose previously sealed event is no longer in the
log with the same hash (rewritten or deleted rows) keeps its old leaf, and the divergence is logged as
an error. Re-sealing a rewritten chain would launder it.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from approvals.audit.checkpoint import (
    Checkpoint,
    InclusionProof,
    Leaf,
    SealedLeaves,
    Signature,
    SignedCheckpoint,
)
from approvals.audit.periodic import periodically
from approvals.storage import checkpoints

log = structlog.get_logger(__name__)


def _signed(stored: checkpoints.StoredCheckpoint) -> SignedCheckpoint:
    checkpoint = Checkpoint(
        format=stored.format,
        seq=stored.seq,
        sealed_at=stored.sealed_at,
        tree_size=stored.tree_size,
        root=stored.root,
        prev_hash=stored.prev_hash,
    )
    signature = Signature(algorithm=stored.algorithm, key_id=stored.key_id, signature=stored.signature)
    return SignedCheckpoint(checkpoint=checkpoint, signature=signature)


def _stored(signed: SignedCheckpoint) -> checkpoints.StoredCheckpoint:
    checkpoint, signature = signed.checkpoint, signed.signature
    return checkpoints.StoredCheckpoint(
        seq=checkpoint.seq,
        format=checkpoint.format,
        sealed_at=checkpoint.sealed_at,
        tree_size=checkpoint.tree_size,
        root=checkpoint.root,
        prev_hash=checkpoint.prev_hash,
        hash=checkpoint.hash,
        algorithm=signature.algorithm,
        key_id=signature.key_id,
        signature=signature.signature,
    )


class Notary:
    """Seals checkpoints with the engine's key and proves cases sealed in them.

    Proofs reuse each checkpoint's tree, so exporting every case reads and hashes the leaves once.
    """

    def __init__(self, pool: asyncpg.Pool, key: Ed25519PrivateKey) -> None:
        self.pool = pool
        self.key = key
        self._trees: dict[int, tuple[SignedCheckpoint, SealedLeaves]] = {}
        self.diverged: dict[str, str] = {}
        """Case id -> why the last pass of :meth:`seal` kept its old leaf (the log no longer extends it)."""
        self._reading = asyncio.Lock()

    async def seal(self) -> SignedCheckpoint | None:
        """Seals every case's latest event in a new checkpoint; None when no case changed since the last one."""
        self.diverged = {}
        async with self.pool.acquire() as connection, connection.transaction():
            await checkpoints.lock_sealing(connection)
            stored = await checkpoints.latest_checkpoint(connection)
            previous = _signed(stored) if stored else None
            sealed = {
                row[0]: Leaf(*row)
                for row in (await checkpoints.sealed_leaves(connection, stored.seq) if stored else [])
            }
            changed = [
                leaf
                for row in await checkpoints.latest_events(connection)
                if sealed.get(row[0]) != (leaf := Leaf(*row))
            ]
            extending = await self._extending(connection, changed, sealed)
            if not extending and previous is not None:
                return None
            leaves = SealedLeaves({**sealed, **{leaf.case_id: leaf for leaf in extending}}.values())
            signed = leaves.seal(
                self.key, previous=previous.checkpoint if previous else None, sealed_at=datetime.now(UTC)
            )
            await checkpoints.insert_checkpoint(connection, _stored(signed), extending)
        self._trees[signed.checkpoint.seq] = (signed, leaves)
        return signed

    async def _extending(
        self, connection: asyncpg.Connection, changed: list[Leaf], sealed: dict[str, Leaf]
    ) -> list[Leaf]:
        """The changed cases whose log still holds what was sealed before, unchanged, and goes on from it."""
        before = [sealed[leaf.case_id] for leaf in changed if leaf.case_id in sealed]
        held = await checkpoints.hashes_at(connection, [(leaf.case_id, leaf.last_seq) for leaf in before])
        extending = []
        for leaf in changed:
            old = sealed.get(leaf.case_id)
            if old is None or (leaf.last_seq > old.last_seq and held.get((old.case_id, old.last_seq)) == old.last_hash):
                extending.append(leaf)
            else:
                self.diverged[leaf.case_id] = (
                    f"sealed at seq {old.last_seq} with hash {old.last_hash}, but the log now holds "
                    f"{held.get((old.case_id, old.last_seq)) or 'no row'} there and ends at seq {leaf.last_seq}: "
                    "rows were rewritten or deleted; the case keeps its old leaf"
                )
        return extending

    async def proof(self, leaf: Leaf) -> InclusionProof | None:
        """The proof that ``leaf`` is sealed, in the latest checkpoint sealing it; sealing a new checkpoint first
        when none does yet. None: the log diverged from what was sealed before (see :meth:`seal`)."""
        covering = await self._covering(leaf)
        if covering is None:
            await self.seal()
            covering = await self._covering(leaf)
        if covering is None:
            return None
        signed, leaves = await self._tree(covering)
        return leaves.prove(signed, leaf.case_id)

    async def _covering(self, leaf: Leaf) -> int | None:
        async with self.pool.acquire() as connection:
            return await checkpoints.covering_checkpoint(connection, leaf)

    async def _tree(self, seq: int) -> tuple[SignedCheckpoint, SealedLeaves]:
        async with self._reading:  # concurrent exports read each checkpoint's leaves once
            if seq not in self._trees:
                async with self.pool.acquire() as connection:
                    stored = await checkpoints.get_checkpoint(connection, seq)
                    assert stored is not None, f"checkpoint {seq} was found covering a case"
                    rows = await checkpoints.sealed_leaves(connection, seq)
                self._trees[seq] = (_signed(stored), SealedLeaves(Leaf(*row) for row in rows))
            return self._trees[seq]

    def sealing(self, interval_seconds: float) -> AbstractAsyncContextManager[None]:
        """Seals every ``interval_seconds`` while the block runs (the first pass at once); survives
        PostgreSQL going away, like the outbox dispatcher."""
        return periodically(
            self._seal_and_log, interval_seconds, name="checkpoint-sealer", unavailable="audit.checkpoint_unavailable"
        )

    async def _seal_and_log(self) -> None:
        if signed := await self.seal():
            log.info(
                "audit.checkpoint_sealed",
                seq=signed.checkpoint.seq,
                cases=signed.checkpoint.tree_size,
                root=signed.checkpoint.root,
                key_id=signed.signature.key_id,
            )
        for case_id, why in self.diverged.items():
            log.error("audit.checkpoint_case_diverged", case_id=case_id, message=why)


def checkpoint_summary(signed: SignedCheckpoint) -> dict[str, Any]:
    """What `approvals audit checkpoint` prints: the checkpoint, its hash and who signed it."""
    return {
        **signed.checkpoint.model_dump(mode="json"),
        "hash": signed.checkpoint.hash,
        **signed.signature.model_dump(),
    }
