//! The conformance suite every backend runs against itself.
//!
//! One module per storage trait (`access`, `users`, `audit`, `hosts`, `jobs`, `tasks`, `files`,
//! `uploads`). Each
//! case is a `pub async fn(&dyn Store)` written once here; a backend stamps the whole suite into
//! its `tests/conformance.rs` with [`conformance_tests!`](crate::conformance_tests), which
//! generates one `#[tokio::test]` per case, each on a fresh database:
//!
//! ```text
//! // Returns the store and a guard that keeps its database alive until the test ends.
//! async fn make_store() -> (SqliteStore, tempfile::TempDir) { ... }
//! shoal_store::conformance_tests!(make_store);
//! ```
//!
//! The cases panic (they are tests); they use fixed timestamps, never the clock. The suite and
//! its helpers are compiled only with the `conformance` feature, which backends (and the
//! server's tests) enable in `[dev-dependencies]`.

mod access;
mod audit;
mod files;
mod hosts;
mod jobs;
mod tasks;
mod uploads;
mod users;

pub use access::*;
pub use audit::*;
pub use files::*;
pub use hosts::*;
pub use jobs::*;
pub use tasks::*;
pub use uploads::*;
pub use users::*;

use crate::prelude::*;
use crate::{
    CreatedJob, Host, LogChunk, NewHost, NewJob, NewStep, Page, TaskBatch, TaskFilter, TaskResult,
    TaskRow, TaskUpdate,
};
use shoal_types::{
    DEFAULT_SCOPE, HostFacts, HostId, HostTaskStatus, JobType, Labels, LaunchMode, RunStatus,
    ScopeId, StepId, StepType, TaskKey,
};

/// Generates one `#[tokio::test]` per conformance case, in one module per storage trait
/// (`access::`, `users::`, `audit::`, `hosts::`, `jobs::`, `tasks::`, `files::`, `uploads::`). `$make` names an async
/// fn returning `(store, guard)`: a fresh store, and anything that must live as long as the test
/// (a temp dir, or `()`).
///
/// Every `pub async fn case(store: &dyn Store)` under `src/conformance/` must be listed here;
/// `tests/conformance_list.rs` fails when one is not.
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@domain $make; access:
            backend_is_named,
            scopes_default_and_create,
            tokens_find_list_revoke,
            tokens_of_users_touch_and_revoke,
        );
        $crate::conformance_tests!(@domain $make; users:
            admin_user_exists_after_migration,
            users_create_find_list_update,
            bindings_upsert_list_delete,
            oidc_replacement_keeps_manual_bindings,
            sessions_create_touch_revoke_prune,
            credentials_come_with_their_account_and_roles,
        );
        $crate::conformance_tests!(@domain $make; audit:
            audit_append_and_filter,
            audit_pages_with_cursor,
            audit_prune_is_bounded,
        );
        $crate::conformance_tests!(@domain $make; hosts:
            hosts_create_and_auth,
            host_connected_bumps_generation,
            set_agent_status_is_fenced_by_generation,
            labels_overlay_user_over_agent,
            hosts_filter_and_page,
            hosts_by_ip_and_ids,
            hosts_filter_by_scope_ids,
            groups_crud,
        );
        $crate::conformance_tests!(@domain $make; jobs:
            create_job_and_read_back,
            create_job_with_10000_tasks,
            list_jobs_filters_and_pages,
            transitions_are_compare_and_set,
            claim_and_renew_leases,
            start_attempt_checks_expected_attempt,
            stalled_jobs_have_no_live_step,
            list_jobs_by_scope_ids,
        );
        $crate::conformance_tests!(@domain $make; tasks:
            apply_task_batch_is_idempotent,
            overlapping_chunks_keep_bytes_once,
            finished_keeps_first_result,
            started_moves_waiting_only,
            binary_logs_round_trip,
            read_log_slices,
            result_groups_and_counts,
            list_tasks_filters_and_pages,
            open_tasks_lists_non_terminal,
        );
        $crate::conformance_tests!(@domain $make; files:
            file_tasks_insert_list_and_conflict,
            file_progress_is_idempotent_and_monotonic,
            file_tasks_in_bulk_and_counts,
        );
        $crate::conformance_tests!(@domain $make; uploads:
            uploads_put_is_idempotent,
            uploads_expire_unless_a_live_step_uses_them,
        );
    };
    (@domain $make:path; $domain:ident: $($case:ident),* $(,)?) => {
        mod $domain {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let (store, _guard) = $make().await;
                    $crate::conformance::$case(&store).await;
                }
            )*
        }
    };
}

