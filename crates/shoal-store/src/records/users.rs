//! Users, service accounts, role bindings, console sessions and audit records.

use serde::{Deserialize, Serialize};
use shoal_types::access::{Role, UserKind};
use shoal_types::{ScopeId, UnixMs};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    /// Unique sign-in name.
    pub name: String,
    pub display_name: String,
    pub email: String,
    pub kind: UserKind,
    /// The password's PHC string (argon2id); `None` for accounts that cannot sign in with a
    /// password (service accounts, single sign-on users).
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub enabled: bool,
    /// Where the account comes from: `"local"`, or `"oidc"` for single sign-on.
    pub source: String,
    pub now: UnixMs,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub display_name: String,
    pub email: String,
    pub kind: UserKind,
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub enabled: bool,
    pub source: String,
    pub created_at: UnixMs,
    pub updated_at: UnixMs,
}

/// A change to a user; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub enabled: Option<bool>,
    pub is_admin: Option<bool>,
    /// `Some(None)` removes the password.
    pub password_hash: Option<Option<String>>,
}

/// Who grants a binding: set by hand, or mapped from single sign-on group claims at each login.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BindingSource {
    Manual,
    Oidc,
}

impl BindingSource {
    pub fn as_str(self) -> &'static str {
        match self {
            BindingSource::Manual => "manual",
            BindingSource::Oidc => "oidc",
        }
    }
    pub fn parse(s: &str) -> Option<BindingSource> {
        match s {
            "manual" => Some(BindingSource::Manual),
            "oidc" => Some(BindingSource::Oidc),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBinding {
    pub user_id: i64,
    pub scope_id: ScopeId,
    pub role: Role,
    /// A label selector narrowing where the role may execute; `""` for every host of the scope.
    pub host_selector: String,
    pub source: BindingSource,
    pub created_by: String,
    pub now: UnixMs,
}

/// A user's role in one scope. A user holds at most one binding per scope and source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleBinding {
    pub id: i64,
    pub user_id: i64,
    pub scope_id: ScopeId,
    pub role: Role,
    pub host_selector: String,
    pub source: BindingSource,
    pub created_by: String,
    pub created_at: UnixMs,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSession {
    /// SHA-256 of the session id (the cookie's value), hex. The id itself is never stored.
    pub id_hash: String,
    pub user_id: i64,
    pub now: UnixMs,
    /// The absolute expiry.
    pub expires_at: UnixMs,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub id_hash: String,
    pub user_id: i64,
    pub created_at: UnixMs,
    pub last_seen_at: UnixMs,
    pub expires_at: UnixMs,
    pub revoked_at: Option<UnixMs>,
}

/// One audit record, as appended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewAuditEvent {
    pub at: UnixMs,
    /// The acting account's name, `""` when unknown (a failed login names the attempted user in
    /// `resource`).
    pub actor: String,
    /// `"user"`, `"service"`, `"system"` (cron, flows, the server itself) or `"anonymous"`.
    pub actor_kind: String,
    pub user_id: Option<i64>,
    /// The API token the request was made with, if any.
    pub token_id: Option<i64>,
    /// The client's address.
    pub address: String,
    /// `"api"`, `"web"`, `"cli"`, `"cron"`, `"flow"`, `"system"`.
    pub origin: String,
    pub scope_id: Option<ScopeId>,
    /// A stable dotted name: `job.execute`, `token.create`, `login`...
    pub action: String,
    /// What was acted on: `job:42`, `user:alice`, `token:7`; `""` for none.
    pub resource: String,
    /// `"ok"`, `"denied"`, `"failed"` or `"throttled"`.
    pub outcome: String,
    /// A short explanation (an error code and message), never a secret.
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: UnixMs,
    pub actor: String,
    pub actor_kind: String,
    pub user_id: Option<i64>,
    pub token_id: Option<i64>,
    pub address: String,
    pub origin: String,
    pub scope_id: Option<ScopeId>,
    pub action: String,
    pub resource: String,
    pub outcome: String,
    pub detail: String,
}

/// Which audit records to list or count. Every field narrows; `None` does not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// At or after.
    pub from: Option<UnixMs>,
    /// Before.
    pub to: Option<UnixMs>,
    /// Exact actor name.
    pub actor: Option<String>,
    /// Exact action, or every action under a prefix ending in `.` (`job.`).
    pub action: Option<String>,
    /// Records of any of these scopes (`Some(vec![])` matches none).
    pub scope_ids: Option<Vec<ScopeId>>,
    /// Exact resource.
    pub resource: Option<String>,
    pub outcome: Option<String>,
    /// The client address.
    pub address: Option<String>,
    /// Records with a smaller id (the cursor for the next page, newest first).
    pub before_id: Option<i64>,
}

/// A credential (a token or a session) with its account and the account's role bindings, read
/// in one round trip when a request authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated<T> {
    pub credential: T,
    pub user: User,
    pub bindings: Vec<RoleBinding>,
}
