-- The first schema. Migrations only ever add: a replica running the previous release must keep
-- working on a database migrated by the next one.
--
-- Records other than tokens are kept as the JSON the Go model marshals to (doc), beside the
-- columns that index or constrain them, so every field round-trips exactly as in the embedded
-- engine (times to the nanosecond, attributes as JSON). Token times are Unix nanoseconds
-- (0 = none) for the same reason.

CREATE TABLE orgs (
    name text PRIMARY KEY,
    doc  jsonb NOT NULL
);

CREATE TABLE projects (
    org  text NOT NULL REFERENCES orgs (name),
    name text NOT NULL,
    doc  jsonb NOT NULL,
    PRIMARY KEY (org, name)
);

CREATE TABLE users (
    id    text PRIMARY KEY,
    email text NOT NULL UNIQUE,
    doc   jsonb NOT NULL
);

CREATE TABLE services (
    id   text PRIMARY KEY,
    org  text NOT NULL REFERENCES orgs (name),
    name text NOT NULL,
    doc  jsonb NOT NULL,
    UNIQUE (org, name)
);

-- Owners are users or services (by kind), so the owner is checked in the writing transaction
-- rather than by a foreign key.
CREATE TABLE tokens (
    id           text PRIMARY KEY,
    kind         text NOT NULL,
    owner_id     text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    prefix       text NOT NULL DEFAULT '',
    hash         bytea NOT NULL,
    created_by   text NOT NULL DEFAULT '',
    created_at   bigint NOT NULL DEFAULT 0,
    expires_at   bigint NOT NULL DEFAULT 0,
    last_used_at bigint NOT NULL DEFAULT 0
);
CREATE INDEX tokens_owner ON tokens (owner_id, id);

-- Revoked tokens (and those of deleted owners), remembered for 90 days so a check can say
-- "revoked" instead of "unknown".
CREATE TABLE tombstones (
    id         text PRIMARY KEY,
    why        text NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tombstones_deleted_at ON tombstones (deleted_at);

-- Live tokens per kind, kept in the transactions that create and delete tokens.
CREATE TABLE token_counts (
    kind text PRIMARY KEY,
    n    bigint NOT NULL DEFAULT 0
);
INSERT INTO token_counts (kind, n) VALUES ('usr', 0), ('svc', 0);

-- private_key is PKCS#8 DER, or nonce || AES-GCM ciphertext when encrypted is set.
CREATE TABLE signing_keys (
    kid         text PRIMARY KEY,
    private_key bytea NOT NULL,
    encrypted   boolean NOT NULL DEFAULT false,
    created_at  bigint NOT NULL,
    doc         jsonb NOT NULL
);

CREATE TABLE audit (
    id    bigserial PRIMARY KEY,
    at    bigint NOT NULL, -- Unix nanoseconds
    actor text NOT NULL,
    doc   jsonb NOT NULL
);
CREATE INDEX audit_at ON audit (at, id);

CREATE TABLE meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- The change feed. Writers hold one advisory lock while they write and allocate sequences from
-- feed_state, so sequences are gapless and follow commit order. write_end is the last sequence
-- of the write a change belongs to, so a reader can hand subscribers whole writes.
CREATE TABLE changes (
    seq       bigint PRIMARY KEY,
    write_end bigint NOT NULL,
    kind      text NOT NULL,
    op        text NOT NULL,
    id        text NOT NULL,
    at        bigint NOT NULL -- Unix nanoseconds
);

CREATE TABLE feed_state (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_seq bigint NOT NULL,
    pruned   bigint NOT NULL -- the newest sequence pruned from changes
);
INSERT INTO feed_state (last_seq, pruned) VALUES (0, 0);
