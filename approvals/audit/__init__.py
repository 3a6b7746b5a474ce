"""Auditing a case without trusting its operators: export, verify, replay, explain, reconstruct.

Two independent records exist for every case. Temporal's event history is immutable and replays
deterministically through the workflow code; the PostgreSQL audit log is hash-chained
(:mod:`schemas.events`). Every domain event is sealed inside the workflow and handed to the
``record_events`` activity, so the inputs of the ``record_events`` activity tasks in the history hold
exactly the events the log must hold. The audit checks each record on its own (hash chain, replay) and
against the other (cross-check), and turns the events into a plain-language timeline and a point-in-time
state. Results are pydantic models: they serialise to JSON as they are.

This package imports nothing; import the module you need, so that reading a timeline does not load the
workflow code and Temporal's replayer:

- :mod:`~approvals.audit.findings` — ``Finding``, ``FindingKind``, ``Severity``: what a check reports.
- :mod:`~approvals.audit.chain` — ``verify_chain``: the audit log's hash chain, row by row.
- :mod:`~approvals.audit.history` — decoding Temporal histories: runs (continue-as-new), the
  ``record_events`` batches, the domain events they hold.
- :mod:`~approvals.audit.crosscheck` — ``cross_check``, ``check_decisions``, ``verify``: the log against the
  history, and against the requests (Workflow Updates) the workflow accepted, per the operation registry.
- :mod:`~approvals.audit.bundle` — export files, manifest (SHA-256 of each file, the checkpoint proof), its
  signature, verifying a bundle.
- :mod:`~approvals.audit.checkpoint` — the Merkle tree, Ed25519 keys and signatures, checkpoints and
  inclusion proofs (pure).
- :mod:`~approvals.audit.sealing` — ``Notary``: sealing checkpoints over the live log, proving a case sealed.
- :mod:`~approvals.audit.replay` — replaying histories through the workflow code, in several processes.
- :mod:`~approvals.audit.timeline` — ``TimelineRow``, ``timeline``: the events in plain language.
- :mod:`~approvals.audit.state` — ``state_at``: the case as it stood after an event or at a moment.
- :mod:`~approvals.audit.catalogue` — ``fold_catalogue``: the Committee's functions in force on a date
  (Art. 3, Art. 4), folded from the power-adjustment cases' events.
- :mod:`~approvals.audit.live` — fetch, export and verify a live case (a Temporal client, an asyncpg pool),
  reading from the archive the runs Temporal no longer has.
- :mod:`~approvals.audit.archive` — the archived form of a closed run's history, read back digest-checked.
- :mod:`~approvals.audit.archiver` — ``HistoryArchiver``: copies closed runs' histories into PostgreSQL.
- :mod:`~approvals.audit.rebuild` — ``rebuild_case``: re-records what a restore from an older backup lost.

Everything but :mod:`~approvals.audit.live`, :mod:`~approvals.audit.sealing`, the archive's readers and
writers, the rebuild and the bundle readers and writers is a plain function over events and histories (no
I/O), so the HTTP API and the CLI share it.
"""
