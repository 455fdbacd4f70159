//! One decoder per record: builds a `shoal_store` record from a row holding the columns the
//! backends select for it (same names in both schemas).

use crate::Cols;
use shoal_store::backend::overlay_labels;
use shoal_store::{
    AgentAuth, Error, FileStatus, FileTaskKey, FileTaskRow, Group, GroupKey, Host, HostLabelRow,
    Job, OpenTask, Result, ResultGroup, Scope, Step, TaskRow, TokenKind, TokenRecord, Upload,
};
use shoal_store::{AuditEvent, Authenticated, BindingSource, RoleBinding, SessionRecord, User};
use shoal_types::access::{Role, UserKind};
use shoal_types::{
    AgentStatus, HostTaskStatus, JobType, Labels, LaunchMode, RunStatus, StepType, TaskKey,
};

/// A code column as one of the bk-job code enums.
fn coded<T>(row: &impl Cols, column: &str, from_code: fn(i32) -> Option<T>) -> Result<T> {
    let code = row.code(column)?;
    from_code(code).ok_or_else(|| Error::Corrupt(format!("column {column}: unknown code {code}")))
}

/// Columns `id, name, created_at`.
pub fn scope(row: &impl Cols) -> Result<Scope> {
    Ok(Scope {
        id: row.i64("id")?,
        name: row.text("name")?,
        created_at: row.i64("created_at")?,
    })
}

/// Columns [`TOKEN_COLUMNS`].
pub fn token(row: &impl Cols) -> Result<TokenRecord> {
    let kind = row.text("kind")?;
    Ok(TokenRecord {
        id: row.i64("id")?,
        name: row.text("name")?,
        kind: TokenKind::parse(&kind)
            .ok_or_else(|| Error::Corrupt(format!("token kind {kind:?}")))?,
        secret_hash: row.text("secret_hash")?,
        scope_id: row.i64("scope_id")?,
        created_by: row.text("created_by")?,
        created_at: row.i64("created_at")?,
        expires_at: row.opt_i64("expires_at")?,
        revoked_at: row.opt_i64("revoked_at")?,
        user_id: row.opt_i64("user_id")?,
        read_only: row.bool("read_only")?,
        only_scope_id: row.opt_i64("only_scope_id")?,
        last_used_at: row.opt_i64("last_used_at")?,
    })
}

pub const TOKEN_COLUMNS: &str = "id, name, kind, secret_hash, scope_id, created_by, created_at, \
     expires_at, revoked_at, user_id, read_only, only_scope_id, last_used_at";

pub const USER_COLUMNS: &str = "id, name, display_name, email, kind, password_hash, is_admin, \
     enabled, source, created_at, updated_at";

/// Columns [`USER_COLUMNS`].
pub fn user(row: &impl Cols) -> Result<User> {
    user_as(row, "")
}

/// Columns [`USER_COLUMNS`], each named with `prefix` first.
fn user_as(row: &impl Cols, prefix: &str) -> Result<User> {
    let c = |name: &str| format!("{prefix}{name}");
    let kind = row.text(&c("kind"))?;
    Ok(User {
        id: row.i64(&c("id"))?,
        name: row.text(&c("name"))?,
        display_name: row.text(&c("display_name"))?,
        email: row.text(&c("email"))?,
        kind: UserKind::parse(&kind)
            .ok_or_else(|| Error::Corrupt(format!("account kind {kind:?}")))?,
        password_hash: row.opt_text(&c("password_hash"))?,
        is_admin: row.bool(&c("is_admin"))?,
        enabled: row.bool(&c("enabled"))?,
        source: row.text(&c("source"))?,
        created_at: row.i64(&c("created_at"))?,
        updated_at: row.i64(&c("updated_at"))?,
    })
}

pub const BINDING_COLUMNS: &str =
    "id, user_id, scope_id, role, host_selector, source, created_by, created_at";

/// Columns [`BINDING_COLUMNS`].
pub fn binding(row: &impl Cols) -> Result<RoleBinding> {
    binding_as(row, "")
}

