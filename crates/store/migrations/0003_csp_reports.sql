-- CSP violations browsers reported, one row per distinct violation of an
-- app, counted.
CREATE TABLE csp_reports (
    app         TEXT NOT NULL,
    directive   TEXT NOT NULL,
    blocked     TEXT NOT NULL,
    document    TEXT NOT NULL,
    disposition TEXT NOT NULL,
    count       INTEGER NOT NULL,
    first_seen  INTEGER NOT NULL, -- Unix milliseconds
    last_seen   INTEGER NOT NULL,
    PRIMARY KEY (app, directive, blocked, document, disposition)
);
