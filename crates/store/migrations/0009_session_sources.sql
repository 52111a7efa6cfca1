-- Sessions signed in through an OpenID Connect provider: where each came
-- from (`system` or `oidc:NAME`) and what the provider said of the person
-- (JSON: email, groups). A changed admin password ends only `system` ones.
ALTER TABLE sessions ADD COLUMN source TEXT NOT NULL DEFAULT 'system';
ALTER TABLE sessions ADD COLUMN claims TEXT NOT NULL DEFAULT '{}';
