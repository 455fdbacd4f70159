//! Cases for the host inventory: listing with filters and pages, lookups by address and id,
//! dynamic groups.

use crate::conformance::{add_host, facts, labels};
use crate::prelude::*;
use crate::{Error, HostFilter, NewGroup, Page};
use shoal_types::{AgentStatus, DEFAULT_SCOPE, HostId};

fn ids_of(page: &crate::Paged<crate::Host>) -> Vec<HostId> {
    page.data.iter().map(|h| h.id).collect()
}

/// `list_hosts` filters by scope, status, IP and name substrings, OS and ids, pages with a
/// total, orders by id, and hides revoked hosts unless asked.
pub async fn hosts_filter_and_page(store: &dyn Store) {
    let other = store.create_scope("other", 1).await.expect("create_scope");
    let h1 = add_host(store, DEFAULT_SCOPE, "web-1", &["10.0.0.1"], labels(&[]))
        .await
        .id;
    let h2 = add_host(
        store,
        DEFAULT_SCOPE,
        "web-2",
        &["10.0.0.2", "172.16.0.2"],
        labels(&[]),
    )
    .await
    .id;
    let h3 = add_host(store, DEFAULT_SCOPE, "DB-1", &["10.0.1.3"], labels(&[]))
        .await
        .id;
    let h4 = add_host(store, other.id, "web-9", &["10.0.0.4"], labels(&[]))
        .await
        .id;
    let h5 = add_host(store, DEFAULT_SCOPE, "old", &["10.0.0.5"], labels(&[]))
        .await
        .id;
    store.revoke_host(h5, 2_000).await.expect("revoke");
    let f = facts("web-2", &["10.0.0.2", "172.16.0.2"]);
    store
        .host_connected(h2, &f, &labels(&[]), 3_000)
        .await
        .expect("connect");

    let all = HostFilter::default();
    let page = store
        .list_hosts(&all, Page::first(100))
        .await
        .expect("list_hosts");
    assert_eq!(ids_of(&page), vec![h1, h2, h3, h4]);
    assert_eq!(page.total, 4);

    let scoped = HostFilter {
        scope_id: Some(DEFAULT_SCOPE),
        ..HostFilter::default()
    };
    let page = store
        .list_hosts(
            &scoped,
            Page {
                start: 1,
                length: 1,
            },
        )
        .await
        .expect("list");
    assert_eq!(
        (ids_of(&page), page.total, page.start, page.length),
        (vec![h2], 3, 1, 1)
    );
    let page = store
        .list_hosts(
            &scoped,
            Page {
                start: 5,
                length: 10,
            },
        )
        .await
        .expect("list");
    assert_eq!((ids_of(&page), page.total), (vec![], 3));

    let online = HostFilter {
        status: Some(AgentStatus::Online),
        ..HostFilter::default()
    };
    assert_eq!(
        ids_of(
            &store
                .list_hosts(&online, Page::first(10))
                .await
                .expect("list")
        ),
        vec![h2]
    );

    let by_ip = HostFilter {
        ip: Some("172.16".to_string()),
        ..HostFilter::default()
    };
    assert_eq!(
        ids_of(
            &store
                .list_hosts(&by_ip, Page::first(10))
                .await
                .expect("list")
        ),
        vec![h2]
    );
    let by_ip = HostFilter {
        ip: Some("10.0.0.".to_string()),
        ..HostFilter::default()
    };
    assert_eq!(
        ids_of(
            &store
                .list_hosts(&by_ip, Page::first(10))
                .await
                .expect("list")
        ),
        vec![h1, h2, h4]
    );

    // `query` matches hostnames (ignoring case) or addresses.
    let q = HostFilter {
        query: Some("db".to_string()),
        ..HostFilter::default()
    };
    assert_eq!(
        ids_of(&store.list_hosts(&q, Page::first(10)).await.expect("list")),
        vec![h3]
    );
    let q = HostFilter {
        query: Some("0.1.3".to_string()),
        ..HostFilter::default()
    };
    assert_eq!(
        ids_of(&store.list_hosts(&q, Page::first(10)).await.expect("list")),
        vec![h3]
    );

    let os = HostFilter {
        os: Some("linux".to_string()),
        ..HostFilter::default()
    };
    assert_eq!(
        store
            .list_hosts(&os, Page::first(10))
            .await
            .expect("list")
            .total,
        4
    );
    let os = HostFilter {
        os: Some("windows".to_string()),
        ..HostFilter::default()
    };
    assert_eq!(
        store
            .list_hosts(&os, Page::first(10))
            .await
            .expect("list")
            .total,
        0
    );

    let ids = HostFilter {
        ids: Some(vec![h3, h1, h5]),
        ..HostFilter::default()
    };
    assert_eq!(
        ids_of(&store.list_hosts(&ids, Page::first(10)).await.expect("list")),
        vec![h1, h3]
    );
    let ids = HostFilter {
        ids: Some(vec![h3, h1, h5]),
        include_revoked: true,
        ..HostFilter::default()
    };
    assert_eq!(
        ids_of(&store.list_hosts(&ids, Page::first(10)).await.expect("list")),
        vec![h1, h3, h5]
    );
    let none = HostFilter {
        ids: Some(vec![]),
        ..HostFilter::default()
    };
    assert_eq!(
        store
            .list_hosts(&none, Page::first(10))
            .await
            .expect("list")
            .total,
        0
    );

    // Counts: every status listed, revoked hosts not counted.
    let counts = store
        .host_status_counts(Some(DEFAULT_SCOPE))
        .await
        .expect("counts");
    let get = |s: AgentStatus| counts.iter().find(|(st, _)| *st == s).map(|(_, n)| *n);
    assert_eq!(get(AgentStatus::Online), Some(1));
    assert_eq!(get(AgentStatus::Offline), Some(2));
    assert_eq!(get(AgentStatus::Abnormal).unwrap_or(0), 0);
    let total: u64 = store
        .host_status_counts(None)
        .await
        .expect("counts")
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert_eq!(total, 4);
}

