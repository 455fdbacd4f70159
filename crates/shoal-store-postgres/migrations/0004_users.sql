-- Users, service accounts, role bindings, console sessions and the audit trail. Keep the shape
-- in step with the other backend's migration.

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    password_hash TEXT,
    is_admin      BOOLEAN NOT NULL,
    enabled       BOOLEAN NOT NULL,
    source        TEXT    NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
-- The built-in platform admin. The server sets its password at first start (admin.password in
-- the data directory); the bootstrap API token becomes its token.
INSERT INTO users (id, name, display_name, email, kind, password_hash, is_admin, enabled, source,
                   created_at, updated_at)
VALUES (1, 'admin', 'Administrator', '', 'user', NULL, TRUE, TRUE, 'local', 0, 0);
SELECT setval(pg_get_serial_sequence('users', 'id'), 1);

ALTER TABLE tokens ADD COLUMN user_id BIGINT REFERENCES users (id);
ALTER TABLE tokens ADD COLUMN read_only BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE tokens ADD COLUMN only_scope_id BIGINT REFERENCES scopes (id);
ALTER TABLE tokens ADD COLUMN last_used_at BIGINT;
UPDATE tokens SET user_id = 1 WHERE kind = 'api';
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE role_bindings (
    id            BIGSERIAL PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id),
    scope_id      BIGINT NOT NULL REFERENCES scopes (id),
    role          TEXT    NOT NULL,
    host_selector TEXT    NOT NULL,
    source        TEXT    NOT NULL,
    created_by    TEXT    NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (user_id, scope_id, source)
);
CREATE INDEX role_bindings_scope ON role_bindings (scope_id);

CREATE TABLE sessions (
    id_hash       TEXT    PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id),
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE audit_events (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT    NOT NULL,
    actor_kind  TEXT    NOT NULL,
    user_id     BIGINT,
    token_id    BIGINT,
    address     TEXT    NOT NULL,
    origin      TEXT    NOT NULL,
    scope_id    BIGINT,
    action      TEXT    NOT NULL,
    resource    TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    detail      TEXT    NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_actor ON audit_events (actor, id);
CREATE INDEX audit_events_action ON audit_events (action, resource, at);
CREATE INDEX audit_events_scope ON audit_events (scope_id, id);
