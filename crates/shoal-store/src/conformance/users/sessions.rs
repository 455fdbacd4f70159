//! Cases of console sessions: created, found by hash, touched, revoked and pruned.

use super::add_user;
use crate::prelude::*;
use crate::{Error, NewSession};

fn new_session(id_hash: &str, user_id: i64, now: i64, expires_at: i64) -> NewSession {
    NewSession {
        id_hash: id_hash.to_string(),
        user_id,
        now,
        expires_at,
    }
}

/// Sessions are found by hash, touched forward only, revoked once (alone or all of a user's
/// live ones), and pruned once expired or revoked before the cut-off.
pub async fn sessions_create_touch_revoke_prune(store: &dyn Store) {
    let alice = add_user(store, "alice").await.id;
    let bob = add_user(store, "bob").await.id;
    let s1 = store
        .create_session(new_session("s1", alice, 1_000, 10_000))
        .await
        .expect("create_session");
    assert_eq!(s1.id_hash, "s1");
    assert_eq!(s1.user_id, alice);
    assert_eq!((s1.created_at, s1.last_seen_at), (1_000, 1_000));
    assert_eq!((s1.expires_at, s1.revoked_at), (10_000, None));
    assert_eq!(
        store.find_session("s1").await.expect("find_session"),
        Some(s1.clone())
    );
    assert_eq!(
        store.find_session("nope").await.expect("find_session"),
        None
    );
    let dup = store
        .create_session(new_session("s1", bob, 1_000, 10_000))
        .await;
    assert!(matches!(dup, Err(Error::Conflict(_))), "{dup:?}");
    let nobody = store
        .create_session(new_session("s0", 9_999_999, 1_000, 10_000))
        .await;
    assert!(
        matches!(nobody, Err(Error::MissingReference(_))),
        "{nobody:?}"
    );

    // Touching moves last_seen_at forward, never back; a missing session is no error.
    store.touch_session("s1", 3_000).await.expect("touch");
    store.touch_session("s1", 2_000).await.expect("touch");
    store.touch_session("nope", 3_000).await.expect("touch");
    let seen = store
        .find_session("s1")
        .await
        .expect("find_session")
        .expect("s1");
    assert_eq!(seen.last_seen_at, 3_000);
    assert_eq!(seen.created_at, 1_000);

    // Revoking is once: the first time stays.
    assert!(store.revoke_session("s1", 4_000).await.expect("revoke"));
    assert!(store.revoke_session("s1", 5_000).await.expect("revoke"));
    assert!(!store.revoke_session("nope", 4_000).await.expect("revoke"));
    let revoked = store
        .find_session("s1")
        .await
        .expect("find_session")
        .expect("a revoked session is still found");
    assert_eq!(revoked.revoked_at, Some(4_000));

    // All of a user's live sessions; the revoked one keeps its time, bob's stay.
    for (hash, user) in [("s2", alice), ("s3", alice), ("s4", bob)] {
        store
            .create_session(new_session(hash, user, 2_000, 20_000))
            .await
            .expect("create_session");
    }
    assert_eq!(
        store
            .revoke_user_sessions(alice, 6_000)
            .await
            .expect("revoke_user_sessions"),
        2
    );
    let revoked_at = |hash: &'static str| async move {
        store
            .find_session(hash)
            .await
            .expect("find_session")
            .expect("session")
            .revoked_at
    };
    assert_eq!(revoked_at("s1").await, Some(4_000));
    assert_eq!(revoked_at("s2").await, Some(6_000));
    assert_eq!(revoked_at("s3").await, Some(6_000));
    assert_eq!(revoked_at("s4").await, None);
    assert_eq!(
        store
            .revoke_user_sessions(alice, 7_000)
            .await
            .expect("revoke_user_sessions"),
        0
    );

    // Pruning at 5,000: s1 (revoked at 4,000) goes; s2 and s3 were revoked at 6,000, s4 and
    // s5 live on.
    store
        .create_session(new_session("s5", bob, 2_000, 5_000))
        .await
        .expect("create_session");
    assert_eq!(store.prune_sessions(5_000).await.expect("prune"), 1);
    assert_eq!(store.find_session("s1").await.expect("find_session"), None);
    assert!(store.find_session("s5").await.expect("find").is_some());
    // At 6,001: s2 and s3 (revoked at 6,000) and s5 (expired at 5,000) go.
    assert_eq!(store.prune_sessions(6_001).await.expect("prune"), 3);
    assert!(store.find_session("s4").await.expect("find").is_some());
    assert_eq!(store.prune_sessions(6_001).await.expect("prune"), 0);
}

/// A token or a session comes with its account and every binding of it, in one query; with no
/// binding, the account alone; an enrollment token (no account) and unknown hashes give none.
pub async fn credentials_come_with_their_account_and_roles(store: &dyn Store) {
    use crate::{BindingSource, NewToken, TokenKind};
    use shoal_types::access::Role;
    let alice = add_user(store, "alice").await;
    let ops = store.create_scope("ops", 1).await.expect("scope").id;
    let token = |name: &str, hash: &str, user_id: Option<i64>| NewToken {
        name: name.to_string(),
        kind: if user_id.is_some() {
            TokenKind::Api
        } else {
            TokenKind::Enroll
        },
        secret_hash: hash.to_string(),
        scope_id: shoal_types::DEFAULT_SCOPE,
        created_by: "admin".to_string(),
        created_at: 1,
        expires_at: None,
        user_id,
        read_only: true,
        only_scope_id: None,
    };
    let t = store
        .create_token(token("t", "h-alice", Some(alice.id)))
        .await
        .expect("token");
    store
        .create_token(token("e", "h-enroll", None))
        .await
        .expect("token");
    let found = store
        .token_account("h-alice")
        .await
        .expect("token_account")
        .expect("found");
    assert_eq!(
        (found.credential, found.user.clone()),
        (t.clone(), alice.clone())
    );
    assert!(found.bindings.is_empty());
    for (scope, role) in [
        (shoal_types::DEFAULT_SCOPE, Role::Viewer),
        (ops, Role::Owner),
    ] {
        store
            .put_binding(super::new_binding(
                alice.id,
                scope,
                role,
                BindingSource::Manual,
            ))
            .await
            .expect("binding");
    }
    let found = store
        .token_account("h-alice")
        .await
        .expect("token_account")
        .expect("found");
    let roles: Vec<_> = found
        .bindings
        .iter()
        .map(|b| (b.scope_id, b.role))
        .collect();
    assert_eq!(
        roles,
        vec![
            (shoal_types::DEFAULT_SCOPE, Role::Viewer),
            (ops, Role::Owner)
        ]
    );
    assert_eq!(found.user, alice, "one account, however many bindings");
    assert!(
        store
            .token_account("h-enroll")
            .await
            .expect("token_account")
            .is_none()
    );
    assert!(
        store
            .token_account("nope")
            .await
            .expect("token_account")
            .is_none()
    );
    let s = store
        .create_session(new_session("s-alice", alice.id, 1_000, 10_000))
        .await
        .expect("session");
    let found = store
        .session_account("s-alice")
        .await
        .expect("session_account")
        .expect("found");
    assert_eq!(found.credential, s);
    assert_eq!(found.bindings.len(), 2);
    assert!(
        store
            .session_account("nope")
            .await
            .expect("session_account")
            .is_none()
    );
}