/// Columns [`BINDING_COLUMNS`], each named with `prefix` first.
fn binding_as(row: &impl Cols, prefix: &str) -> Result<RoleBinding> {
    let c = |name: &str| format!("{prefix}{name}");
    let role = row.text(&c("role"))?;
    let source = row.text(&c("source"))?;
    Ok(RoleBinding {
        id: row.i64(&c("id"))?,
        user_id: row.i64(&c("user_id"))?,
        scope_id: row.i64(&c("scope_id"))?,
        role: Role::parse(&role).ok_or_else(|| Error::Corrupt(format!("role {role:?}")))?,
        host_selector: row.text(&c("host_selector"))?,
        source: BindingSource::parse(&source)
            .ok_or_else(|| Error::Corrupt(format!("binding source {source:?}")))?,
        created_by: row.text(&c("created_by"))?,
        created_at: row.i64(&c("created_at"))?,
    })
}

pub const SESSION_COLUMNS: &str =
    "id_hash, user_id, created_at, last_seen_at, expires_at, revoked_at";

/// Columns [`SESSION_COLUMNS`].
pub fn session(row: &impl Cols) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id_hash: row.text("id_hash")?,
        user_id: row.i64("user_id")?,
        created_at: row.i64("created_at")?,
        last_seen_at: row.i64("last_seen_at")?,
        expires_at: row.i64("expires_at")?,
        revoked_at: row.opt_i64("revoked_at")?,
    })
}

pub const AUDIT_COLUMNS: &str = "id, at, actor, actor_kind, user_id, token_id, address, origin, \
     scope_id, action, resource, outcome, detail";

/// Columns [`AUDIT_COLUMNS`].
pub fn audit_event(row: &impl Cols) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: row.i64("id")?,
        at: row.i64("at")?,
        actor: row.text("actor")?,
        actor_kind: row.text("actor_kind")?,
        user_id: row.opt_i64("user_id")?,
        token_id: row.opt_i64("token_id")?,
        address: row.text("address")?,
        origin: row.text("origin")?,
        scope_id: row.opt_i64("scope_id")?,
        action: row.text("action")?,
        resource: row.text("resource")?,
        outcome: row.text("outcome")?,
        detail: row.text("detail")?,
    })
}

/// Columns `id, scope_id, name, selector, created_at, updated_at`.
pub fn group(row: &impl Cols) -> Result<Group> {
    Ok(Group {
        id: row.i64("id")?,
        scope_id: row.i64("scope_id")?,
        name: row.text("name")?,
        selector: row.text("selector")?,
        created_at: row.i64("created_at")?,
        updated_at: row.i64("updated_at")?,
    })
}

/// Columns `id, scope_id, name, job_type, launch_mode, operator, status, created_at,
/// started_at, ended_at, host_count`.
pub fn job(row: &impl Cols) -> Result<Job> {
    Ok(Job {
        id: row.i64("id")?,
        scope_id: row.i64("scope_id")?,
        name: row.text("name")?,
        job_type: coded(row, "job_type", JobType::from_code)?,
        launch_mode: coded(row, "launch_mode", LaunchMode::from_code)?,
        operator: row.text("operator")?,
        status: coded(row, "status", RunStatus::from_code)?,
        created_at: row.i64("created_at")?,
        started_at: row.opt_i64("started_at")?,
        ended_at: row.opt_i64("ended_at")?,
        host_count: row.u64("host_count")?,
    })
}

/// Columns `id, job_id, ordinal, name, step_type, spec, status, attempt, created_at,
/// started_at, ended_at, owner, lease_until, host_count`.
pub fn step(row: &impl Cols) -> Result<Step> {
    let spec = row.json("spec")?;
    Ok(Step {
        id: row.i64("id")?,
        job_id: row.i64("job_id")?,
        ordinal: row.u32("ordinal")?,
        name: row.text("name")?,
        step_type: coded(row, "step_type", StepType::from_code)?,
        spec,
        status: coded(row, "status", RunStatus::from_code)?,
        attempt: row.u32("attempt")?,
        created_at: row.i64("created_at")?,
        started_at: row.opt_i64("started_at")?,
        ended_at: row.opt_i64("ended_at")?,
        owner: row.opt_text("owner")?,
        lease_until: row.opt_i64("lease_until")?,
        host_count: row.u64("host_count")?,
    })
}

