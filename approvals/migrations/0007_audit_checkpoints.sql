-- Signed checkpoints anchoring every case's hash chain (approvals/audit/checkpoint.py, sealing.py).
--
-- A checkpoint is a Merkle root over one leaf per case (case id, last seq, last hash), the hash of the
-- checkpoint before it, and the engine's Ed25519 signature over the canonical JSON of both. An exported
-- bundle carries its case's inclusion proof, so an auditor checks offline that the chain ends where the
-- engine sealed it.
--
-- Leaves are stored once, by the checkpoint that first sealed them: the leaves of checkpoint N are, per
-- case, the row with the largest checkpoint_seq <= N. Storage grows with the cases that change, not with
-- cases x checkpoints.
--
-- Both tables are append-only like audit_events (self-contained: this migration defines its own trigger
-- function). One chain, never forked: seq is gapless (the sealer takes an advisory lock and writes
-- previous seq + 1), and no two checkpoints name the same predecessor.
CREATE TABLE audit_checkpoints (
    seq          bigint      PRIMARY KEY CHECK (seq >= 1),
    format       text        NOT NULL,
    sealed_at    timestamptz NOT NULL,
    tree_size    integer     NOT NULL CHECK (tree_size >= 0),
    root         text        NOT NULL,
    prev_hash    text        NOT NULL UNIQUE,
    hash         text        NOT NULL UNIQUE,
    algorithm    text        NOT NULL,
    key_id       text        NOT NULL,
    signature    text        NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_checkpoint_leaves (
    case_id         text    NOT NULL,
    checkpoint_seq  bigint  NOT NULL REFERENCES audit_checkpoints (seq),
    last_seq        integer NOT NULL,
    last_hash       text    NOT NULL,
    PRIMARY KEY (case_id, checkpoint_seq)
);
CREATE INDEX audit_checkpoint_leaves_checkpoint_idx ON audit_checkpoint_leaves (checkpoint_seq);

CREATE FUNCTION audit_checkpoints_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_checkpoints_append_only
    BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate
    BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_refuse_change();
CREATE TRIGGER audit_checkpoint_leaves_append_only
    BEFORE UPDATE OR DELETE ON audit_checkpoint_leaves
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_refuse_change();
CREATE TRIGGER audit_checkpoint_leaves_no_truncate
    BEFORE TRUNCATE ON audit_checkpoint_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_refuse_change();
