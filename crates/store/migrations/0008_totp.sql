-- The system account's second factor. `secret` is the TOTP seed (the
-- store file is private, beside the data directory's keys); `confirmed`
-- once a code from the authenticator was checked; `last_step` the step of
-- the last code accepted, so no code is accepted twice.
CREATE TABLE totp (
    user TEXT PRIMARY KEY NOT NULL,
    secret BLOB NOT NULL,
    confirmed INTEGER NOT NULL DEFAULT 0,
    last_step INTEGER,
    created INTEGER NOT NULL
);

-- Single-use recovery codes, by the SHA-256 of their letters only.
CREATE TABLE totp_recovery (
    user TEXT NOT NULL REFERENCES totp(user) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    PRIMARY KEY (user, code_hash)
) WITHOUT ROWID;
