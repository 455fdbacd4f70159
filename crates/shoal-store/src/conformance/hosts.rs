//! Cases of [`HostStore`](crate::HostStore): enrollment, connection generations, status
//! fencing, labels; the inventory and groups in `inventory`.

mod inventory;

pub use inventory::*;

use super::{add_host, facts, labels};
use crate::prelude::*;
use crate::{AgentStatusChange, Error, NewHost};
use shoal_types::{AgentStatus, DEFAULT_SCOPE, HostId};

/// A new host holds its facts, starts offline at generation 0, and authenticates by agent id.
pub async fn hosts_create_and_auth(store: &dyn Store) {
    let host = add_host(
        store,
        DEFAULT_SCOPE,
        "web-1",
        &["10.0.0.1", "192.168.1.1"],
        labels(&[]),
    )
    .await;
    assert_eq!(host.agent_id, "agent-web-1");
    assert_eq!(host.hostname, "web-1");
    assert_eq!(host.ip, "10.0.0.1");
    assert_eq!(
        host.ips,
        vec!["10.0.0.1".to_string(), "192.168.1.1".to_string()]
    );
    assert_eq!((host.os.as_str(), host.arch.as_str()), ("linux", "x86_64"));
    assert_eq!(host.status, AgentStatus::Offline);
    assert_eq!(host.generation, 0);
    assert_eq!(host.created_at, 1_000);
    assert_eq!(host.revoked_at, None);
    assert_eq!(
        store.get_host(host.id).await.expect("get_host"),
        Some(host.clone())
    );

    let dup = store
        .create_host(NewHost {
            scope_id: DEFAULT_SCOPE,
            agent_id: "agent-web-1".to_string(),
            secret_hash: "other".to_string(),
            facts: facts("web-1b", &[]),
            agent_labels: labels(&[]),
            now: 2_000,
        })
        .await;
    assert!(matches!(dup, Err(Error::Conflict(_))), "{dup:?}");

    let auth = store
        .agent_auth("agent-web-1")
        .await
        .expect("agent_auth")
        .expect("known");
    assert_eq!(auth.host_id, host.id);
    assert_eq!(auth.secret_hash, "hash-web-1");
    assert!(!auth.revoked);
    assert_eq!(
        store.agent_auth("agent-nope").await.expect("agent_auth"),
        None
    );

    assert!(
        store
            .revoke_host(host.id, 3_000)
            .await
            .expect("revoke_host")
    );
    assert!(
        !store
            .revoke_host(9_999_999, 3_000)
            .await
            .expect("revoke_host")
    );
    let auth = store
        .agent_auth("agent-web-1")
        .await
        .expect("agent_auth")
        .expect("known");
    assert!(auth.revoked);
    let host = store
        .get_host(host.id)
        .await
        .expect("get_host")
        .expect("exists");
    assert_eq!(host.revoked_at, Some(3_000));
    assert_eq!(store.get_host(9_999_999).await.expect("get_host"), None);

    // A host without addresses has an empty preferred IP.
    let bare = add_host(store, DEFAULT_SCOPE, "bare", &[], labels(&[])).await;
    assert_eq!((bare.ip.as_str(), bare.ips.len()), ("", 0));
}

/// Every connection bumps the generation and stores facts, config labels and `last_seen`.
pub async fn host_connected_bumps_generation(store: &dyn Store) {
    let host = add_host(store, DEFAULT_SCOPE, "web-1", &["10.0.0.1"], labels(&[])).await;
    let mut new_facts = facts("web-1-renamed", &["10.0.0.9", "10.0.0.1"]);
    new_facts.agent_version = "0.2.0".to_string();
    new_facts.containment = Some("cgroup".to_string());
    let g1 = store
        .host_connected(host.id, &new_facts, &labels(&[("env", "prod")]), 5_000)
        .await
        .expect("host_connected");
    assert_eq!(g1, 1);
    let got = store
        .get_host(host.id)
        .await
        .expect("get_host")
        .expect("exists");
    assert_eq!(got.generation, 1);
    assert_eq!(got.status, AgentStatus::Online);
    assert_eq!(got.last_seen, Some(5_000));
    assert_eq!(got.hostname, "web-1-renamed");
    assert_eq!(got.ip, "10.0.0.9");
    assert_eq!(got.agent_version, "0.2.0");
    assert_eq!(got.containment.as_deref(), Some("cgroup"));
    assert_eq!(got.agent_labels, labels(&[("env", "prod")]));
    // The new address is searchable, the order of addresses kept.
    let by_ip = store
        .hosts_by_ip(None, "10.0.0.9")
        .await
        .expect("hosts_by_ip");
    assert_eq!(
        by_ip.iter().map(|h| h.id).collect::<Vec<_>>(),
        vec![host.id]
    );

    let g2 = store
        .host_connected(host.id, &new_facts, &labels(&[]), 6_000)
        .await
        .expect("host_connected");
    assert_eq!(g2, 2);
    let missing = store
        .host_connected(9_999_999, &new_facts, &labels(&[]), 6_000)
        .await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
}

fn change(host_id: HostId, status: AgentStatus, generation: Option<i64>) -> AgentStatusChange {
    AgentStatusChange {
        host_id,
        status,
        generation,
    }
}

async fn status_of(store: &dyn Store, id: HostId) -> AgentStatus {
    store
        .get_host(id)
        .await
        .expect("get_host")
        .expect("exists")
        .status
}

