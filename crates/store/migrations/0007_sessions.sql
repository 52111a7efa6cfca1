-- Sign-in sessions, so a restart signs nobody out. Only a hash of the
-- session id is kept: the store alone cannot be turned into cookies.
-- `password` names the admin password the session was signed in with
-- (a hash of its hash): a changed password ends the sessions of the old.
CREATE TABLE sessions (
    id_hash BLOB PRIMARY KEY NOT NULL,
    user TEXT NOT NULL,
    password TEXT NOT NULL,
    created INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
) WITHOUT ROWID;
