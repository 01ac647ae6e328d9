-- Magic tokens (public URLs, rill_mgc_) are tokens owned by their project (owner_id
-- "org/name"); what one opens (store.Magic: resources, metrics view filters, fields, state,
-- the creator's attributes) is its JSON here, NULL for every other kind of token.
ALTER TABLE tokens ADD COLUMN magic text;
