//! Signing in with single sign-on: the provider (discovered once, again on the next attempt
//! if it was unreachable), and turning a verified identity into an account. An account is
//! created at its first sign-in (`source` `oidc`, no password); at every sign-in its platform
//! admin flag and its single sign-on role bindings follow the group claims (`--oidc-group-role`),
//! while bindings set by hand stay. A local account with the same name is never taken over.

use crate::app::App;
use crate::audit;
use crate::clock::now_ms;
use crate::oidc::{Identity, Oidc};
use shoal_store::{BindingSource, NewAuditEvent, NewBinding, NewUser, User, UserPatch};
use shoal_types::access::UserKind;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("single sign-on is not configured on this server")]
    NotConfigured,
    #[error("the single sign-on provider cannot be reached: {0}")]
    Unreachable(String),
    #[error("single sign-on failed: {0}")]
    Refused(String),
    #[error("an account named {0:?} exists and does not sign in with single sign-on; ask an admin")]
    NameTaken(String),
    #[error("the account {0:?} is disabled")]
    Disabled(String),
    #[error(transparent)]
    Store(#[from] shoal_store::Error),
}

/// The provider, discovering it now if that has not succeeded yet.
pub async fn provider(app: &App) -> Result<Arc<Oidc>, Error> {
    let Some(opts) = app.opts.oidc.clone() else {
        return Err(Error::NotConfigured);
    };
    let mut slot = app.oidc.lock().await;
    if let Some(o) = slot.as_ref() {
        return Ok(o.clone());
    }
    let oidc = Oidc::discover(opts)
        .await
        .map_err(|e| Error::Unreachable(e.to_string()))?;
    let oidc = Arc::new(oidc);
    *slot = Some(oidc.clone());
    Ok(oidc)
}

/// Finishes a sign-in the provider sent back: the account, created or updated. Every attempt
/// is an audit record (`auth.login`, detail `sso`).
pub async fn sign_in(app: &App, state: &str, code: &str, address: &str) -> Result<User, Error> {
    let record = |outcome: &str, name: &str, user: Option<&User>, detail: String| NewAuditEvent {
        actor: user.map_or_else(String::new, |u| u.name.clone()),
        actor_kind: if user.is_some() { "user" } else { "anonymous" }.to_string(),
        user_id: user.map(|u| u.id),
        address: address.to_string(),
        origin: "web".to_string(),
        action: super::signin::LOGIN_ACTION.to_string(),
        resource: if name.is_empty() {
            String::new()
        } else {
            format!("user:{name}")
        },
        outcome: outcome.to_string(),
        detail,
        ..Default::default()
    };
    let oidc = provider(app).await?;
    let identity = match oidc.finish(state, code).await {
        Ok(i) => i,
        Err(e) => {
            audit::record(app, record("failed", "", None, format!("sso: {e}"))).await;
            return Err(Error::Refused(e.to_string()));
        }
    };
    match account(app, &oidc, &identity).await {
        Ok(user) => {
            audit::record(app, record("ok", &user.name, Some(&user), "sso".into())).await;
            Ok(user)
        }
        Err(e) => {
            audit::record(
                app,
                record("failed", &identity.username, None, format!("sso: {e}")),
            )
            .await;
            Err(e)
        }
    }
}

async fn account(app: &App, oidc: &Oidc, id: &Identity) -> Result<User, Error> {
    let now = now_ms();
    let (admin, grants) = oidc.grants_for(&id.groups);
    let user = match app.store.find_user(&id.username).await? {
        Some(u) if u.source != "oidc" => return Err(Error::NameTaken(u.name)),
        Some(u) if !u.enabled => return Err(Error::Disabled(u.name)),
        Some(u) => app
            .store
            .update_user(
                u.id,
                UserPatch {
                    display_name: Some(id.display_name.clone()),
                    email: Some(id.email.clone()),
                    is_admin: Some(admin),
                    ..Default::default()
                },
                now,
            )
            .await?
            .ok_or_else(|| shoal_store::Error::NotFound(format!("account {}", u.id)))?,
        None => {
            app.store
                .create_user(NewUser {
                    name: id.username.clone(),
                    display_name: id.display_name.clone(),
                    email: id.email.clone(),
                    kind: UserKind::User,
                    password_hash: None,
                    is_admin: admin,
                    enabled: true,
                    source: "oidc".to_string(),
                    now,
                })
                .await?
        }
    };
    let scopes = app.store.list_scopes().await?;
    let mut bindings = Vec::new();
    for (scope_name, role, selector) in grants {
        let Some(scope) = scopes.iter().find(|s| s.name == scope_name) else {
            tracing::warn!(scope = %scope_name, user = %user.name,
                "a single sign-on group maps to a scope that does not exist");
            continue;
        };
        bindings.push(NewBinding {
            user_id: user.id,
            scope_id: scope.id,
            role,
            host_selector: selector,
            source: BindingSource::Oidc,
            created_by: "sso".to_string(),
            now,
        });
    }
    app.store.replace_oidc_bindings(user.id, bindings).await?;
    Ok(user)
}
