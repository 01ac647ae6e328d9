-- Sign-in rules (store.SigninRules, issue 28): an org's provisioning rules are part of the org
-- record (orgs.doc, "signin_rules"), and what the rules gave a user (store.Provisioned) is part
-- of the user record (users.doc, "orgs" -> org -> "provisioned"), so copy-store, backups and the
-- feed carry them as they carry every org and user. (A replica of an older release that
-- rewrites an org or user record drops the fields it does not know: upgrade every replica
-- before setting rules, as for token policies.)
-- A sign-in reads every org's rules (group rules must be matched against each org anyway), so
-- no index is needed; the schema records where the rules live.
COMMENT ON COLUMN orgs.doc IS 'store.Org as JSON: name, created_at, token_policy, signin_rules';
COMMENT ON COLUMN users.doc IS 'store.User as JSON; orgs.<org>.provisioned is what sign-in rules gave the user';
