-- Owners deleted whose tokens are still being moved to tombstones. Deleting a user or service is
-- one short write (the owner's row, this row and one change), after which its tokens count as
-- revoked everywhere (reads skip the tokens of an owner listed here); the tokens themselves are
-- then deleted and tombstoned in bounded batches outside the write lock, and the row goes with
-- the last batch. A crash part way is finished by the next replica's maintenance.
CREATE TABLE purges (
    owner_id   text PRIMARY KEY,
    kind       text NOT NULL,
    why        text NOT NULL,
    deleted_at timestamptz NOT NULL
);
