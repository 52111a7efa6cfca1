-- Apps created through the admin API. The definition is the app's settings
-- as JSON, in the config file's field names, validated before it is stored.
CREATE TABLE apps (
    name       TEXT PRIMARY KEY NOT NULL,
    definition TEXT NOT NULL,
    created_at INTEGER NOT NULL, -- Unix milliseconds
    updated_at INTEGER NOT NULL
);

-- Every change made through the admin API: who, from where, what, when,
-- and the state before and after (JSON, NULL where there is none).
CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL, -- Unix milliseconds
    actor  TEXT NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    before TEXT,
    after  TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
