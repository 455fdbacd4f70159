//! Cases of [`AuditStore`](crate::AuditStore): appending, listing newest first with filters and
//! a cursor, counting, and pruning in bounded batches.

use crate::prelude::*;
use crate::{AuditEvent, AuditFilter, NewAuditEvent};
use shoal_types::DEFAULT_SCOPE;

fn event(at: i64, actor: &str, action: &str, scope_id: Option<i64>) -> NewAuditEvent {
    NewAuditEvent {
        at,
        actor: actor.to_string(),
        actor_kind: "user".to_string(),
        user_id: Some(1),
        token_id: None,
        address: "10.0.0.1".to_string(),
        origin: "api".to_string(),
        scope_id,
        action: action.to_string(),
        resource: String::new(),
        outcome: "ok".to_string(),
        detail: String::new(),
    }
}

async fn append(store: &dyn Store, e: NewAuditEvent) -> i64 {
    store.append_audit(e).await.expect("append_audit")
}

/// The ids `list_audit` returns, and checks that `count_audit` agrees with an unlimited list.
async fn ids(store: &dyn Store, f: AuditFilter) -> Vec<i64> {
    let listed: Vec<i64> = store
        .list_audit(&f, 1_000)
        .await
        .expect("list_audit")
        .iter()
        .map(|e| e.id)
        .collect();
    let count = store.count_audit(&f).await.expect("count_audit");
    assert_eq!(count, listed.len() as u64, "count of {f:?}");
    listed
}

