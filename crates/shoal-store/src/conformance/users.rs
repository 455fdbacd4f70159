//! Cases of [`UserStore`](crate::UserStore): accounts and role bindings (by hand and from
//! single sign-on); console sessions in `sessions`.

mod sessions;

pub use sessions::*;

use crate::prelude::*;
use crate::{BindingSource, Error, NewBinding, NewUser, RoleBinding, User, UserPatch};
use shoal_types::access::{Role, UserKind};
use shoal_types::{DEFAULT_SCOPE, ScopeId};

/// The id of the built-in admin the migration creates.
const ADMIN: i64 = 1;

pub fn new_user(name: &str) -> NewUser {
    NewUser {
        name: name.to_string(),
        display_name: format!("{name} display"),
        email: format!("{name}@example.com"),
        kind: UserKind::User,
        password_hash: Some(format!("$argon2id$hash-of-{name}")),
        is_admin: false,
        enabled: true,
        source: "local".to_string(),
        now: 1_000,
    }
}

pub async fn add_user(store: &dyn Store, name: &str) -> User {
    store
        .create_user(new_user(name))
        .await
        .expect("create_user")
}

pub fn new_binding(
    user_id: i64,
    scope_id: ScopeId,
    role: Role,
    source: BindingSource,
) -> NewBinding {
    NewBinding {
        user_id,
        scope_id,
        role,
        host_selector: String::new(),
        source,
        created_by: "admin".to_string(),
        now: 2_000,
    }
}

async fn put(store: &dyn Store, binding: NewBinding) -> RoleBinding {
    store.put_binding(binding).await.expect("put_binding")
}

async fn bindings(
    store: &dyn Store,
    user_id: Option<i64>,
    scope_id: Option<ScopeId>,
) -> Vec<RoleBinding> {
    store
        .list_bindings(user_id, scope_id)
        .await
        .expect("list_bindings")
}

/// The migration creates user 1, the enabled platform admin "admin" without a password; new
/// accounts get other ids.
pub async fn admin_user_exists_after_migration(store: &dyn Store) {
    let admin = store
        .get_user(ADMIN)
        .await
        .expect("get_user")
        .expect("admin exists");
    assert_eq!(admin.name, "admin");
    assert_eq!(admin.kind, UserKind::User);
    assert!(admin.is_admin && admin.enabled);
    assert_eq!(admin.password_hash, None);
    assert_eq!(admin.source, "local");
    assert_eq!(
        store.find_user("admin").await.expect("find_user"),
        Some(admin.clone())
    );
    assert_eq!(store.list_users().await.expect("list_users"), vec![admin]);

    let alice = add_user(store, "alice").await;
    assert_ne!(alice.id, ADMIN);
}

/// Users round-trip every field, are found by id and name, listed by id; a taken name is a
/// conflict; a patch changes only what it names.
pub async fn users_create_find_list_update(store: &dyn Store) {
    let alice = add_user(store, "alice").await;
    assert_eq!(
        alice,
        User {
            id: alice.id,
            name: "alice".to_string(),
            display_name: "alice display".to_string(),
            email: "alice@example.com".to_string(),
            kind: UserKind::User,
            password_hash: Some("$argon2id$hash-of-alice".to_string()),
            is_admin: false,
            enabled: true,
            source: "local".to_string(),
            created_at: 1_000,
            updated_at: 1_000,
        }
    );
    let mut svc = new_user("ci-bot");
    svc.kind = UserKind::Service;
    svc.password_hash = None;
    svc.source = "oidc".to_string();
    let svc = store.create_user(svc).await.expect("create_user");
    assert_eq!(svc.kind, UserKind::Service);
    assert_eq!(svc.password_hash, None);
    assert_eq!(svc.source, "oidc");
    assert!(alice.id < svc.id);

    assert_eq!(
        store.get_user(alice.id).await.expect("get_user"),
        Some(alice.clone())
    );
    assert_eq!(store.get_user(9_999_999).await.expect("get_user"), None);
    assert_eq!(
        store.find_user("ci-bot").await.expect("find_user"),
        Some(svc.clone())
    );
    assert_eq!(store.find_user("nobody").await.expect("find_user"), None);
    let names: Vec<String> = store
        .list_users()
        .await
        .expect("list_users")
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, vec!["admin", "alice", "ci-bot"]);

    // The conflict names the account, in words an API client can act on.
    let dup = store.create_user(new_user("alice")).await;
    assert!(
        matches!(&dup, Err(Error::Conflict(m)) if m.contains("\"alice\"")),
        "{dup:?}"
    );

    // One field: only it and `updated_at` change.
    let renamed = store
        .update_user(
            alice.id,
            UserPatch {
                display_name: Some("Alice A.".to_string()),
                ..UserPatch::default()
            },
            3_000,
        )
        .await
        .expect("update_user")
        .expect("alice exists");
    assert_eq!(
        renamed,
        User {
            display_name: "Alice A.".to_string(),
            updated_at: 3_000,
            ..alice.clone()
        }
    );
    // Every field at once; `Some(None)` removes the password.
    let patched = store
        .update_user(
            alice.id,
            UserPatch {
                display_name: None,
                email: Some("a@example.org".to_string()),
                enabled: Some(false),
                is_admin: Some(true),
                password_hash: Some(None),
            },
            4_000,
        )
        .await
        .expect("update_user")
        .expect("alice exists");
    assert_eq!(
        patched,
        User {
            email: "a@example.org".to_string(),
            enabled: false,
            is_admin: true,
            password_hash: None,
            updated_at: 4_000,
            ..renamed
        }
    );
    let with_password = store
        .update_user(
            alice.id,
            UserPatch {
                password_hash: Some(Some("$argon2id$new".to_string())),
                ..UserPatch::default()
            },
            5_000,
        )
        .await
        .expect("update_user")
        .expect("alice exists");
    assert_eq!(
        with_password.password_hash.as_deref(),
        Some("$argon2id$new")
    );
    assert_eq!(
        store.get_user(alice.id).await.expect("get_user"),
        Some(with_password)
    );
    assert_eq!(
        store
            .update_user(9_999_999, UserPatch::default(), 5_000)
            .await
            .expect("update_user"),
        None
    );
    // The other account is untouched.
    assert_eq!(store.get_user(svc.id).await.expect("get_user"), Some(svc));
}

