-- File distribution on SQLite: per-file transfer rows (bk-job file logs) and uploads.
-- Keep the shape in step with the PostgreSQL migration.

-- One row per (step, attempt, mode, host, source host, source path, dest path). mode 0 is the
-- serving side (host_id = the source host), 1 the receiving side (host_id = the target).
-- source_host_id is NULL for uploaded and inline sources; the unique key counts NULL as 0
-- (host ids start at 1) so that such rows are unique too. status: 1 waiting, 2 uploading,
-- 3 downloading, 4 success, 5 failed. host ids are not foreign keys, as in tasks.
CREATE TABLE file_tasks (
    id             INTEGER PRIMARY KEY,
    step_id        INTEGER NOT NULL REFERENCES steps (id),
    attempt        INTEGER NOT NULL,
    mode           INTEGER NOT NULL CHECK (mode IN (0, 1)),
    host_id        INTEGER NOT NULL,
    source_host_id INTEGER,
    source_path    TEXT    NOT NULL,
    dest_path      TEXT    NOT NULL,
    size           INTEGER NOT NULL,
    bytes_done     INTEGER NOT NULL DEFAULT 0,
    speed          INTEGER NOT NULL DEFAULT 0,
    status         INTEGER NOT NULL CHECK (status BETWEEN 1 AND 5),
    error          TEXT,
    started_at     INTEGER,
    ended_at       INTEGER
);
CREATE UNIQUE INDEX file_tasks_key ON file_tasks
    (step_id, attempt, mode, host_id, COALESCE(source_host_id, 0), source_path, dest_path);
CREATE INDEX file_tasks_status ON file_tasks (step_id, attempt, mode, status);

-- Files uploaded through the API, content-addressed: id is the hex BLAKE3 of the content,
-- chunks a JSON list of the hex BLAKE3 of each chunk.
CREATE TABLE uploads (
    id           TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    chunks       TEXT    NOT NULL,
    created_by   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX uploads_last_used ON uploads (last_used_at);

-- Steps that use an upload; an upload a live step uses never expires.
CREATE TABLE upload_refs (
    upload_id TEXT    NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    step_id   INTEGER NOT NULL REFERENCES steps (id),
    PRIMARY KEY (upload_id, step_id)
) WITHOUT ROWID;
CREATE INDEX upload_refs_step ON upload_refs (step_id);
