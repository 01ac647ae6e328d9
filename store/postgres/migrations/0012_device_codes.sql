-- Device authorization requests (RFC 8628, store.DeviceCodes): rillctl login's codes, shared
-- by every replica so that a request approved on one is redeemed on another. id and user_code
-- are SHA-256 digests of the codes, never the codes; body is the JSON store.DeviceCode.
-- Updates take the row FOR UPDATE, so two polls or a poll and an approval are serialized.
-- expires_at is Unix nanoseconds, for the sweep.
CREATE TABLE device_codes (
	id text PRIMARY KEY,
	user_code text NOT NULL UNIQUE,
	expires_at bigint NOT NULL,
	body jsonb NOT NULL
);
CREATE INDEX device_codes_expires ON device_codes (expires_at);
