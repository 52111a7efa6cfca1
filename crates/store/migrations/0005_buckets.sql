-- Storage buckets recordings move to. `config` is the bucket's settings as
-- JSON with any secret encrypted (moat's key-encryption key); it is never
-- shown back.
CREATE TABLE buckets (
    name       TEXT PRIMARY KEY NOT NULL,
    config     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- The bucket a recording goes to (NULL: it stays on local disk).
ALTER TABLE recordings ADD COLUMN bucket TEXT;
