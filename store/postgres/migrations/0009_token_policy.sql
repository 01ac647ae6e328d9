-- Token lifetimes (store.TokenPolicy, store.TokenLifetimes). An org's token policy is part of
-- the org record (orgs.doc, "token_policy"), so it needs no column. Expired tokens are purged
-- after a retention by every replica's maintenance; this index finds them without reading
-- every token.
CREATE INDEX tokens_expires_at ON tokens (expires_at) WHERE expires_at > 0;
