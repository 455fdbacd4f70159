//! Hosts and their agents, labels and dynamic groups.

use crate::{
    AgentAuth, AgentStatusChange, Group, Host, HostFilter, HostLabelRow, NewGroup, NewHost, Page,
    Paged, Result,
};
use async_trait::async_trait;
use shoal_types::{AgentStatus, HostFacts, HostId, Labels, ScopeId, UnixMs};

/// Hosts and the agents that stand for them: enrollment, connection state fenced by
/// generation, labels, inventory queries, and dynamic groups of hosts.
#[async_trait]
pub trait HostStore: Send + Sync {
    /// Creates the host an enrolling agent stands for. `agent_id` is unique.
    async fn create_host(&self, host: NewHost) -> Result<Host>;
    /// The credentials of an agent, for authenticating its `Hello`.
    async fn agent_auth(&self, agent_id: &str) -> Result<Option<AgentAuth>>;
    /// Records a (re)connection: bumps and returns the host's generation, stores facts and
    /// config labels, marks the host online and sets `last_seen`.
    async fn host_connected(
        &self,
        host_id: HostId,
        facts: &HostFacts,
        agent_labels: &Labels,
        now: UnixMs,
    ) -> Result<i64>;
    /// Sets agent status for many hosts at once. Where `generation` is given, only hosts still
    /// at that generation change (a stale session must not mark a fresh one offline).
    async fn set_agent_status(&self, changes: &[AgentStatusChange], now: UnixMs) -> Result<()>;
    /// Marks every host offline (server start: no agent is connected yet).
    async fn mark_all_offline(&self, now: UnixMs) -> Result<()>;
    async fn revoke_host(&self, host_id: HostId, now: UnixMs) -> Result<bool>;
    async fn get_host(&self, host_id: HostId) -> Result<Option<Host>>;
    async fn hosts_by_ids(&self, ids: &[HostId]) -> Result<Vec<Host>>;
    /// Hosts whose any IP equals `ip` exactly.
    async fn hosts_by_ip(&self, scope_id: Option<ScopeId>, ip: &str) -> Result<Vec<Host>>;
    /// Every host of a scope with its labels, for resolving selectors (id, labels, status).
    async fn host_labels(&self, scope_id: ScopeId) -> Result<Vec<HostLabelRow>>;
    async fn list_hosts(&self, filter: &HostFilter, page: Page) -> Result<Paged<Host>>;
    async fn host_status_counts(
        &self,
        scope_id: Option<ScopeId>,
    ) -> Result<Vec<(AgentStatus, u64)>>;
    /// Replaces the user-set labels of a host; `false` if there is no such host.
    async fn set_host_labels(&self, host_id: HostId, labels: &Labels, now: UnixMs) -> Result<bool>;

    // ---- dynamic groups ----
    async fn create_group(&self, group: NewGroup) -> Result<Group>;
    async fn list_groups(&self, scope_id: Option<ScopeId>) -> Result<Vec<Group>>;
    async fn get_group(&self, id: i64) -> Result<Option<Group>>;
    async fn update_group(&self, id: i64, name: &str, selector: &str, now: UnixMs) -> Result<bool>;
    async fn delete_group(&self, id: i64) -> Result<bool>;
}