/// Columns `id, scope_id, agent_id, hostname, ips, os, os_version, arch, agent_version,
/// agent_labels, user_labels, status, generation, last_seen, created_at, revoked_at`.
pub fn host(row: &impl Cols) -> Result<Host> {
    let ips = row.text_list("ips")?;
    let agent_labels: Labels = row.json("agent_labels")?;
    let user_labels: Labels = row.json("user_labels")?;
    Ok(Host {
        id: row.i64("id")?,
        scope_id: row.i64("scope_id")?,
        agent_id: row.text("agent_id")?,
        hostname: row.text("hostname")?,
        ip: ips.first().cloned().unwrap_or_default(),
        ips,
        os: row.text("os")?,
        os_version: row.text("os_version")?,
        arch: row.text("arch")?,
        agent_version: row.text("agent_version")?,
        containment: row.opt_text("containment")?,
        labels: overlay_labels(&agent_labels, &user_labels),
        agent_labels,
        user_labels,
        status: coded(row, "status", AgentStatus::from_code)?,
        generation: row.i64("generation")?,
        last_seen: row.opt_i64("last_seen")?,
        created_at: row.i64("created_at")?,
        revoked_at: row.opt_i64("revoked_at")?,
    })
}

/// Columns `id, agent_labels, user_labels, status`.
pub fn host_label_row(row: &impl Cols) -> Result<HostLabelRow> {
    let agent: Labels = row.json("agent_labels")?;
    let user: Labels = row.json("user_labels")?;
    Ok(HostLabelRow {
        id: row.i64("id")?,
        labels: overlay_labels(&agent, &user),
        status: coded(row, "status", AgentStatus::from_code)?,
    })
}

/// Columns `id, secret_hash, revoked_at` of a host.
pub fn agent_auth(row: &impl Cols) -> Result<AgentAuth> {
    let revoked_at = row.opt_i64("revoked_at")?;
    Ok(AgentAuth {
        host_id: row.i64("id")?,
        secret_hash: row.text("secret_hash")?,
        revoked: revoked_at.is_some(),
    })
}

/// Columns `status, n`: hosts per agent status.
pub fn agent_status_count(row: &impl Cols) -> Result<(AgentStatus, u64)> {
    Ok((coded(row, "status", AgentStatus::from_code)?, row.u64("n")?))
}

/// Columns `step_id, attempt, host_id`.
pub fn task_key(row: &impl Cols) -> Result<TaskKey> {
    Ok(TaskKey {
        step_id: row.i64("step_id")?,
        attempt: row.u32("attempt")?,
        host_id: row.i64("host_id")?,
    })
}

/// Columns `step_id, attempt, host_id, log_len`.
pub fn task_log_len(row: &impl Cols) -> Result<(TaskKey, u64)> {
    Ok((task_key(row)?, row.u64("log_len")?))
}

/// Columns `step_id, attempt, host_id, job_id, status`.
pub fn open_task(row: &impl Cols) -> Result<OpenTask> {
    Ok(OpenTask {
        key: task_key(row)?,
        job_id: row.i64("job_id")?,
        status: coded(row, "status", HostTaskStatus::from_code)?,
    })
}

/// Columns `status, n`: tasks per status.
pub fn task_status_count(row: &impl Cols) -> Result<(HostTaskStatus, u64)> {
    Ok((
        coded(row, "status", HostTaskStatus::from_code)?,
        row.u64("n")?,
    ))
}

/// Columns `step_id, attempt, host_id, ip, hostname, status, exit_code, tag, digest,
/// started_at, ended_at, log_len, truncated, error`.
pub fn task_row(row: &impl Cols) -> Result<TaskRow> {
    Ok(TaskRow {
        step_id: row.i64("step_id")?,
        attempt: row.u32("attempt")?,
        host_id: row.i64("host_id")?,
        ip: row.text("ip")?,
        hostname: row.text("hostname")?,
        status: coded(row, "status", HostTaskStatus::from_code)?,
        exit_code: row.opt_i32("exit_code")?,
        tag: row.opt_text("tag")?,
        digest: row.opt_text("digest")?,
        started_at: row.opt_i64("started_at")?,
        ended_at: row.opt_i64("ended_at")?,
        log_len: row.u64("log_len")?,
        truncated: row.bool("truncated")?,
        error: row.opt_text("error")?,
    })
}

