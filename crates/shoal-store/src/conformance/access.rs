//! Cases of [`AccessStore`](crate::AccessStore): scopes and tokens, and the backend's name.

use crate::conformance::add_user;
use crate::prelude::*;
use crate::{Error, NewToken, TokenKind, TokenRecord};
use shoal_types::DEFAULT_SCOPE;

/// `backend()` names one of the two backends.
pub async fn backend_is_named(store: &dyn Store) {
    assert!(
        ["sqlite", "postgres"].contains(&store.backend()),
        "{}",
        store.backend()
    );
}

/// The migration creates scope 1 "default"; new scopes get new ids; names are unique.
pub async fn scopes_default_and_create(store: &dyn Store) {
    let scopes = store.list_scopes().await.expect("list_scopes");
    assert_eq!(scopes.len(), 1);
    assert_eq!(scopes[0].id, DEFAULT_SCOPE);
    assert_eq!(scopes[0].name, "default");

    let ops = store
        .create_scope("ops", 5_000)
        .await
        .expect("create_scope");
    assert_ne!(ops.id, DEFAULT_SCOPE);
    assert_eq!(ops.name, "ops");
    assert_eq!(ops.created_at, 5_000);
    let scopes = store.list_scopes().await.expect("list_scopes");
    assert_eq!(scopes, vec![scopes[0].clone(), ops.clone()]);

    let dup = store.create_scope("ops", 6_000).await;
    assert!(matches!(dup, Err(Error::Conflict(_))), "{dup:?}");
}

fn new_token(name: &str, kind: TokenKind, hash: &str) -> NewToken {
    NewToken {
        name: name.to_string(),
        kind,
        secret_hash: hash.to_string(),
        scope_id: DEFAULT_SCOPE,
        created_by: "admin".to_string(),
        created_at: 1_000,
        expires_at: None,
        user_id: None,
        read_only: false,
        only_scope_id: None,
    }
}

/// Tokens are found by secret hash (revoked or not), listed in id order, revoked once.
pub async fn tokens_find_list_revoke(store: &dyn Store) {
    let api = store
        .create_token(new_token("ci", TokenKind::Api, "aaaa"))
        .await
        .expect("create_token");
    let mut enroll = new_token("agents", TokenKind::Enroll, "bbbb");
    enroll.expires_at = Some(9_000);
    let enroll = store.create_token(enroll).await.expect("create_token");
    assert_ne!(api.id, enroll.id);
    assert_eq!(api.kind, TokenKind::Api);
    assert_eq!(api.secret_hash, "aaaa");
    assert_eq!(api.revoked_at, None);
    assert_eq!(
        (
            api.user_id,
            api.read_only,
            api.only_scope_id,
            api.last_used_at
        ),
        (None, false, None, None)
    );
    assert_eq!(enroll.expires_at, Some(9_000));
    assert!(enroll.is_usable(8_999) && !enroll.is_usable(9_000));

    let dup = store
        .create_token(new_token("again", TokenKind::Api, "aaaa"))
        .await;
    assert!(matches!(dup, Err(Error::Conflict(_))), "{dup:?}");

    let found = store.find_token("bbbb").await.expect("find_token");
    assert_eq!(found.as_ref(), Some(&enroll));
    assert_eq!(store.find_token("cccc").await.expect("find_token"), None);
    assert_eq!(
        store.list_tokens().await.expect("list_tokens"),
        vec![api.clone(), enroll.clone()]
    );

    assert!(
        store
            .revoke_token(api.id, 2_000)
            .await
            .expect("revoke_token")
    );
    assert!(
        !store
            .revoke_token(9_999_999, 2_000)
            .await
            .expect("revoke_token")
    );
    let revoked = store
        .find_token("aaaa")
        .await
        .expect("find_token")
        .expect("still found");
    assert_eq!(revoked.revoked_at, Some(2_000));
    assert!(!revoked.is_usable(1_500));
    let untouched = store
        .find_token("bbbb")
        .await
        .expect("find_token")
        .expect("found");
    assert_eq!(untouched.revoked_at, None);
}

/// An API token carries its owner, read-only flag and scope restriction; touching records its
/// last use; revoking a user's tokens ends their live ones only, once.
pub async fn tokens_of_users_touch_and_revoke(store: &dyn Store) {
    let ops = store.create_scope("ops", 1).await.expect("create_scope").id;
    let alice = add_user(store, "alice").await.id;
    let bob = add_user(store, "bob").await.id;
    let mut t1 = new_token("alice-ro", TokenKind::Api, "t1");
    t1.user_id = Some(alice);
    t1.read_only = true;
    t1.only_scope_id = Some(ops);
    let t1 = store.create_token(t1).await.expect("create_token");
    assert_eq!(
        (t1.user_id, t1.read_only, t1.only_scope_id, t1.last_used_at),
        (Some(alice), true, Some(ops), None)
    );
    assert_eq!(
        store.find_token("t1").await.expect("find_token"),
        Some(t1.clone())
    );

    store.touch_token(t1.id, 5_000).await.expect("touch_token");
    let touched = store
        .find_token("t1")
        .await
        .expect("find_token")
        .expect("t1");
    assert_eq!(touched.last_used_at, Some(5_000));
    assert_eq!(
        touched,
        TokenRecord {
            last_used_at: Some(5_000),
            ..t1.clone()
        }
    );
    store
        .touch_token(9_999_999, 5_000)
        .await
        .expect("touching a missing token is no error");

    let mut t2 = new_token("alice-rw", TokenKind::Api, "t2");
    t2.user_id = Some(alice);
    store.create_token(t2).await.expect("create_token");
    let mut t3 = new_token("alice-old", TokenKind::Api, "t3");
    t3.user_id = Some(alice);
    let t3 = store.create_token(t3).await.expect("create_token");
    assert!(
        store
            .revoke_token(t3.id, 2_000)
            .await
            .expect("revoke_token")
    );
    let mut t4 = new_token("bob", TokenKind::Api, "t4");
    t4.user_id = Some(bob);
    store.create_token(t4).await.expect("create_token");

    assert_eq!(
        store
            .revoke_user_tokens(alice, 6_000)
            .await
            .expect("revoke_user_tokens"),
        2
    );
    let revoked_at = |hash: &'static str| async move {
        store
            .find_token(hash)
            .await
            .expect("find_token")
            .expect("token")
            .revoked_at
    };
    assert_eq!(revoked_at("t1").await, Some(6_000));
    assert_eq!(revoked_at("t2").await, Some(6_000));
    assert_eq!(revoked_at("t3").await, Some(2_000));
    assert_eq!(revoked_at("t4").await, None);
    assert_eq!(
        store
            .revoke_user_tokens(alice, 7_000)
            .await
            .expect("revoke_user_tokens"),
        0
    );

    let mut orphan = new_token("nobody", TokenKind::Api, "t5");
    orphan.user_id = Some(9_999_999);
    let orphan = store.create_token(orphan).await;
    assert!(
        matches!(orphan, Err(Error::MissingReference(_))),
        "{orphan:?}"
    );
    let mut unscoped = new_token("nowhere", TokenKind::Api, "t6");
    unscoped.only_scope_id = Some(9_999_999);
    let unscoped = store.create_token(unscoped).await;
    assert!(
        matches!(unscoped, Err(Error::MissingReference(_))),
        "{unscoped:?}"
    );
}
