-- Where a token was last used from: the client's address and its User-Agent (bounded and
-- cleaned by store.TokenUse.Clean), written with last_used_at by RecordUses, off the check
-- path. Empty: not known (never used, or used only in ways that do not say where).
ALTER TABLE tokens ADD COLUMN last_used_ip text NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN last_used_user_agent text NOT NULL DEFAULT '';
