"""The hash chain of the audit log, recomputed row by row (:mod:`schemas.events`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from approvals.audit.findings import Finding, FindingKind, finding
from schemas.events import GENESIS_HASH, DomainEvent, compute_hash, event_content


def _hash_as(event: DomainEvent, seq: int) -> str:
    content = event_content(event)
    content["seq"] = seq
    return compute_hash(content)


# ---------------------------------------------------------------------------------------------- hash chain

_BRUTE_FORCE_LIMIT = 50
"""Rows whose original position is searched exhaustively; beyond it only the chain's hint is tried."""


def verify_chain(events: Sequence[DomainEvent], *, case_id: str | None = None) -> list[Finding]:
    """Recomputes the hash chain of one case's stored events, in stored order (by ``seq``).

    Every sealed event carries its own hash (over its content, ``seq`` and ``prev_hash`` included) and
    its predecessor's hash, so:

    - an **edited** row no longer matches its own hash;
    - a **deleted** row leaves a gap in the sequence numbers (the last row's deletion leaves no trace
      in the chain: :func:`cross_check` against the history finds it);
    - a **reordered** row (sequence numbers swapped or shifted) matches its hash only under the number it
      was sealed with, which is reported;
    - an **inserted** (forged) row matches neither its hash nor its predecessor; a forger who seals it
      correctly at the end of the chain is caught by :func:`cross_check`, never by the chain alone;
    - a row edited *and re-sealed* breaks the link of the row after it (``chain_broken``).

    Returns:
        Findings in sequence order; empty when the chain is intact.
    """
    findings: list[Finding] = []
    if not events:
        return findings
    case_id = case_id or events[0].case_id
    by_hash = {event.hash: event for event in events}
    referenced = {(event.prev_hash, event.seq) for event in events}
    hash_owners = Counter(event.hash for event in events)
    genuine = {event.seq: compute_hash(event_content(event)) == event.hash for event in events}
    tampered = sum(1 for ok in genuine.values() if not ok)
    max_seq = max(event.seq for event in events)
    expected_seq = 1
    previous: DomainEvent | None = None
    for event in events:
        if event.case_id != case_id:
            findings.append(
                finding(event.seq, FindingKind.foreign_case, f"seq {event.seq} belongs to case {event.case_id}")
            )
        if previous is not None and event.seq <= previous.seq:
            findings.append(
                finding(event.seq, FindingKind.out_of_order, f"seq {event.seq} is stored after seq {previous.seq}")
            )
        gap = event.seq > expected_seq
        for missing in range(expected_seq, event.seq):
            findings.append(
                finding(missing, FindingKind.deleted, f"seq {missing} is missing from the audit log (deleted)")
            )
        expected_prev = previous.hash if previous is not None else GENESIS_HASH
        linked = event.prev_hash == expected_prev
        if not genuine[event.seq]:
            sealed_as = _sealed_seq(event, by_hash, max_seq, brute_force=tampered <= _BRUTE_FORCE_LIMIT)
            if sealed_as is not None:
                findings.append(
                    finding(
                        event.seq,
                        FindingKind.reordered,
                        f"the row stored as seq {event.seq} ({event.type}) was sealed as seq {sealed_as}: "
                        "rows were reordered, or a row was inserted or deleted before it and the rest renumbered",
                    )
                )
            elif hash_owners[event.hash] == 1 and (
                any(h == event.hash and s != event.seq for h, s in referenced) or (linked and event.seq == max_seq)
            ):
                # Its stored hash is still vouched for by the row after it: a genuine row, edited.
                findings.append(
                    finding(
                        event.seq,
                        FindingKind.edited,
                        f"seq {event.seq} ({event.type}) does not match its hash: its content was changed after "
                        "it was recorded",
                    )
                )
            else:
                findings.append(
                    finding(
                        event.seq,
                        FindingKind.inserted,
                        f"seq {event.seq} ({event.type}) matches neither its own hash nor the chain: a forged "
                        "or inserted row",
                    )
                )
        elif not linked and not gap:
            before = f"seq {previous.seq}" if previous is not None else "the genesis hash"
            findings.append(
                finding(
                    event.seq,
                    FindingKind.chain_broken,
                    f"seq {event.seq} does not link to {before}: "
                    f"{before} was changed (and re-sealed) or a row was inserted before seq {event.seq}",
                )
            )
        expected_seq = max(expected_seq, event.seq + 1)
        previous = event
    return sorted(findings, key=lambda f: (f.seq or 0, f.kind.value))


def _sealed_seq(event: DomainEvent, by_hash: dict[str, DomainEvent], max_seq: int, *, brute_force: bool) -> int | None:
    """The sequence number ``event`` was sealed with, when its content is otherwise genuine."""
    candidates: list[int] = []
    if event.prev_hash == GENESIS_HASH:
        candidates.append(1)
    predecessor = by_hash.get(event.prev_hash)
    if predecessor is not None:
        candidates.append(predecessor.seq + 1)
    if brute_force:
        candidates.extend(range(1, max_seq + 2))
    for seq in dict.fromkeys(candidates):
        if seq != event.seq and _hash_as(event, seq) == event.hash:
            return seq
    return None