/// Every field round-trips; each filter field narrows (lists and counts alike), newest first;
/// an action ending in `.` is a literal prefix, any other action is exact.
pub async fn audit_append_and_filter(store: &dyn Store) {
    let ops = store.create_scope("ops", 1).await.expect("create_scope").id;
    let full = NewAuditEvent {
        at: 1_000,
        actor: "alice".to_string(),
        actor_kind: "service".to_string(),
        user_id: Some(7),
        token_id: Some(9),
        address: "192.168.0.9".to_string(),
        origin: "cli".to_string(),
        scope_id: Some(DEFAULT_SCOPE),
        action: "job.execute".to_string(),
        resource: "job:42".to_string(),
        outcome: "denied".to_string(),
        detail: "FORBIDDEN: operator role needed".to_string(),
    };
    let e1 = append(store, full.clone()).await;
    let e2 = append(store, event(2_000, "bob", "job.terminate", Some(ops))).await;
    let e3 = append(store, event(3_000, "alice", "jobs.list", None)).await;
    let e4 = append(store, event(4_000, "", "login", None)).await;
    let e5 = append(store, event(5_000, "bob", "job", Some(DEFAULT_SCOPE))).await;
    // Actions with LIKE wildcards in them: a prefix must match them literally.
    let e6 = append(store, event(6_000, "carol", "a_b.x", None)).await;
    let e7 = append(store, event(7_000, "carol", "axb.y", None)).await;
    let e8 = append(store, event(8_000, "carol", "100%.z", None)).await;
    assert!(e1 < e2 && e2 < e3 && e3 < e4 && e4 < e5 && e5 < e6 && e6 < e7 && e7 < e8);

    let listed = store
        .list_audit(&AuditFilter::default(), 1_000)
        .await
        .expect("list_audit");
    assert_eq!(listed.len(), 8);
    assert_eq!(
        listed[7],
        AuditEvent {
            id: e1,
            at: full.at,
            actor: full.actor,
            actor_kind: full.actor_kind,
            user_id: full.user_id,
            token_id: full.token_id,
            address: full.address,
            origin: full.origin,
            scope_id: full.scope_id,
            action: full.action,
            resource: full.resource,
            outcome: full.outcome,
            detail: full.detail,
        }
    );
    assert_eq!(
        (listed[6].scope_id, listed[6].user_id, listed[6].token_id),
        (Some(ops), Some(1), None)
    );
    assert_eq!(
        ids(store, AuditFilter::default()).await,
        vec![e8, e7, e6, e5, e4, e3, e2, e1]
    );

    let all = AuditFilter::default();
    let cases: Vec<(AuditFilter, Vec<i64>)> = vec![
        (
            AuditFilter {
                from: Some(2_000),
                to: Some(4_000),
                ..all.clone()
            },
            vec![e3, e2],
        ),
        (
            AuditFilter {
                from: Some(7_000),
                ..all.clone()
            },
            vec![e8, e7],
        ),
        (
            AuditFilter {
                actor: Some("alice".to_string()),
                ..all.clone()
            },
            vec![e3, e1],
        ),
        (
            AuditFilter {
                actor: Some("ali".to_string()),
                ..all.clone()
            },
            vec![],
        ),
        (
            AuditFilter {
                action: Some("job.execute".to_string()),
                ..all.clone()
            },
            vec![e1],
        ),
        (
            AuditFilter {
                action: Some("job".to_string()),
                ..all.clone()
            },
            vec![e5],
        ),
        (
            AuditFilter {
                action: Some("job.".to_string()),
                ..all.clone()
            },
            vec![e2, e1],
        ),
        (
            AuditFilter {
                action: Some("a_b.".to_string()),
                ..all.clone()
            },
            vec![e6],
        ),
        (
            AuditFilter {
                action: Some("a%.".to_string()),
                ..all.clone()
            },
            vec![],
        ),
        (
            AuditFilter {
                action: Some("100%.".to_string()),
                ..all.clone()
            },
            vec![e8],
        ),
        (
            AuditFilter {
                scope_ids: Some(vec![DEFAULT_SCOPE]),
                ..all.clone()
            },
            vec![e5, e1],
        ),
        (
            AuditFilter {
                scope_ids: Some(vec![ops, DEFAULT_SCOPE]),
                ..all.clone()
            },
            vec![e5, e2, e1],
        ),
        (
            AuditFilter {
                scope_ids: Some(vec![]),
                ..all.clone()
            },
            vec![],
        ),
        (
            AuditFilter {
                resource: Some("job:42".to_string()),
                ..all.clone()
            },
            vec![e1],
        ),
        (
            AuditFilter {
                outcome: Some("ok".to_string()),
                ..all.clone()
            },
            vec![e8, e7, e6, e5, e4, e3, e2],
        ),
        (
            AuditFilter {
                address: Some("192.168.0.9".to_string()),
                ..all.clone()
            },
            vec![e1],
        ),
        (
            AuditFilter {
                before_id: Some(e3),
                ..all.clone()
            },
            vec![e2, e1],
        ),
        // Fields combine.
        (
            AuditFilter {
                actor: Some("bob".to_string()),
                action: Some("job.".to_string()),
                scope_ids: Some(vec![ops]),
                to: Some(3_000),
                ..all.clone()
            },
            vec![e2],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(ids(store, filter.clone()).await, expected, "{filter:?}");
    }
}

/// Pages go newest first: `limit` cuts, `before_id` continues after the last id seen, with the
/// same filter; the count ignores the limit.
pub async fn audit_pages_with_cursor(store: &dyn Store) {
    let mut all = Vec::new();
    for i in 0..7i64 {
        let actor = if i % 2 == 0 { "alice" } else { "bob" };
        all.push(append(store, event(1_000 + i, actor, "job.execute", None)).await);
    }
    let alice = AuditFilter {
        actor: Some("alice".to_string()),
        ..AuditFilter::default()
    };
    let mut pages = Vec::new();
    let mut filter = alice.clone();
    loop {
        let page: Vec<i64> = store
            .list_audit(&filter, 2)
            .await
            .expect("list_audit")
            .iter()
            .map(|e| e.id)
            .collect();
        let Some(last) = page.last().copied() else {
            break;
        };
        pages.push(page);
        filter.before_id = Some(last);
    }
    assert_eq!(pages, vec![vec![all[6], all[4]], vec![all[2], all[0]]]);
    assert_eq!(store.count_audit(&alice).await.expect("count_audit"), 4);
    let newest = store
        .list_audit(&AuditFilter::default(), 3)
        .await
        .expect("list_audit");
    assert_eq!(
        newest.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![all[6], all[5], all[4]]
    );
    assert_eq!(
        store
            .list_audit(&AuditFilter::default(), 0)
            .await
            .expect("list_audit"),
        vec![]
    );
}

/// `prune_audit` deletes at most `limit` records, oldest first, and only those before the
/// cut-off.
pub async fn audit_prune_is_bounded(store: &dyn Store) {
    for at in [100, 200, 300, 400, 500] {
        append(store, event(at, "alice", "login", None)).await;
    }
    let left = || async {
        store
            .list_audit(&AuditFilter::default(), 100)
            .await
            .expect("list_audit")
            .iter()
            .map(|e| e.at)
            .collect::<Vec<_>>()
    };
    assert_eq!(store.prune_audit(400, 2).await.expect("prune_audit"), 2);
    assert_eq!(left().await, vec![500, 400, 300]);
    assert_eq!(store.prune_audit(400, 10).await.expect("prune_audit"), 1);
    assert_eq!(store.prune_audit(400, 10).await.expect("prune_audit"), 0);
    assert_eq!(left().await, vec![500, 400]);
    assert_eq!(store.prune_audit(1_000, 0).await.expect("prune_audit"), 0);
    assert_eq!(
        store
            .count_audit(&AuditFilter::default())
            .await
            .expect("count_audit"),
        2
    );
}
