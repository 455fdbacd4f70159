//! The API edge: storage records become the API's views (`shoal_types::api`), here and only
//! here. What a view leaves out (a step's lease, environment values, a token's hash) is left out
//! by these conversions, so no handler can send a record as it is stored.

use shoal_store as store;
use shoal_types::api;
use shoal_types::files::FileSpec;
use shoal_types::{ScriptSpec, StepType};

/// A record's API view.
pub trait IntoApi {
    type Api;
    fn into_api(self) -> Self::Api;
}

impl<T: IntoApi> IntoApi for Vec<T> {
    type Api = Vec<T::Api>;
    fn into_api(self) -> Vec<T::Api> {
        self.into_iter().map(IntoApi::into_api).collect()
    }
}

impl<T: IntoApi> IntoApi for store::Paged<T> {
    type Api = api::Paged<T::Api>;
    fn into_api(self) -> api::Paged<T::Api> {
        api::Paged {
            start: self.start,
            length: self.length,
            total: self.total,
            data: self.data.into_api(),
        }
    }
}

impl IntoApi for store::Scope {
    type Api = api::Scope;
    fn into_api(self) -> api::Scope {
        api::Scope {
            id: self.id,
            name: self.name,
            created_at: self.created_at,
        }
    }
}

impl IntoApi for store::TokenRecord {
    type Api = api::Token;
    fn into_api(self) -> api::Token {
        api::Token {
            id: self.id,
            name: self.name,
            kind: self.kind,
            scope_id: self.scope_id,
            created_by: self.created_by,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            user_id: self.user_id,
            read_only: self.read_only,
            only_scope_id: self.only_scope_id,
            last_used_at: self.last_used_at,
        }
    }
}