/// `hosts_by_ip` matches any address exactly (not a substring), optionally in one scope;
/// `hosts_by_ids` returns the hosts that exist.
pub async fn hosts_by_ip_and_ids(store: &dyn Store) {
    let other = store.create_scope("other", 1).await.expect("create_scope");
    let h1 = add_host(
        store,
        DEFAULT_SCOPE,
        "a",
        &["10.0.0.1", "10.0.0.11"],
        labels(&[]),
    )
    .await
    .id;
    let h2 = add_host(
        store,
        DEFAULT_SCOPE,
        "b",
        &["10.0.0.2", "10.0.0.1"],
        labels(&[]),
    )
    .await
    .id;
    let h3 = add_host(store, other.id, "c", &["10.0.0.1"], labels(&[]))
        .await
        .id;

    let ids = |hosts: Vec<crate::Host>| hosts.iter().map(|h| h.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.hosts_by_ip(None, "10.0.0.1").await.expect("by ip")),
        vec![h1, h2, h3]
    );
    assert_eq!(
        ids(store
            .hosts_by_ip(Some(DEFAULT_SCOPE), "10.0.0.1")
            .await
            .expect("by ip")),
        vec![h1, h2]
    );
    assert_eq!(
        ids(store.hosts_by_ip(None, "10.0.0.11").await.expect("by ip")),
        vec![h1]
    );
    assert_eq!(
        ids(store.hosts_by_ip(None, "10.0.0").await.expect("by ip")),
        Vec::<HostId>::new()
    );

    let got = store
        .hosts_by_ids(&[h3, h1, 9_999_999])
        .await
        .expect("by ids");
    assert_eq!(ids(got.clone()), vec![h1, h3]);
    assert_eq!(got[0].hostname, "a");
    assert!(store.hosts_by_ids(&[]).await.expect("by ids").is_empty());
}