/// `put_binding` creates, or replaces the role and selector of the binding with the same user,
/// scope and source; bindings list by user, by scope or both, by id; delete reports whether
/// there was one; an unknown user or scope is a missing reference.
pub async fn bindings_upsert_list_delete(store: &dyn Store) {
    let ops = store.create_scope("ops", 1).await.expect("create_scope").id;
    let alice = add_user(store, "alice").await.id;
    let bob = add_user(store, "bob").await.id;

    let a_default = put(
        store,
        new_binding(alice, DEFAULT_SCOPE, Role::Operator, BindingSource::Manual),
    )
    .await;
    assert_eq!(
        a_default,
        RoleBinding {
            id: a_default.id,
            user_id: alice,
            scope_id: DEFAULT_SCOPE,
            role: Role::Operator,
            host_selector: String::new(),
            source: BindingSource::Manual,
            created_by: "admin".to_string(),
            created_at: 2_000,
        }
    );
    let a_ops = put(
        store,
        new_binding(alice, ops, Role::Viewer, BindingSource::Manual),
    )
    .await;
    let b_default = put(
        store,
        new_binding(bob, DEFAULT_SCOPE, Role::Owner, BindingSource::Manual),
    )
    .await;
    // Same user and scope from another source: a binding of its own.
    let a_default_oidc = put(
        store,
        new_binding(alice, DEFAULT_SCOPE, Role::Viewer, BindingSource::Oidc),
    )
    .await;
    assert_ne!(a_default_oidc.id, a_default.id);

    // Same user, scope and source: the binding is replaced in place.
    let mut again = new_binding(alice, DEFAULT_SCOPE, Role::Developer, BindingSource::Manual);
    again.host_selector = "env=prod".to_string();
    again.created_by = "root".to_string();
    again.now = 3_000;
    let replaced = put(store, again).await;
    assert_eq!(replaced.id, a_default.id);
    assert_eq!(replaced.role, Role::Developer);
    assert_eq!(replaced.host_selector, "env=prod");
    assert_eq!(replaced.created_by, "root");

    assert_eq!(
        bindings(store, Some(alice), None).await,
        vec![replaced.clone(), a_ops.clone(), a_default_oidc.clone()]
    );
    assert_eq!(
        bindings(store, None, Some(DEFAULT_SCOPE)).await,
        vec![replaced.clone(), b_default.clone(), a_default_oidc.clone()]
    );
    assert_eq!(
        bindings(store, Some(alice), Some(ops)).await,
        vec![a_ops.clone()]
    );
    assert_eq!(bindings(store, Some(bob), Some(ops)).await, vec![]);
    assert_eq!(bindings(store, None, None).await.len(), 4);

    assert!(
        store
            .delete_binding(a_ops.id)
            .await
            .expect("delete_binding")
    );
    assert!(
        !store
            .delete_binding(a_ops.id)
            .await
            .expect("delete_binding")
    );
    assert_eq!(bindings(store, None, Some(ops)).await, vec![]);

    let no_user = store
        .put_binding(new_binding(
            9_999_999,
            ops,
            Role::Viewer,
            BindingSource::Manual,
        ))
        .await;
    assert!(
        matches!(no_user, Err(Error::MissingReference(_))),
        "{no_user:?}"
    );
    let no_scope = store
        .put_binding(new_binding(
            alice,
            9_999_999,
            Role::Viewer,
            BindingSource::Manual,
        ))
        .await;
    assert!(
        matches!(no_scope, Err(Error::MissingReference(_))),
        "{no_scope:?}"
    );
    assert_eq!(bindings(store, None, None).await.len(), 3);
}

