//! `shoal login`, `shoal logout` and `shoal whoami`: signing in for a personal token, storing
//! it (see [`crate::credentials`]), revoking it, and showing who a token acts for.

use crate::Ctx;
use crate::cli::Global;
use crate::cli_access::LoginArgs;
use crate::credentials::{self, Entry};
use crate::exit::{Exit, usage};
use crate::{output, prompt};
use shoal_client::{LoginRequest, WhoAmI};

/// Marks a failed password sign-in, for its own hint (`exit::hint_for`).
#[derive(Debug)]
pub struct SignInFailed(pub String);

impl std::fmt::Display for SignInFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot sign in as {}", self.0)
    }
}

pub const SSO_HINT: &str = "single sign-on users: create a personal token in the console (user \
     menu, tokens) and run `shoal login --token-stdin` with it on stdin";

fn token_name() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into());
    format!("cli@{host}")
}

pub async fn login(global: &Global, args: LoginArgs) -> anyhow::Result<Exit> {
    let server = credentials::normalize(&global.server);
    let anonymous = crate::client_with(global, None)?;
    let previous = credentials::load(&server)?;
    let (token, token_id) = if args.token_stdin {
        let token = prompt::stdin_line("token")?.trim().to_string();
        (token, None)
    } else {
        let name = match args.user {
            Some(n) => n.trim().to_string(),
            None if prompt::interactive() => {
                if let Ok(config) = anonymous.auth_config().await
                    && let Some(sso) = config.sso
                {
                    eprintln!("{} is also available: {SSO_HINT}", sso.label);
                }
                prompt::ask("User name: ")?
            }
            None => {
                return Err(usage(
                    "stdin is not a terminal: give the account with --user NAME",
                ));
            }
        };
        if name.is_empty() {
            return Err(usage("the account name is empty"));
        }
        let password = if args.password_stdin {
            prompt::stdin_line("password")?
        } else if prompt::interactive() {
            prompt::ask_secret(&format!("Password for {name}: "))?
        } else {
            return Err(usage(
                "stdin is not a terminal: pass the password on stdin with --password-stdin",
            ));
        };
        let req = LoginRequest {
            name: name.clone(),
            password,
            token_name: Some(token_name()),
            ttl_secs: args.ttl,
        };
        let resp = anonymous
            .login_token(&req)
            .await
            .map_err(|e| anyhow::Error::new(e).context(SignInFailed(name)))?;
        (resp.token, Some(resp.id))
    };
    let client = anonymous.with_token(Some(token.clone()));
    let who = client.whoami().await?;
    let token_id = token_id.or(who.token_id);
    let path = credentials::save(Entry {
        server: server.clone(),
        token,
        token_id,
        user: who.name.clone(),
    })?;
    // The token this login replaces is of no more use: revoke it (best effort).
    if let Some(old) = previous
        && old.token_id.is_some()
        && old.token_id != token_id
        && let Some(id) = old.token_id
    {
        let _ = anonymous.with_token(Some(old.token)).revoke_token(id).await;
    }
    eprintln!(
        "signed in to {server} as {}; token {} stored in {}",
        who.name,
        token_id.map_or_else(|| "-".to_string(), |i| i.to_string()),
        path.display()
    );
    print_whoami(global.json, &who)?;
    Ok(Exit::Ok)
}

pub async fn logout(global: &Global) -> anyhow::Result<Exit> {
    let server = credentials::normalize(&global.server);
    let Some(entry) = credentials::load(&server)? else {
        eprintln!("not signed in to {server}: no stored token");
        output::print_done(global.json, serde_json::json!({"logged_out": false}))?;
        return Ok(Exit::Ok);
    };
    let client = crate::client_with(global, Some(entry.token.clone()))?;
    let token_id = match entry.token_id {
        Some(id) => Some(id),
        None => match client.whoami().await {
            Ok(w) => w.token_id,
            Err(e) if e.is_auth() => None,
            Err(e) => return Err(kept(e)),
        },
    };
    let revoked = match token_id {
        Some(id) => match client.revoke_token(id).await {
            Ok(()) => true,
            // Already expired or revoked: nothing left to revoke.
            Err(e) if e.status() == Some(401) || e.status() == Some(404) => false,
            Err(e) => return Err(kept(e)),
        },
        None => false,
    };
    credentials::remove(&server)?;
    if revoked {
        eprintln!(
            "signed out of {server}: token {} revoked and forgotten",
            token_id.unwrap_or_default()
        );
    } else {
        eprintln!("signed out of {server}: the stored token no longer worked; forgotten");
    }
    output::print_done(
        global.json,
        serde_json::json!({"logged_out": true, "token_id": token_id, "revoked": revoked}),
    )?;
    Ok(Exit::Ok)
}

/// The error of a logout that could not revoke the token: the file stays.
fn kept(e: shoal_client::Error) -> anyhow::Error {
    anyhow::Error::new(e).context(
        "cannot revoke the stored token, so it is kept; try again, or delete the credentials \
         file to forget it (the token then stays valid until it expires)",
    )
}

pub async fn whoami(ctx: &Ctx) -> anyhow::Result<Exit> {
    let who = ctx.client.whoami().await?;
    print_whoami(ctx.json, &who)?;
    Ok(Exit::Ok)
}

fn print_whoami(json: bool, who: &WhoAmI) -> anyhow::Result<()> {
    if json {
        return output::print_json(who);
    }
    let mut out = String::new();
    let display = if who.display_name.is_empty() {
        String::new()
    } else {
        format!(" ({})", who.display_name)
    };
    out.push_str(&format!(
        "account:  {}{display}, id {}, {}{}\n",
        who.name,
        who.user_id,
        who.kind.as_str(),
        if who.is_admin { ", platform admin" } else { "" }
    ));
    let mut via = who.via.clone();
    if let Some(id) = who.token_id {
        via.push_str(&format!(" {id}"));
    }
    if who.read_only {
        via.push_str(", read-only");
    }
    if let Some(s) = who.only_scope_id {
        via.push_str(&format!(", only scope {s}"));
    }
    out.push_str(&format!("via:      {via}\n"));
    if who.scopes.is_empty() {
        out.push_str("scopes:   none (ask a scope owner or an admin for a role)\n");
    } else {
        out.push('\n');
        let rows: Vec<Vec<String>> = who
            .scopes
            .iter()
            .map(|s| {
                vec![
                    s.scope_id.to_string(),
                    s.scope_name.clone(),
                    s.role.map_or_else(|| "-".to_string(), |r| r.to_string()),
                    if s.host_selector.is_empty() {
                        "all".to_string()
                    } else {
                        s.host_selector.clone()
                    },
                    s.permissions
                        .iter()
                        .map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ]
            })
            .collect();
        out.push_str(&output::table(
            &["SCOPE", "NAME", "ROLE", "HOSTS", "PERMISSIONS"],
            &rows,
        ));
    }
    output::stdout_str(&out)
}
