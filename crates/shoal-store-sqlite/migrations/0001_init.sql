-- Shoal's schema on SQLite. Timestamps are Unix milliseconds, statuses are bk-job codes,
-- labels and IP lists are JSON text. Keep the shape in step with the PostgreSQL migration.

CREATE TABLE scopes (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
INSERT INTO scopes (id, name, created_at) VALUES (1, 'default', 0);

CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    secret_hash TEXT    NOT NULL UNIQUE,
    scope_id    INTEGER NOT NULL REFERENCES scopes (id),
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
);

CREATE TABLE hosts (
    id            INTEGER PRIMARY KEY,
    scope_id      INTEGER NOT NULL REFERENCES scopes (id),
    agent_id      TEXT    NOT NULL UNIQUE,
    secret_hash   TEXT    NOT NULL,
    hostname      TEXT    NOT NULL,
    ip            TEXT    NOT NULL,
    ips           TEXT    NOT NULL,
    os            TEXT    NOT NULL,
    os_version    TEXT    NOT NULL,
    arch          TEXT    NOT NULL,
    agent_version TEXT    NOT NULL,
    agent_labels  TEXT    NOT NULL,
    user_labels   TEXT    NOT NULL,
    status        INTEGER NOT NULL,
    status_at     INTEGER NOT NULL,
    generation    INTEGER NOT NULL DEFAULT 0,
    last_seen     INTEGER,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX hosts_scope ON hosts (scope_id, id);

-- One row per address of a host, for exact and substring IP lookups.
CREATE TABLE host_ips (
    host_id INTEGER NOT NULL REFERENCES hosts (id),
    ip      TEXT    NOT NULL,
    PRIMARY KEY (host_id, ip)
) WITHOUT ROWID;
CREATE INDEX host_ips_ip ON host_ips (ip);

CREATE TABLE groups (
    id          INTEGER PRIMARY KEY,
    scope_id    INTEGER NOT NULL REFERENCES scopes (id),
    name        TEXT    NOT NULL,
    selector    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (scope_id, name)
);

CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    scope_id    INTEGER NOT NULL REFERENCES scopes (id),
    name        TEXT    NOT NULL,
    job_type    INTEGER NOT NULL,
    launch_mode INTEGER NOT NULL,
    operator    TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    ended_at    INTEGER,
    host_count  INTEGER NOT NULL
);
CREATE INDEX jobs_scope_created ON jobs (scope_id, created_at);

CREATE TABLE steps (
    id          INTEGER PRIMARY KEY,
    job_id      INTEGER NOT NULL REFERENCES jobs (id),
    ordinal     INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    step_type   INTEGER NOT NULL,
    spec        TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    attempt     INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    ended_at    INTEGER,
    owner       TEXT,
    lease_until INTEGER,
    host_count  INTEGER NOT NULL,
    UNIQUE (job_id, ordinal)
);
-- Claims look only at running (2) and stopping (10) steps.
CREATE INDEX steps_live ON steps (status) WHERE status IN (2, 10);

-- One row per (step, attempt, host). host_id is not a foreign key: task rows are written in
-- bulk (10,000 per job) and hosts are never deleted.
CREATE TABLE tasks (
    step_id     INTEGER NOT NULL REFERENCES steps (id),
    attempt     INTEGER NOT NULL,
    host_id     INTEGER NOT NULL,
    status      INTEGER NOT NULL,
    exit_code   INTEGER,
    tag         TEXT,
    digest      TEXT,
    started_at  INTEGER,
    ended_at    INTEGER,
    log_len     INTEGER NOT NULL DEFAULT 0,
    truncated   INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    PRIMARY KEY (step_id, attempt, host_id)
) WITHOUT ROWID;
CREATE INDEX tasks_status ON tasks (step_id, attempt, status);
CREATE INDEX tasks_host ON tasks (host_id);

-- Append-only log chunks; together the chunks of a task tile [0, log_len) exactly.
CREATE TABLE log_chunks (
    step_id     INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    host_id     INTEGER NOT NULL,
    byte_offset INTEGER NOT NULL,
    stream      INTEGER NOT NULL,
    data        BLOB    NOT NULL,
    PRIMARY KEY (step_id, attempt, host_id, byte_offset)
);
