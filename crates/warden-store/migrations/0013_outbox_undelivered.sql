-- The relay reads the undelivered rows in id order, a batch after the batch in flight:
-- an index of just those rows by id serves that read (and the count of what is pending)
-- without sorting every pending row for each batch, and a row leaves it when it is marked
-- delivered, where the old index moved the row to another place.
DROP INDEX outbox_pending;
CREATE INDEX outbox_undelivered ON outbox (id) WHERE delivered_at IS NULL;
