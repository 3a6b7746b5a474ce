"""Checkpoints as pure functions: the Merkle tree (RFC 9162), inclusion proofs, signatures, the chain."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from approvals.audit.checkpoint import (
    GENESIS,
    Leaf,
    MerkleTree,
    SealedLeaves,
    generate_signing_key,
    key_id,
    leaf_hash,
    leaf_order,
    load_public_key,
    load_signing_key,
    proof_problems,
    public_path,
    root_from_path,
    sign,
    signature_problem,
)

KEY = Ed25519PrivateKey.generate()
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def rfc_root(hashes: list[bytes]) -> bytes:
    """RFC 9162's MTH, written as the RFC states it (the tree under test computes it differently)."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + rfc_root(hashes[:k]) + rfc_root(hashes[k:])).digest()


def leaves(n: int) -> list[Leaf]:
    return [Leaf(f"generic:case-{i:03d}", i + 1, hashlib.sha256(str(i).encode()).hexdigest()) for i in range(n)]


def test_the_tree_matches_the_certificate_transparency_test_vector() -> None:
    """The 8-leaf tree of RFC 6962's reference tests (certificate-transparency merkle_tree_test)."""
    data = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43", bytes(range(0x50, 0x58)),
            bytes(range(0x60, 0x70))]  # fmt: skip
    hashes = [hashlib.sha256(b"\x00" + item).digest() for item in data]

    assert MerkleTree(hashes).root().hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    assert MerkleTree([]).root() == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17])
def test_every_leaf_proves_its_inclusion_and_a_changed_leaf_does_not(size: int) -> None:
    hashes = [leaf_hash(leaf) for leaf in leaves(size)]
    tree = MerkleTree(hashes)
    assert tree.root() == rfc_root(hashes)

    for index in range(size):
        path = tree.path(index)
        assert root_from_path(hashes[index], index, size, path) == tree.root()
        changed = leaf_hash(Leaf(f"generic:case-{index:03d}", index + 1, "f" * 64))
        assert root_from_path(changed, index, size, path) != tree.root()
        if size > 1:
            assert root_from_path(hashes[index], (index + 1) % size, size, path) != tree.root()
    assert root_from_path(hashes[0], size, size, tree.path(0)) is None  # outside the tree


def test_leaves_are_ordered_by_the_utf8_bytes_of_the_case_id() -> None:
    unordered = [Leaf("b", 1, "h"), Leaf("审批:1", 1, "h"), Leaf("B", 1, "h"), Leaf("a:2", 1, "h")]
    assert [leaf.case_id for leaf in leaf_order(unordered)] == ["B", "a:2", "b", "审批:1"]


def test_a_leaf_cannot_pass_for_a_node() -> None:
    """Domain separation: the hash of a two-leaf tree is not the leaf hash of their concatenation."""
    a, b = (leaf_hash(leaf) for leaf in leaves(2))
    assert MerkleTree([a, b]).root() != hashlib.sha256(b"\x00" + a + b).digest()


def test_a_signature_names_its_key_and_fails_for_other_content_or_an_untrusted_key() -> None:
    signature = sign(KEY, b"manifest")
    assert signature.key_id == key_id(KEY.public_key()) and len(signature.key_id) == 64

    assert signature_problem(signature, b"manifest", [KEY.public_key()]) is None
    assert "does not match the signed content" in str(signature_problem(signature, b"manifest!", [KEY.public_key()]))
    other = Ed25519PrivateKey.generate().public_key()
    problem = str(signature_problem(signature, b"manifest", [other]))
    assert f"signed by key {signature.key_id}, which is not a trusted key ({key_id(other)})" == problem


def test_checkpoints_form_a_chain_and_a_proof_checks_offline() -> None:
    first = SealedLeaves(leaves(5)).seal(KEY, previous=None, sealed_at=NOW)
    assert first.checkpoint.seq == 1 and first.checkpoint.prev_hash == GENESIS
    grown = SealedLeaves([*leaves(5), Leaf("generic:new", 3, "a" * 64)])
    second = grown.seal(KEY, previous=first.checkpoint, sealed_at=NOW)
    assert second.checkpoint.seq == 2 and second.checkpoint.prev_hash == first.checkpoint.hash
    assert second.checkpoint.tree_size == 6

    proof = grown.prove(second, "generic:case-002")
    sealed = leaves(5)[2]
    assert proof.leaf == sealed
    assert proof_problems(proof, sealed, [KEY.public_key()]) == []

    edited = Leaf(sealed.case_id, sealed.last_seq, "0" * 64)
    problems = proof_problems(proof, edited, [KEY.public_key()])
    assert len(problems) == 2
    assert "sealed generic:case-002 at seq 3" in problems[0] and "the Merkle path does not lead" in problems[1]

    other_key = Ed25519PrivateKey.generate()
    forged = grown.seal(other_key, previous=first.checkpoint, sealed_at=NOW)
    [problem] = proof_problems(grown.prove(forged, sealed.case_id), sealed, [KEY.public_key()])
    assert problem.startswith("checkpoint 2: signed by key") and "not a trusted key" in problem


def test_a_proof_is_refused_for_leaves_that_do_not_give_the_checkpoints_root() -> None:
    signed = SealedLeaves(leaves(4)).seal(KEY, previous=None, sealed_at=NOW)
    with pytest.raises(ValueError, match="do not give its root"):
        SealedLeaves(leaves(3)).prove(signed, "generic:case-000")


def test_a_generated_key_is_kept_and_its_public_half_written_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "audit-signing-key.pem"
    key = generate_signing_key(path)

    assert path.stat().st_mode & 0o777 == 0o600
    assert key_id(generate_signing_key(path).public_key()) == key_id(key.public_key())  # not replaced
    assert key_id(load_signing_key(path).public_key()) == key_id(load_public_key(public_path(path)))
    assert key_id(load_public_key(path)) == key_id(key.public_key())  # a private key file gives its public half
    (tmp_path / "rsa.pem").write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ValueError):
        load_public_key(tmp_path / "rsa.pem")
