"""Checkpoints and signatures: pure functions, no I/O but reading and writing key files.

A checkpoint seals every case's latest audit event at one moment: a Merkle root over one leaf per case
(case id, last seq, last hash), linked to the checkpoint before it by that checkpoint's hash, and signed
with the engine's Ed25519 key. A case's last hash plus its Merkle path recompute the root, so an
exported bundle proves offline that its chain ends where the engine sealed it: rewriting a case and
re-hashing its chain means forging a signed checkpoint.

The Merkle tree is RFC 9162's (Certificate Transparency v2, section 2.1): a leaf is hashed as
``SHA-256(0x00 || leaf)`` and a node as ``SHA-256(0x01 || left || right)``, so a leaf can never pass for a
node; the tree splits at the largest power of two below its size, and the inclusion proof and its
verification are the RFC's algorithms. Leaves are ordered by the UTF-8 bytes of the case id.

Key ids are fingerprints: the SHA-256 (hex) of the raw 32-byte Ed25519 public key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field

GENESIS = "0" * 64
"""``prev_hash`` of the first checkpoint."""
SIGNATURE_ALGORITHM = "Ed25519"
CHECKPOINT_FORMAT = "approvals-checkpoint/1"
DEV_SIGNING_KEY_FILE = "audit-signing-key.pem"
"""The key `approvals dev` generates in its data directory on first start (its public half beside it)."""


# ------------------------------------------------------------------ Merkle tree (RFC 9162, 2.1)


class Leaf(NamedTuple):
    """One case as a checkpoint seals it: its latest audit event."""

    case_id: str
    last_seq: int
    last_hash: str

    def encoded(self) -> bytes:
        """Canonical JSON of ``[case_id, last_seq, last_hash]``: unambiguous whatever the case id holds."""
        return json.dumps([self.case_id, self.last_seq, self.last_hash], ensure_ascii=False).encode()


def leaf_order(leaves: Sequence[Leaf]) -> list[Leaf]:
    """The defined order of a checkpoint's leaves: ascending by the UTF-8 bytes of the case id."""
    return sorted(leaves, key=lambda leaf: leaf.case_id.encode())


def leaf_hash(leaf: Leaf) -> bytes:
    return hashlib.sha256(b"\x00" + leaf.encoded()).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (``size`` > 1)."""
    return 1 << ((size - 1).bit_length() - 1)


class MerkleTree:
    """The tree over leaf hashes, in order; every subtree hash is computed once, so the paths of all leaves
    cost O(n) together (an export of every case asks for each of them)."""

    def __init__(self, hashes: Sequence[bytes]) -> None:
        self._hashes = list(hashes)
        self._nodes: dict[tuple[int, int], bytes] = {}

    def __len__(self) -> int:
        return len(self._hashes)

    def _hash(self, lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return self._hashes[lo]
        if (lo, hi) not in self._nodes:
            k = lo + _split(hi - lo)
            self._nodes[(lo, hi)] = _node_hash(self._hash(lo, k), self._hash(k, hi))
        return self._nodes[(lo, hi)]

    def root(self) -> bytes:
        """The Merkle tree hash (the empty tree: SHA-256 of nothing)."""
        return self._hash(0, len(self)) if self._hashes else hashlib.sha256(b"").digest()

    def path(self, index: int) -> list[bytes]:
        """The audit path of leaf ``index``: the sibling hashes from the leaf up to the root."""
        if not 0 <= index < len(self):
            raise IndexError(f"leaf {index} is outside a tree of {len(self)} leaves")
        siblings: list[bytes] = []
        lo, hi = 0, len(self)
        while hi - lo > 1:
            k = lo + _split(hi - lo)
            if index < k:
                siblings.append(self._hash(k, hi))
                hi = k
            else:
                siblings.append(self._hash(lo, k))
                lo = k
        return siblings[::-1]


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root that ``leaf`` at ``index`` of a ``size``-leaf tree and its ``path`` lead to (RFC 9162,
    2.1.3.2); None when the path has the wrong length for that position."""
    if not 0 <= index < size:
        return None
    fn, sn, node = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            node = _node_hash(sibling, node)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            node = _node_hash(node, sibling)
        fn, sn = fn >> 1, sn >> 1
    return node if sn == 0 else None


