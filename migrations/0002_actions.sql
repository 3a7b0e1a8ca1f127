-- Action invocations: idempotency keys and the audit trail's link to the invocation it allowed.

-- One row per idempotency key of a caller (the token's name, as recorded in the audit trail).
-- The primary key is the guarantee that a key never actuates twice: the row is inserted in the
-- same transaction that enqueues the command, and a concurrent insert of the same key waits for
-- that transaction and then finds the original invocation.
CREATE TABLE action_idempotency (
    token_name       text NOT NULL,
    idempotency_key  text NOT NULL,
    action_id        text NOT NULL UNIQUE,
    request_hash     text NOT NULL,          -- hex SHA-256 of device, action, params and dry-run
    device_id        text NOT NULL,
    action           text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_name, idempotency_key)
);
CREATE INDEX action_idempotency_created ON action_idempotency (created_at);

ALTER TABLE audit_log ADD COLUMN action_id text;
CREATE INDEX audit_log_action ON audit_log (action_id) WHERE action_id IS NOT NULL;
