-- The notification outbox (store.Outbox): one row per event and sink, keyed by an id that is
-- also the idempotency key, so an event every replica finds (a token expiring) is enqueued once.
-- Replicas claim due rows with FOR UPDATE SKIP LOCKED and a lease (lease_until), so one replica
-- at a time delivers a row. Times are Unix nanoseconds (0: none).
CREATE TABLE outbox (
	id text PRIMARY KEY,
	sink text NOT NULL,
	body bytea NOT NULL,
	created_at bigint NOT NULL,
	attempts integer NOT NULL DEFAULT 0,
	next_at bigint NOT NULL,
	last_error text NOT NULL DEFAULT '',
	lease_until bigint NOT NULL DEFAULT 0,
	done_at bigint NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox (next_at) WHERE done_at = 0;
CREATE INDEX outbox_done ON outbox (done_at) WHERE done_at > 0;
