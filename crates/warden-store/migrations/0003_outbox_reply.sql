-- The reply NATS gave when an outbox message was delivered (e.g. the resolver's
-- "jwt updated"), kept for the record.
ALTER TABLE outbox ADD COLUMN reply TEXT;
