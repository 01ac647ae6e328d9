-- Where a token may be used (store.Token AllowedNetworks, AllowedOrigins): their JSON,
-- {"allowed_networks": [...], "allowed_origins": [...]}, NULL for a token without constraints.
ALTER TABLE tokens ADD COLUMN limits text;