/// Columns `status, exit_code, tag, digest, n, sample`.
pub fn result_group(row: &impl Cols) -> Result<ResultGroup> {
    Ok(ResultGroup {
        key: GroupKey {
            status: coded(row, "status", HostTaskStatus::from_code)?,
            exit_code: row.opt_i32("exit_code")?,
            tag: row.opt_text("tag")?,
            digest: row.opt_text("digest")?,
        },
        host_count: row.u64("n")?,
        sample_host_id: row.i64("sample")?,
    })
}

/// Columns `byte_offset, data` of a log chunk.
pub fn log_piece(row: &impl Cols) -> Result<(u64, Vec<u8>)> {
    Ok((row.u64("byte_offset")?, row.bytes("data")?))
}

/// Columns `step_id, attempt, mode, host_id, source_host_id, source_path, dest_path, ip,
/// hostname, source_ip, source_hostname, size, bytes_done, speed, status, error, started_at,
/// ended_at`.
pub fn file_task_row(row: &impl Cols) -> Result<FileTaskRow> {
    let mode = row.code("mode")?;
    Ok(FileTaskRow {
        key: FileTaskKey {
            step_id: row.i64("step_id")?,
            attempt: row.u32("attempt")?,
            mode: u8::try_from(mode).map_err(|_| Error::Corrupt(format!("column mode: {mode}")))?,
            host_id: row.i64("host_id")?,
            source_host_id: row.opt_i64("source_host_id")?,
            source_path: row.text("source_path")?,
            dest_path: row.text("dest_path")?,
        },
        ip: row.text("ip")?,
        hostname: row.text("hostname")?,
        source_ip: row.opt_text("source_ip")?,
        source_hostname: row.opt_text("source_hostname")?,
        size: row.u64("size")?,
        bytes_done: row.u64("bytes_done")?,
        speed: row.u64("speed")?,
        status: coded(row, "status", FileStatus::from_code)?,
        error: row.opt_text("error")?,
        started_at: row.opt_i64("started_at")?,
        ended_at: row.opt_i64("ended_at")?,
    })
}

/// Columns `status, n`: file transfers per status.
pub fn file_status_count(row: &impl Cols) -> Result<(FileStatus, u64)> {
    Ok((coded(row, "status", FileStatus::from_code)?, row.u64("n")?))
}

/// Columns `id, name, size, chunks, created_by, created_at, last_used_at` of an upload.
pub fn upload(row: &impl Cols) -> Result<Upload> {
    Ok(Upload {
        id: row.text("id")?,
        name: row.text("name")?,
        size: row.u64("size")?,
        chunks: row.json("chunks")?,
        created_by: row.text("created_by")?,
        created_at: row.i64("created_at")?,
        last_used_at: row.i64("last_used_at")?,
    })
}

/// The user and binding columns of an authentication query: [`USER_COLUMNS`] of `u` named
/// `u_*` and [`BINDING_COLUMNS`] of `b` named `b_*` (NULL when the account has no binding).
pub const ACCOUNT_COLUMNS: &str = "u.id AS u_id, u.name AS u_name, u.display_name AS \
     u_display_name, u.email AS u_email, u.kind AS u_kind, u.password_hash AS u_password_hash, \
     u.is_admin AS u_is_admin, u.enabled AS u_enabled, u.source AS u_source, u.created_at AS \
     u_created_at, u.updated_at AS u_updated_at, b.id AS b_id, b.user_id AS b_user_id, \
     b.scope_id AS b_scope_id, b.role AS b_role, b.host_selector AS b_host_selector, b.source AS \
     b_source, b.created_by AS b_created_by, b.created_at AS b_created_at";

/// A credential, its account and the account's bindings from the rows of one authentication
/// query (one row per binding, or one row without a binding); `None` for no rows.
pub fn authenticated<R: Cols, T>(
    rows: &[R],
    credential: impl Fn(&R) -> Result<T>,
) -> Result<Option<Authenticated<T>>> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut bindings = Vec::new();
    for row in rows {
        if row.opt_i64("b_id")?.is_some() {
            bindings.push(binding_as(row, "b_")?);
        }
    }
    Ok(Some(Authenticated {
        credential: credential(first)?,
        user: user_as(first, "u_")?,
        bindings,
    }))
}
