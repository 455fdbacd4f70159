//! Users, service accounts, role bindings and console sessions; and the audit trail.

use crate::{
    AuditEvent, AuditFilter, Authenticated, NewAuditEvent, NewBinding, NewSession, NewUser, Result,
    RoleBinding, SessionRecord, TokenRecord, User, UserPatch,
};
use async_trait::async_trait;
use shoal_types::{ScopeId, UnixMs};

/// Accounts (people and service accounts), what they may do where, and console sessions.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// `Error::Conflict` if the name is taken.
    async fn create_user(&self, user: NewUser) -> Result<User>;
    async fn get_user(&self, id: i64) -> Result<Option<User>>;
    async fn find_user(&self, name: &str) -> Result<Option<User>>;
    /// Every account, by id.
    async fn list_users(&self) -> Result<Vec<User>>;
    /// Applies a patch; `None` if there is no such user.
    async fn update_user(&self, id: i64, patch: UserPatch, now: UnixMs) -> Result<Option<User>>;

    /// Bindings of one user, of one scope, or both (`None` does not narrow), by id.
    async fn list_bindings(
        &self,
        user_id: Option<i64>,
        scope_id: Option<ScopeId>,
    ) -> Result<Vec<RoleBinding>>;
    /// Creates the binding, or replaces the role and selector of the user's binding with the
    /// same scope and source. `Error::MissingReference` for an unknown user or scope.
    async fn put_binding(&self, binding: NewBinding) -> Result<RoleBinding>;
    /// `false` if there is no such binding.
    async fn delete_binding(&self, id: i64) -> Result<bool>;
    /// Replaces, in one transaction, every binding of `user_id` from single sign-on with
    /// `bindings` (all of them from single sign-on); bindings set by hand stay.
    async fn replace_oidc_bindings(&self, user_id: i64, bindings: Vec<NewBinding>) -> Result<()>;

    async fn create_session(&self, session: NewSession) -> Result<SessionRecord>;
    /// A session by the hash of its id, whether or not it is still usable.
    async fn find_session(&self, id_hash: &str) -> Result<Option<SessionRecord>>;
    async fn touch_session(&self, id_hash: &str, now: UnixMs) -> Result<()>;
    /// Ends one session; `false` if there is none with that hash.
    async fn revoke_session(&self, id_hash: &str, now: UnixMs) -> Result<bool>;
    /// Ends every live session of a user; returns how many.
    async fn revoke_user_sessions(&self, user_id: i64, now: UnixMs) -> Result<u64>;
    /// A token (by its secret's hash) with its account and bindings, in one round trip;
    /// `None` when there is no such token or it belongs to no account.
    async fn token_account(&self, secret_hash: &str) -> Result<Option<Authenticated<TokenRecord>>>;
    /// A session (by its id's hash) with its account and bindings, in one round trip.
    async fn session_account(&self, id_hash: &str) -> Result<Option<Authenticated<SessionRecord>>>;
    /// Deletes sessions that expired or were revoked before `before`.
    async fn prune_sessions(&self, before: UnixMs) -> Result<u64>;
}

/// The audit trail: appended, listed, counted and pruned; never edited.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, event: NewAuditEvent) -> Result<i64>;
    /// Matching records, newest first, at most `limit`.
    async fn list_audit(&self, filter: &AuditFilter, limit: u32) -> Result<Vec<AuditEvent>>;
    async fn count_audit(&self, filter: &AuditFilter) -> Result<u64>;
    /// Deletes at most `limit` of the oldest records older than `before`; returns how many.
    async fn prune_audit(&self, before: UnixMs, limit: u32) -> Result<u64>;
}