/// `replace_oidc_bindings` swaps a user's single sign-on bindings in one transaction: bindings
/// set by hand and other users' stay, and a failing replacement changes nothing.
pub async fn oidc_replacement_keeps_manual_bindings(store: &dyn Store) {
    let ops = store.create_scope("ops", 1).await.expect("create_scope").id;
    let dev = store.create_scope("dev", 1).await.expect("create_scope").id;
    let alice = add_user(store, "alice").await.id;
    let bob = add_user(store, "bob").await.id;
    let manual = put(
        store,
        new_binding(alice, DEFAULT_SCOPE, Role::Owner, BindingSource::Manual),
    )
    .await;
    let bob_oidc = put(
        store,
        new_binding(bob, ops, Role::Viewer, BindingSource::Oidc),
    )
    .await;
    store
        .replace_oidc_bindings(
            alice,
            vec![
                new_binding(alice, DEFAULT_SCOPE, Role::Viewer, BindingSource::Oidc),
                new_binding(alice, ops, Role::Operator, BindingSource::Oidc),
            ],
        )
        .await
        .expect("replace_oidc_bindings");
    let roles = |list: Vec<RoleBinding>| -> Vec<(ScopeId, Role, BindingSource)> {
        list.into_iter()
            .map(|b| (b.scope_id, b.role, b.source))
            .collect()
    };
    assert_eq!(
        roles(bindings(store, Some(alice), None).await),
        vec![
            (DEFAULT_SCOPE, Role::Owner, BindingSource::Manual),
            (DEFAULT_SCOPE, Role::Viewer, BindingSource::Oidc),
            (ops, Role::Operator, BindingSource::Oidc),
        ]
    );

    // The next login maps other groups: the old single sign-on bindings go.
    store
        .replace_oidc_bindings(
            alice,
            vec![new_binding(
                alice,
                dev,
                Role::Developer,
                BindingSource::Oidc,
            )],
        )
        .await
        .expect("replace_oidc_bindings");
    assert_eq!(
        roles(bindings(store, Some(alice), None).await),
        vec![
            (DEFAULT_SCOPE, Role::Owner, BindingSource::Manual),
            (dev, Role::Developer, BindingSource::Oidc),
        ]
    );
    assert_eq!(bindings(store, Some(alice), None).await[0], manual);

    // A replacement naming an unknown scope fails as a whole.
    let failed = store
        .replace_oidc_bindings(
            alice,
            vec![
                new_binding(alice, ops, Role::Viewer, BindingSource::Oidc),
                new_binding(alice, 9_999_999, Role::Viewer, BindingSource::Oidc),
            ],
        )
        .await;
    assert!(
        matches!(failed, Err(Error::MissingReference(_))),
        "{failed:?}"
    );
    // So does one that is not all single sign-on bindings of that user.
    let failed = store
        .replace_oidc_bindings(
            alice,
            vec![new_binding(alice, ops, Role::Viewer, BindingSource::Manual)],
        )
        .await;
    assert!(failed.is_err(), "{failed:?}");
    let failed = store
        .replace_oidc_bindings(
            alice,
            vec![new_binding(bob, ops, Role::Viewer, BindingSource::Oidc)],
        )
        .await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(
        roles(bindings(store, Some(alice), None).await),
        vec![
            (DEFAULT_SCOPE, Role::Owner, BindingSource::Manual),
            (dev, Role::Developer, BindingSource::Oidc),
        ]
    );

    // No groups any more: only the manual binding is left; bob's are untouched.
    store
        .replace_oidc_bindings(alice, Vec::new())
        .await
        .expect("replace_oidc_bindings");
    assert_eq!(bindings(store, Some(alice), None).await, vec![manual]);
    assert_eq!(bindings(store, Some(bob), None).await, vec![bob_oidc]);
}