impl IntoApi for store::User {
    type Api = api::User;
    fn into_api(self) -> api::User {
        api::User {
            id: self.id,
            name: self.name,
            display_name: self.display_name,
            email: self.email,
            kind: self.kind,
            is_admin: self.is_admin,
            enabled: self.enabled,
            source: self.source,
            has_password: self.password_hash.is_some(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A binding's view, with its account's name looked up in `users`.
pub fn binding(b: store::RoleBinding, users: &[store::User]) -> api::RoleBinding {
    api::RoleBinding {
        id: b.id,
        user_id: b.user_id,
        user_name: users
            .iter()
            .find(|u| u.id == b.user_id)
            .map(|u| u.name.clone())
            .unwrap_or_default(),
        scope_id: b.scope_id,
        role: b.role,
        host_selector: b.host_selector,
        source: b.source.as_str().to_string(),
        created_by: b.created_by,
        created_at: b.created_at,
    }
}

impl IntoApi for store::AuditEvent {
    type Api = api::AuditRecord;
    fn into_api(self) -> api::AuditRecord {
        api::AuditRecord {
            id: self.id,
            at: self.at,
            actor: self.actor,
            actor_kind: self.actor_kind,
            user_id: self.user_id,
            token_id: self.token_id,
            address: self.address,
            origin: self.origin,
            scope_id: self.scope_id,
            action: self.action,
            resource: self.resource,
            outcome: self.outcome,
            detail: self.detail,
        }
    }
}

impl IntoApi for store::Host {
    type Api = api::Host;
    fn into_api(self) -> api::Host {
        api::Host {
            id: self.id,
            scope_id: self.scope_id,
            agent_id: self.agent_id,
            hostname: self.hostname,
            ip: self.ip,
            ips: self.ips,
            os: self.os,
            os_version: self.os_version,
            arch: self.arch,
            agent_version: self.agent_version,
            containment: self.containment,
            labels: self.labels,
            agent_labels: self.agent_labels,
            user_labels: self.user_labels,
            status: self.status,
            generation: self.generation,
            last_seen: self.last_seen,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        }
    }
}

impl IntoApi for store::Group {
    type Api = api::Group;
    fn into_api(self) -> api::Group {
        api::Group {
            id: self.id,
            scope_id: self.scope_id,
            name: self.name,
            selector: self.selector,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl IntoApi for store::Job {
    type Api = api::Job;
    fn into_api(self) -> api::Job {
        api::Job {
            id: self.id,
            scope_id: self.scope_id,
            name: self.name,
            job_type: self.job_type,
            launch_mode: self.launch_mode,
            operator: self.operator,
            status: self.status,
            created_at: self.created_at,
            started_at: self.started_at,
            ended_at: self.ended_at,
            host_count: self.host_count,
        }
    }
}

/// The shown part of a stored spec, read by the step's kind. A spec that does not parse as its
/// kind is shown as `{}` (and logged): the step is still listed.
fn step_spec(step_id: i64, kind: StepType, spec: serde_json::Value) -> api::StepSpec {
    let shown = match kind {
        StepType::Script => {
            serde_json::from_value::<ScriptSpec>(spec).map(|s| api::StepSpec::Script((&s).into()))
        }
        StepType::File => {
            serde_json::from_value::<FileSpec>(spec).map(|s| api::StepSpec::File((&s).into()))
        }
        StepType::Confirm => return api::StepSpec::Empty(api::EmptySpec {}),
    };
    shown.unwrap_or_else(|e| {
        tracing::warn!(step_id, error = %e, "stored step spec does not parse; shown empty");
        api::StepSpec::Empty(api::EmptySpec {})
    })
}

impl IntoApi for store::Step {
    type Api = api::Step;
    fn into_api(self) -> api::Step {
        api::Step {
            spec: step_spec(self.id, self.step_type, self.spec),
            id: self.id,
            job_id: self.job_id,
            ordinal: self.ordinal,
            name: self.name,
            step_type: self.step_type,
            status: self.status,
            attempt: self.attempt,
            created_at: self.created_at,
            started_at: self.started_at,
            ended_at: self.ended_at,
            host_count: self.host_count,
        }
    }
}

impl IntoApi for store::TaskRow {
    type Api = api::TaskRow;
    fn into_api(self) -> api::TaskRow {
        api::TaskRow {
            step_id: self.step_id,
            attempt: self.attempt,
            host_id: self.host_id,
            ip: self.ip,
            hostname: self.hostname,
            status: self.status,
            exit_code: self.exit_code,
            tag: self.tag,
            digest: self.digest,
            started_at: self.started_at,
            ended_at: self.ended_at,
            log_len: self.log_len,
            truncated: self.truncated,
            error: self.error,
        }
    }
}

impl IntoApi for store::GroupBy {
    type Api = api::GroupBy;
    fn into_api(self) -> api::GroupBy {
        match self {
            store::GroupBy::Status => api::GroupBy::Status,
            store::GroupBy::Output => api::GroupBy::Output,
        }
    }
}

impl IntoApi for store::ResultGroup {
    type Api = api::ResultGroup;
    fn into_api(self) -> api::ResultGroup {
        let k = self.key;
        api::ResultGroup {
            key: api::GroupKey {
                status: k.status,
                exit_code: k.exit_code,
                tag: k.tag,
                digest: k.digest,
            },
            host_count: self.host_count,
            sample_host_id: self.sample_host_id,
        }
    }
}

impl IntoApi for store::FileTaskRow {
    type Api = api::FileTaskRow;
    fn into_api(self) -> api::FileTaskRow {
        let k = self.key;
        api::FileTaskRow {
            key: api::FileTaskKey {
                step_id: k.step_id,
                attempt: k.attempt,
                mode: k.mode,
                host_id: k.host_id,
                source_host_id: k.source_host_id,
                source_path: k.source_path,
                dest_path: k.dest_path,
            },
            ip: self.ip,
            hostname: self.hostname,
            source_ip: self.source_ip,
            source_hostname: self.source_hostname,
            size: self.size,
            bytes_done: self.bytes_done,
            speed: self.speed,
            status: self.status,
            error: self.error,
            started_at: self.started_at,
            ended_at: self.ended_at,
        }
    }
}

impl IntoApi for store::Upload {
    type Api = api::Upload;
    fn into_api(self) -> api::Upload {
        api::Upload {
            id: self.id,
            name: self.name,
            size: self.size,
            chunks: self.chunks,
            created_by: self.created_by,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
        }
    }
}