/// Groups are created, listed per scope, updated and deleted; names are unique per scope.
pub async fn groups_crud(store: &dyn Store) {
    let other = store
        .create_scope("other", 1_000)
        .await
        .expect("create_scope");
    let web = store
        .create_group(NewGroup {
            scope_id: DEFAULT_SCOPE,
            name: "web".to_string(),
            selector: "role=web".to_string(),
            now: 1_000,
        })
        .await
        .expect("create_group");
    let db = store
        .create_group(NewGroup {
            scope_id: other.id,
            name: "db".to_string(),
            selector: "role=db".to_string(),
            now: 1_100,
        })
        .await
        .expect("create_group");
    assert_eq!(web.selector, "role=web");
    assert_eq!((web.created_at, web.updated_at), (1_000, 1_000));
    let dup = store
        .create_group(NewGroup {
            scope_id: DEFAULT_SCOPE,
            name: "web".to_string(),
            selector: "x=y".to_string(),
            now: 1_000,
        })
        .await;
    assert!(matches!(dup, Err(Error::Conflict(_))), "{dup:?}");

    assert_eq!(
        store.list_groups(None).await.expect("list"),
        vec![web.clone(), db.clone()]
    );
    assert_eq!(
        store.list_groups(Some(other.id)).await.expect("list"),
        vec![db.clone()]
    );

    assert!(
        store
            .update_group(web.id, "web2", "role=web,env=prod", 2_000)
            .await
            .expect("update")
    );
    assert!(
        !store
            .update_group(9_999_999, "x", "y", 2_000)
            .await
            .expect("update")
    );
    let got = store
        .get_group(web.id)
        .await
        .expect("get_group")
        .expect("exists");
    assert_eq!(got.name, "web2");
    assert_eq!(got.selector, "role=web,env=prod");
    assert_eq!((got.created_at, got.updated_at), (1_000, 2_000));

    assert!(store.delete_group(web.id).await.expect("delete"));
    assert!(!store.delete_group(web.id).await.expect("delete"));
    assert_eq!(store.get_group(web.id).await.expect("get_group"), None);
    assert_eq!(store.list_groups(None).await.expect("list"), vec![db]);
}

/// `list_hosts` with `scope_ids` keeps hosts of any listed scope (an empty list none), in the
/// total as in the page, and combines with the other fields.
pub async fn hosts_filter_by_scope_ids(store: &dyn Store) {
    let ops = store.create_scope("ops", 1).await.expect("create_scope").id;
    let dev = store.create_scope("dev", 1).await.expect("create_scope").id;
    let h1 = add_host(store, DEFAULT_SCOPE, "a", &["10.0.0.1"], labels(&[]))
        .await
        .id;
    let h2 = add_host(store, ops, "b", &["10.0.0.2"], labels(&[]))
        .await
        .id;
    let h3 = add_host(store, dev, "c", &["10.0.0.3"], labels(&[]))
        .await
        .id;
    let h4 = add_host(store, ops, "d", &["10.0.0.4"], labels(&[]))
        .await
        .id;
    let list = |f: HostFilter, page: Page| async move {
        let p = store.list_hosts(&f, page).await.expect("list_hosts");
        (ids_of(&p), p.total)
    };
    let only = |scope_ids: Vec<i64>| HostFilter {
        scope_ids: Some(scope_ids),
        ..HostFilter::default()
    };
    assert_eq!(
        list(only(vec![ops]), Page::first(10)).await,
        (vec![h2, h4], 2)
    );
    assert_eq!(
        list(only(vec![dev, DEFAULT_SCOPE]), Page::first(10)).await,
        (vec![h1, h3], 2)
    );
    assert_eq!(list(only(vec![]), Page::first(10)).await, (vec![], 0));
    assert_eq!(
        list(
            only(vec![ops, dev]),
            Page {
                start: 1,
                length: 1
            }
        )
        .await,
        (vec![h3], 3)
    );
    // With `scope_id`, both must hold.
    let both = HostFilter {
        scope_id: Some(DEFAULT_SCOPE),
        ..only(vec![ops, dev])
    };
    assert_eq!(list(both, Page::first(10)).await, (vec![], 0));
    let narrowed = HostFilter {
        ip: Some("10.0.0.4".to_string()),
        ..only(vec![ops, dev])
    };
    assert_eq!(list(narrowed, Page::first(10)).await, (vec![h4], 1));
}
