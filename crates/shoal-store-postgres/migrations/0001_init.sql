-- Shoal's schema on PostgreSQL. Timestamps are Unix milliseconds, statuses are bk-job codes,
-- labels are JSON text. Keep the shape in step with the SQLite migration.

CREATE TABLE scopes (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT   NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);
INSERT INTO scopes (id, name, created_at) VALUES (1, 'default', 0);
SELECT setval(pg_get_serial_sequence('scopes', 'id'), 1);

CREATE TABLE tokens (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    secret_hash TEXT   NOT NULL UNIQUE,
    scope_id    BIGINT NOT NULL REFERENCES scopes (id),
    created_by  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);

CREATE TABLE hosts (
    id            BIGSERIAL PRIMARY KEY,
    scope_id      BIGINT  NOT NULL REFERENCES scopes (id),
    agent_id      TEXT    NOT NULL UNIQUE,
    secret_hash   TEXT    NOT NULL,
    hostname      TEXT    NOT NULL,
    ip            TEXT    NOT NULL,
    ips           TEXT[]  NOT NULL,
    os            TEXT    NOT NULL,
    os_version    TEXT    NOT NULL,
    arch          TEXT    NOT NULL,
    agent_version TEXT    NOT NULL,
    agent_labels  TEXT    NOT NULL,
    user_labels   TEXT    NOT NULL,
    status        INTEGER NOT NULL,
    status_at     BIGINT  NOT NULL,
    generation    BIGINT  NOT NULL DEFAULT 0,
    last_seen     BIGINT,
    created_at    BIGINT  NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX hosts_scope ON hosts (scope_id, id);
CREATE INDEX hosts_ips ON hosts USING GIN (ips);

CREATE TABLE groups (
    id          BIGSERIAL PRIMARY KEY,
    scope_id    BIGINT NOT NULL REFERENCES scopes (id),
    name        TEXT   NOT NULL,
    selector    TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (scope_id, name)
);

CREATE TABLE jobs (
    id          BIGSERIAL PRIMARY KEY,
    scope_id    BIGINT  NOT NULL REFERENCES scopes (id),
    name        TEXT    NOT NULL,
    job_type    INTEGER NOT NULL,
    launch_mode INTEGER NOT NULL,
    operator    TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    created_at  BIGINT  NOT NULL,
    started_at  BIGINT,
    ended_at    BIGINT,
    host_count  BIGINT  NOT NULL
);
CREATE INDEX jobs_scope_created ON jobs (scope_id, created_at);

CREATE TABLE steps (
    id          BIGSERIAL PRIMARY KEY,
    job_id      BIGINT  NOT NULL REFERENCES jobs (id),
    ordinal     INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    step_type   INTEGER NOT NULL,
    spec        TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    attempt     INTEGER NOT NULL DEFAULT 0,
    created_at  BIGINT  NOT NULL,
    started_at  BIGINT,
    ended_at    BIGINT,
    owner       TEXT,
    lease_until BIGINT,
    host_count  BIGINT  NOT NULL,
    UNIQUE (job_id, ordinal)
);
-- Claims look only at running (2) and stopping (10) steps.
CREATE INDEX steps_live ON steps (status) WHERE status IN (2, 10);

-- One row per (step, attempt, host). host_id is not a foreign key: task rows are written in
-- bulk (10,000 per job) and hosts are never deleted.
CREATE TABLE tasks (
    step_id     BIGINT  NOT NULL REFERENCES steps (id),
    attempt     INTEGER NOT NULL,
    host_id     BIGINT  NOT NULL,
    status      INTEGER NOT NULL,
    exit_code   INTEGER,
    tag         TEXT,
    digest      TEXT,
    started_at  BIGINT,
    ended_at    BIGINT,
    log_len     BIGINT  NOT NULL DEFAULT 0,
    truncated   BOOLEAN NOT NULL DEFAULT FALSE,
    error       TEXT,
    PRIMARY KEY (step_id, attempt, host_id)
);
CREATE INDEX tasks_status ON tasks (step_id, attempt, status);
CREATE INDEX tasks_host ON tasks (host_id);

-- Append-only log chunks; together the chunks of a task tile [0, log_len) exactly.
CREATE TABLE log_chunks (
    step_id     BIGINT   NOT NULL,
    attempt     INTEGER  NOT NULL,
    host_id     BIGINT   NOT NULL,
    byte_offset BIGINT   NOT NULL,
    stream      SMALLINT NOT NULL,
    data        BYTEA    NOT NULL,
    PRIMARY KEY (step_id, attempt, host_id, byte_offset)
);