# ------------------------------------------------------------------ keys and signatures


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's fingerprint: SHA-256 (hex) of its raw 32 bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The engine's private key from a PEM file (PKCS #8, unencrypted)."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} holds a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A trusted public key from a PEM file (SubjectPublicKeyInfo); a private key file gives its public half."""
    data = path.read_bytes()
    key = (
        serialization.load_pem_private_key(data, password=None).public_key()
        if b"PRIVATE KEY" in data
        else serialization.load_pem_public_key(data)
    )
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def generate_signing_key(path: Path) -> Ed25519PrivateKey:
    """Writes a new key to ``path`` (owner-readable only) and its public half to ``<path stem>.pub.pem``,
    unless ``path`` exists: then the key it holds is returned, so a restart keeps signing with the same key."""
    if path.exists():
        return load_signing_key(path)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    public_path(path).write_bytes(public_key_pem(key.public_key()))
    return key


def public_path(signing_key_path: Path) -> Path:
    """Where :func:`generate_signing_key` writes the public key for auditors."""
    return signing_key_path.with_name(f"{signing_key_path.stem}.pub.pem")


class Signature(BaseModel):
    """An Ed25519 signature and the fingerprint of the key that made it."""

    model_config = ConfigDict(frozen=True)

    algorithm: str = SIGNATURE_ALGORITHM
    key_id: str
    signature: str = Field(description="Base64 of the 64-byte signature.")


def sign(key: Ed25519PrivateKey, data: bytes) -> Signature:
    return Signature(key_id=key_id(key.public_key()), signature=base64.b64encode(key.sign(data)).decode())


def signature_problem(signature: Signature, data: bytes, trusted: Sequence[Ed25519PublicKey]) -> str | None:
    """Why ``signature`` does not vouch for ``data`` under one of the ``trusted`` keys (None: it does)."""
    if signature.algorithm != SIGNATURE_ALGORITHM:
        return f"signed with {signature.algorithm!r}, expected {SIGNATURE_ALGORITHM}"
    by_id = {key_id(key): key for key in trusted}
    key = by_id.get(signature.key_id)
    if key is None:
        return f"signed by key {signature.key_id}, which is not a trusted key ({', '.join(by_id) or 'none given'})"
    try:
        key.verify(base64.b64decode(signature.signature, validate=True), data)
    except (InvalidSignature, ValueError):
        return f"the signature by key {signature.key_id} does not match the signed content"
    return None


# ------------------------------------------------------------------ checkpoints


class Checkpoint(BaseModel):
    """What a checkpoint states; its canonical JSON is what is hashed and signed."""

    model_config = ConfigDict(frozen=True)

    format: str = CHECKPOINT_FORMAT
    seq: int = Field(ge=1, description="1, 2, 3 …: the checkpoints form one chain.")
    sealed_at: datetime
    tree_size: int = Field(ge=0, description="Leaves: one per case with audit events.")
    root: str = Field(description="Merkle root over the leaves, hex.")
    prev_hash: str = Field(description="Hash of the previous checkpoint (GENESIS for the first).")

    def statement(self) -> bytes:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.statement()).hexdigest()


class SignedCheckpoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    checkpoint: Checkpoint
    signature: Signature


class SealedLeaves:
    """A checkpoint's leaves in their defined order, with their Merkle tree."""

    def __init__(self, leaves: Iterable[Leaf]) -> None:
        self.leaves = leaf_order(list(leaves))
        self.tree = MerkleTree([leaf_hash(leaf) for leaf in self.leaves])
        self._index = {leaf.case_id: index for index, leaf in enumerate(self.leaves)}

    def seal(self, key: Ed25519PrivateKey, *, previous: Checkpoint | None, sealed_at: datetime) -> SignedCheckpoint:
        """The next checkpoint over these leaves, linked to ``previous`` and signed."""
        checkpoint = Checkpoint(
            seq=previous.seq + 1 if previous else 1,
            sealed_at=sealed_at,
            tree_size=len(self.leaves),
            root=self.tree.root().hex(),
            prev_hash=previous.hash if previous else GENESIS,
        )
        return SignedCheckpoint(checkpoint=checkpoint, signature=sign(key, checkpoint.statement()))

    def prove(self, signed: SignedCheckpoint, case_id: str) -> InclusionProof:
        """The inclusion proof of ``case_id``'s leaf in ``signed``, which must be sealed over these leaves."""
        if self.tree.root().hex() != signed.checkpoint.root or len(self.leaves) != signed.checkpoint.tree_size:
            raise ValueError(f"checkpoint {signed.checkpoint.seq}: its stored leaves do not give its root")
        index = self._index[case_id]
        return InclusionProof(
            signed=signed, leaf=self.leaves[index], index=index, path=[node.hex() for node in self.tree.path(index)]
        )


class InclusionProof(BaseModel):
    """A case's last event sealed in a signed checkpoint: everything needed to check it offline."""

    model_config = ConfigDict(frozen=True)

    signed: SignedCheckpoint
    leaf: Leaf
    index: int = Field(ge=0, description="The leaf's position in the checkpoint's order.")
    path: list[str] = Field(description="Sibling hashes (hex) from the leaf up to the root.")


def proof_problems(proof: InclusionProof, expected: Leaf, trusted: Sequence[Ed25519PublicKey]) -> list[str]:
    """Why ``proof`` does not show ``expected`` sealed in a checkpoint signed by a trusted key (empty: it does)."""
    checkpoint = proof.signed.checkpoint
    problems = []
    if (problem := signature_problem(proof.signed.signature, checkpoint.statement(), trusted)) is not None:
        problems.append(f"checkpoint {checkpoint.seq}: {problem}")
    if proof.leaf != expected:
        problems.append(
            f"checkpoint {checkpoint.seq} sealed {proof.leaf.case_id} at seq {proof.leaf.last_seq} with hash "
            f"{proof.leaf.last_hash}, but the record ends at seq {expected.last_seq} with hash {expected.last_hash}"
        )
    try:
        path = [bytes.fromhex(node) for node in proof.path]
    except ValueError:
        path = None
    root = root_from_path(leaf_hash(expected), proof.index, checkpoint.tree_size, path) if path is not None else None
    if root is None or root.hex() != checkpoint.root:
        problems.append(
            f"the Merkle path does not lead from the record's last hash to checkpoint {checkpoint.seq}'s root"
        )
    return problems
