//! `shoal user ...` and `shoal role ...`, and naming accounts and scopes by name or id.

use crate::Ctx;
use crate::cli_access::{RoleCmd, UserCmd};
use crate::exit::{Exit, usage};
use crate::{output, prompt};
use shoal_client::{
    ChangePasswordRequest, CreateUserRequest, PutRoleBindingRequest, RoleBinding, ScopeId,
    UpdateUserRequest, User, UserKind,
};

/// An account id from a name or id (a name of digits only is read as an id).
pub async fn user_id(ctx: &Ctx, user: &str) -> anyhow::Result<i64> {
    let user = user.trim();
    if let Ok(id) = user.parse::<i64>() {
        return Ok(id);
    }
    let users = ctx.client.users().await?;
    users
        .iter()
        .find(|u| u.name == user)
        .map(|u| u.id)
        .ok_or_else(|| usage(format!("no account named {user:?} (see `shoal user list`)")))
}

/// A scope id from a name or id (a name of digits only is read as an id).
pub async fn scope_id(ctx: &Ctx, scope: &str) -> anyhow::Result<ScopeId> {
    let scope = scope.trim();
    if let Ok(id) = scope.parse::<ScopeId>() {
        return Ok(id);
    }
    let scopes = ctx.client.scopes().await?;
    scopes
        .iter()
        .find(|s| s.name == scope)
        .map(|s| s.id)
        .ok_or_else(|| usage(format!("no scope named {scope:?} that you may see")))
}

pub async fn user(ctx: &Ctx, cmd: UserCmd) -> anyhow::Result<Exit> {
    match cmd {
        UserCmd::List => {
            let users = ctx.client.users().await?;
            print_users(ctx, &users)?;
        }
        UserCmd::Show { user } => {
            let id = user_id(ctx, &user).await?;
            let u = ctx.client.user(id).await?;
            print_users(ctx, std::slice::from_ref(&u))?;
        }
        UserCmd::Create {
            name,
            service,
            admin,
            password_stdin,
            email,
            display_name,
        } => {
            let password = if password_stdin {
                Some(prompt::stdin_line("password")?)
            } else if !service && prompt::interactive() {
                prompt::new_password(&format!(
                    "Password for {name} (empty for none: sign-in by SSO only): "
                ))?
            } else {
                None
            };
            let has_password = password.is_some();
            let req = CreateUserRequest {
                name,
                display_name,
                email,
                kind: Some(if service {
                    UserKind::Service
                } else {
                    UserKind::User
                }),
                password,
                is_admin: admin,
            };
            let u = ctx.client.create_user(&req).await?;
            eprintln!("created {} {} (id {})", u.kind.as_str(), u.name, u.id);
            if service {
                eprintln!(
                    "give it a token with `shoal token create NAME --for {}`",
                    u.name
                );
            } else if !has_password {
                eprintln!(
                    "{} has no password: they sign in by SSO, or set one with `shoal user passwd {}`",
                    u.name, u.name
                );
            }
            print_users(ctx, std::slice::from_ref(&u))?;
        }
        UserCmd::Update {
            user,
            display_name,
            email,
            admin,
            no_admin,
        } => {
            let is_admin = match (admin, no_admin) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            if display_name.is_none() && email.is_none() && is_admin.is_none() {
                return Err(usage(
                    "nothing to change: give --display-name, --email, --admin or --no-admin",
                ));
            }
            let req = UpdateUserRequest {
                display_name,
                email,
                is_admin,
                ..Default::default()
            };
            update(ctx, &user, &req, "updated").await?;
        }
        UserCmd::Disable { user } => {
            let req = UpdateUserRequest {
                enabled: Some(false),
                ..Default::default()
            };
            update(ctx, &user, &req, "disabled").await?;
        }
        UserCmd::Enable { user } => {
            let req = UpdateUserRequest {
                enabled: Some(true),
                ..Default::default()
            };
            update(ctx, &user, &req, "enabled").await?;
        }
        UserCmd::Passwd {
            user,
            password_stdin,
        } => passwd(ctx, user, password_stdin).await?,
    }
    Ok(Exit::Ok)
}

async fn update(ctx: &Ctx, user: &str, req: &UpdateUserRequest, done: &str) -> anyhow::Result<()> {
    let id = user_id(ctx, user).await?;
    let u = ctx.client.update_user(id, req).await?;
    eprintln!("{done} {} (id {})", u.name, u.id);
    print_users(ctx, std::slice::from_ref(&u))
}

