-- The index of session recordings. The recording itself (a folder of
-- signed chunks) is the record; this table is for finding it.
CREATE TABLE recordings (
    id          TEXT PRIMARY KEY NOT NULL,
    app         TEXT NOT NULL,
    user        TEXT,
    client_ip   TEXT NOT NULL,
    user_agent  TEXT,
    started_at  INTEGER NOT NULL, -- Unix milliseconds
    ended_at    INTEGER,
    state       TEXT NOT NULL,    -- recording, complete, incomplete
    closed_because TEXT,
    events      INTEGER NOT NULL DEFAULT 0,
    bytes       INTEGER NOT NULL DEFAULT 0,
    location    TEXT NOT NULL     -- local (more to come: a storage bucket)
);
CREATE INDEX recordings_started ON recordings (started_at);
CREATE INDEX recordings_app ON recordings (app, started_at);
