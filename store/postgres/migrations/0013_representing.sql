-- A user token a superuser issued to act as its owner (Rill's representing_user_id; the owner is
-- the user it acts as) records who issued it, so that deleting the issuer revokes it and the
-- issuer's lists show it. Empty for every other token; the index holds only the few that have one.
ALTER TABLE tokens ADD COLUMN issued_by text NOT NULL DEFAULT '';
CREATE INDEX tokens_issued_by ON tokens (issued_by, id) WHERE issued_by <> '';