/// Host facts with a hostname and addresses.
pub fn facts(hostname: &str, ips: &[&str]) -> HostFacts {
    HostFacts {
        hostname: hostname.to_string(),
        ips: ips.iter().map(|s| s.to_string()).collect(),
        os: "linux".to_string(),
        os_version: "6.1".to_string(),
        arch: "x86_64".to_string(),
        agent_version: "0.1.0".to_string(),
        containment: None,
    }
}

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Enrolls a host in `scope_id` with the agent id `agent-<hostname>`.
pub async fn add_host(
    store: &dyn Store,
    scope_id: ScopeId,
    hostname: &str,
    ips: &[&str],
    agent_labels: Labels,
) -> Host {
    store
        .create_host(NewHost {
            scope_id,
            agent_id: format!("agent-{hostname}"),
            secret_hash: format!("hash-{hostname}"),
            facts: facts(hostname, ips),
            agent_labels,
            now: 1_000,
        })
        .await
        .expect("create_host")
}

/// A waiting task on each host given.
pub fn waiting(hosts: &[HostId]) -> Vec<(HostId, HostTaskStatus)> {
    hosts
        .iter()
        .map(|h| (*h, HostTaskStatus::Waiting))
        .collect()
}

/// A running script step over `tasks`, owned by nobody.
pub fn script_step(name: &str, tasks: Vec<(HostId, HostTaskStatus)>) -> NewStep {
    NewStep {
        name: name.to_string(),
        step_type: StepType::Script,
        spec: serde_json::json!({"language": "shell", "content": "echo hi", "timeout_secs": 60}),
        status: RunStatus::Running,
        owner: None,
        lease_until: None,
        tasks,
    }
}

pub fn new_job(name: &str, steps: Vec<NewStep>) -> NewJob {
    NewJob {
        scope_id: DEFAULT_SCOPE,
        name: name.to_string(),
        job_type: JobType::Script,
        launch_mode: LaunchMode::Api,
        operator: "alice".to_string(),
        start: true,
        now: 10_000,
        steps,
    }
}

/// Creates a one-step running job with a waiting task on each host given.
pub async fn one_step_job(store: &dyn Store, hosts: &[HostId]) -> (CreatedJob, StepId) {
    let created = store
        .create_job(new_job("job", vec![script_step("step", waiting(hosts))]))
        .await
        .expect("create_job");
    let step_id = created.step_ids[0];
    (created, step_id)
}

pub fn key(step_id: StepId, attempt: u32, host_id: HostId) -> TaskKey {
    TaskKey {
        step_id,
        attempt,
        host_id,
    }
}

pub fn chunk(key: TaskKey, offset: u64, data: &[u8]) -> LogChunk {
    LogChunk {
        key,
        offset,
        stream: 0,
        data: data.to_vec(),
    }
}

pub async fn apply(store: &dyn Store, batch: &TaskBatch) {
    store
        .apply_task_batch(batch)
        .await
        .expect("apply_task_batch");
}

pub fn finished(result: TaskResult) -> TaskUpdate {
    TaskUpdate::Finished(result)
}

pub fn result(key: TaskKey, status: HostTaskStatus, exit_code: Option<i32>) -> TaskResult {
    TaskResult {
        key,
        status,
        exit_code,
        started_at: Some(20_000),
        ended_at: 21_000,
        truncated: false,
        digest: None,
        tag: None,
        error: None,
    }
}

/// The whole stored log of a task.
pub async fn read_all(store: &dyn Store, key: TaskKey) -> Vec<u8> {
    let slice = store
        .read_log(key, 0, u64::MAX / 2)
        .await
        .expect("read_log");
    assert_eq!(slice.data.len() as u64, slice.total, "whole log of {key}");
    slice.data
}

/// Every task row of one attempt of a step, by host id.
pub async fn all_tasks(store: &dyn Store, step_id: StepId, attempt: u32) -> Vec<TaskRow> {
    store
        .list_tasks(&task_filter(step_id, attempt), Page::first(1000))
        .await
        .expect("list_tasks")
        .data
}

pub fn task_filter(step_id: StepId, attempt: u32) -> TaskFilter {
    TaskFilter {
        host_id: None,
        step_id,
        attempt,
        statuses: Vec::new(),
        ip: None,
        keyword: None,
        group: None,
    }
}