/// A stale session (older generation) cannot change a host's status; `None` always can.
pub async fn set_agent_status_is_fenced_by_generation(store: &dyn Store) {
    let a = add_host(store, DEFAULT_SCOPE, "a", &["10.0.0.1"], labels(&[]))
        .await
        .id;
    let b = add_host(store, DEFAULT_SCOPE, "b", &["10.0.0.2"], labels(&[]))
        .await
        .id;
    let f = facts("a", &["10.0.0.1"]);
    store
        .host_connected(a, &f, &labels(&[]), 2_000)
        .await
        .expect("connect");
    let ga = store
        .host_connected(a, &f, &labels(&[]), 3_000)
        .await
        .expect("connect");
    let gb = store
        .host_connected(b, &f, &labels(&[]), 3_000)
        .await
        .expect("connect");
    assert_eq!((ga, gb), (2, 1));

    // The first session of `a` (generation 1) ends late: nothing changes.
    store
        .set_agent_status(&[change(a, AgentStatus::Offline, Some(1))], 4_000)
        .await
        .expect("set_agent_status");
    assert_eq!(status_of(store, a).await, AgentStatus::Online);

    // Several hosts at once, each fenced by its own generation.
    store
        .set_agent_status(
            &[
                change(a, AgentStatus::Abnormal, Some(ga)),
                change(b, AgentStatus::Offline, Some(gb + 1)),
            ],
            5_000,
        )
        .await
        .expect("set_agent_status");
    assert_eq!(status_of(store, a).await, AgentStatus::Abnormal);
    assert_eq!(status_of(store, b).await, AgentStatus::Online);

    store
        .set_agent_status(&[change(b, AgentStatus::Abnormal, None)], 6_000)
        .await
        .expect("set_agent_status");
    assert_eq!(status_of(store, b).await, AgentStatus::Abnormal);
    store
        .set_agent_status(&[], 6_000)
        .await
        .expect("empty is fine");

    // The last change of a host in one call wins.
    store
        .set_agent_status(
            &[
                change(b, AgentStatus::Offline, None),
                change(b, AgentStatus::Online, None),
            ],
            7_000,
        )
        .await
        .expect("set_agent_status");
    assert_eq!(status_of(store, b).await, AgentStatus::Online);

    store
        .mark_all_offline(8_000)
        .await
        .expect("mark_all_offline");
    assert_eq!(status_of(store, a).await, AgentStatus::Offline);
    assert_eq!(status_of(store, b).await, AgentStatus::Offline);
    // The generation survives: a new connection still bumps it.
    let ga3 = store
        .host_connected(a, &f, &labels(&[]), 9_000)
        .await
        .expect("connect");
    assert_eq!(ga3, 3);
}

/// Effective labels are the agent's overlaid by the user's; reconnecting keeps user labels.
pub async fn labels_overlay_user_over_agent(store: &dyn Store) {
    let agent = labels(&[("env", "prod"), ("role", "web")]);
    let host = add_host(store, DEFAULT_SCOPE, "web-1", &["10.0.0.1"], agent.clone()).await;
    assert_eq!(host.labels, agent);
    assert!(host.user_labels.is_empty());

    let user = labels(&[("env", "staging"), ("team", "a")]);
    assert!(
        store
            .set_host_labels(host.id, &user, 2_000)
            .await
            .expect("set_host_labels")
    );
    assert!(
        !store
            .set_host_labels(9_999_999, &user, 2_000)
            .await
            .expect("set_host_labels")
    );
    let expected = labels(&[("env", "staging"), ("role", "web"), ("team", "a")]);
    let got = store
        .get_host(host.id)
        .await
        .expect("get_host")
        .expect("exists");
    assert_eq!(got.labels, expected);
    assert_eq!(got.agent_labels, agent);
    assert_eq!(got.user_labels, user);

    let rows = store.host_labels(DEFAULT_SCOPE).await.expect("host_labels");
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].id, &rows[0].labels), (host.id, &expected));
    assert_eq!(rows[0].status, AgentStatus::Offline);

    // The agent reconnects with other config labels: user labels still win.
    let f = facts("web-1", &["10.0.0.1"]);
    let agent2 = labels(&[("env", "dev"), ("zone", "z1")]);
    store
        .host_connected(host.id, &f, &agent2, 3_000)
        .await
        .expect("connect");
    let got = store
        .get_host(host.id)
        .await
        .expect("get_host")
        .expect("exists");
    assert_eq!(
        got.labels,
        labels(&[("env", "staging"), ("team", "a"), ("zone", "z1")])
    );
    let rows = store.host_labels(DEFAULT_SCOPE).await.expect("host_labels");
    assert_eq!(rows[0].status, AgentStatus::Online);
    assert_eq!(rows[0].labels, got.labels);

    // Clearing user labels leaves the agent's.
    store
        .set_host_labels(host.id, &labels(&[]), 4_000)
        .await
        .expect("set_host_labels");
    let got = store
        .get_host(host.id)
        .await
        .expect("get_host")
        .expect("exists");
    assert_eq!(got.labels, agent2);

    // Other scopes and revoked hosts are not selectable.
    let other = store.create_scope("other", 1).await.expect("create_scope");
    add_host(store, other.id, "elsewhere", &[], labels(&[])).await;
    let gone = add_host(store, DEFAULT_SCOPE, "gone", &[], labels(&[])).await;
    store.revoke_host(gone.id, 5_000).await.expect("revoke");
    let ids: Vec<HostId> = store
        .host_labels(DEFAULT_SCOPE)
        .await
        .expect("host_labels")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec![host.id]);
}