async fn passwd(ctx: &Ctx, user: Option<String>, from_stdin: bool) -> anyhow::Result<()> {
    let me = ctx.client.whoami().await?;
    let target = match &user {
        Some(u) => Some(user_id(ctx, u).await?).filter(|id| *id != me.user_id),
        None => None,
    };
    if !from_stdin && !prompt::interactive() {
        return Err(usage(
            "stdin is not a terminal: pass the password(s) on stdin with --password-stdin",
        ));
    }
    match target {
        Some(id) => {
            let new = if from_stdin {
                prompt::stdin_line("password")?
            } else {
                prompt::new_password("New password: ")?
                    .ok_or_else(|| usage("the password is empty"))?
            };
            let req = UpdateUserRequest {
                password: Some(new),
                ..Default::default()
            };
            let u = ctx.client.update_user(id, &req).await?;
            eprintln!("password of {} set; their console sessions ended", u.name);
        }
        None => {
            let (current, new) = if from_stdin {
                let mut lines = prompt::stdin_lines(&["the current password", "the new one"])?;
                let new = lines.pop().unwrap_or_default();
                (lines.pop().unwrap_or_default(), new)
            } else {
                let current = prompt::ask_secret("Current password: ")?;
                let new = prompt::new_password("New password: ")?
                    .ok_or_else(|| usage("the password is empty"))?;
                (current, new)
            };
            ctx.client
                .change_password(&ChangePasswordRequest { current, new })
                .await?;
            eprintln!(
                "password of {} changed; your other console sessions ended",
                me.name
            );
        }
    }
    output::print_done(ctx.json, serde_json::json!({"password_changed": true}))
}

fn print_users(ctx: &Ctx, users: &[User]) -> anyhow::Result<()> {
    if ctx.json {
        return output::print_json(users);
    }
    let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                u.id.to_string(),
                u.name.clone(),
                u.kind.as_str().to_string(),
                yes(u.is_admin),
                yes(u.enabled),
                u.source.clone(),
                yes(u.has_password),
                u.email.clone(),
                u.display_name.clone(),
            ]
        })
        .collect();
    output::stdout_str(&output::table(
        &[
            "ID",
            "NAME",
            "KIND",
            "ADMIN",
            "ENABLED",
            "SOURCE",
            "PASSWORD",
            "EMAIL",
            "DISPLAY NAME",
        ],
        &rows,
    ))
}

pub async fn role(ctx: &Ctx, cmd: RoleCmd) -> anyhow::Result<Exit> {
    match cmd {
        RoleCmd::List { scope, user } => {
            let scope_id = match &scope {
                Some(s) => Some(scope_id(ctx, s).await?),
                None => None,
            };
            let uid = match &user {
                Some(u) => Some(user_id(ctx, u).await?),
                None => None,
            };
            let bindings = ctx.client.role_bindings(scope_id, uid).await?;
            print_bindings(ctx, &bindings)?;
        }
        RoleCmd::Grant {
            user,
            role,
            scope,
            hosts,
        } => {
            let req = PutRoleBindingRequest {
                user_id: user_id(ctx, &user).await?,
                scope_id: scope_id(ctx, &scope).await?,
                role,
                host_selector: hosts.unwrap_or_default(),
            };
            let b = ctx.client.put_role_binding(&req).await?;
            eprintln!(
                "{} is {} in scope {} (binding {})",
                b.user_name, b.role, b.scope_id, b.id
            );
            print_bindings(ctx, std::slice::from_ref(&b))?;
        }
        RoleCmd::Revoke { binding_id } => {
            ctx.client.delete_role_binding(binding_id).await?;
            eprintln!("role binding {binding_id} removed");
            output::print_done(
                ctx.json,
                serde_json::json!({"binding_id": binding_id, "revoked": true}),
            )?;
        }
    }
    Ok(Exit::Ok)
}

fn print_bindings(ctx: &Ctx, bindings: &[RoleBinding]) -> anyhow::Result<()> {
    if ctx.json {
        return output::print_json(bindings);
    }
    let rows: Vec<Vec<String>> = bindings
        .iter()
        .map(|b| {
            vec![
                b.id.to_string(),
                b.user_name.clone(),
                b.scope_id.to_string(),
                b.role.to_string(),
                b.source.clone(),
                b.created_by.clone(),
                output::time(Some(b.created_at)),
                if b.host_selector.is_empty() {
                    "all".into()
                } else {
                    b.host_selector.clone()
                },
            ]
        })
        .collect();
    output::stdout_str(&output::table(
        &[
            "ID",
            "USER",
            "SCOPE",
            "ROLE",
            "SOURCE",
            "CREATED BY",
            "CREATED",
            "HOSTS",
        ],
        &rows,
    ))
}
