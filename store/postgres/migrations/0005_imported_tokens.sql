-- The import ledger (store.ImportLedger): every token id import-rill ever brought, kept for
-- good, so that a token revoked here is never brought back by a later import, however long
-- after its tombstone was pruned.
CREATE TABLE imported_tokens (
    id          text PRIMARY KEY,
    imported_at timestamptz NOT NULL
);
