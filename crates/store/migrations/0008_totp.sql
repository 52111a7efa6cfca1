-- The system account's second factor. `secret` is the TOTP seed (the
-- store file is private, beside the data directory's keys); `last_step`
-- the step of the last code accepted, so no code is accepted twice.
CREATE TABLE totp (
    user TEXT PRIMARY KEY NOT NULL,
    secret BLOB NOT NULL,
    last_step INTEGER,
    created INTEGER NOT NULL
);

-- An enrolment under way: it replaces the user's `totp` row only once a
-- code confirms it, so an abandoned enrolment changes nothing.
CREATE TABLE totp_pending (
    user TEXT PRIMARY KEY NOT NULL,
    secret BLOB NOT NULL,
    created INTEGER NOT NULL
);

-- Single-use recovery codes, by the SHA-256 of their letters only.
CREATE TABLE totp_recovery (
    user TEXT NOT NULL REFERENCES totp(user) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    PRIMARY KEY (user, code_hash)
) WITHOUT ROWID;
