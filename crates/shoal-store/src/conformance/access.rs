//! Cases of [`AccessStore`](crate::AccessStore): scopes and tokens, and the backend's name.

use crate::prelude::*;
use crate::{Error, NewToken, TokenKind};
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
