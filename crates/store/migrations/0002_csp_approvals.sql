-- Sources an app's manifest requested that an admin approved through the
-- admin API (`moat csp approve`). A row applies while the manifest still
-- requests the same directive and source.
CREATE TABLE csp_approvals (
    app         TEXT NOT NULL,
    directive   TEXT NOT NULL,
    source      TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    approved_at INTEGER NOT NULL, -- Unix milliseconds
    PRIMARY KEY (app, directive, source)
);
