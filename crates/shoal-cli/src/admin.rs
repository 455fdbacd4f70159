//! `shoal token ...` and `shoal group ...`.

use crate::Ctx;
use crate::cli::{GroupCmd, TokenCmd};
use crate::exit::Exit;
use crate::output;
use shoal_client::{CreateTokenRequest, Group, GroupRequest};

pub async fn token(ctx: &Ctx, cmd: TokenCmd) -> anyhow::Result<Exit> {
    match cmd {
        TokenCmd::Create {
            name,
            kind,
            ttl,
            for_user,
            read_only,
            only_scope,
        } => {
            let user_id = match &for_user {
                Some(u) => Some(crate::users_cli::user_id(ctx, u).await?),
                None => None,
            };
            let only_scope_id = match &only_scope {
                Some(s) => Some(crate::users_cli::scope_id(ctx, s).await?),
                None => None,
            };
            let req = CreateTokenRequest {
                name,
                kind: Some(kind.as_str().to_string()),
                scope_id: None,
                ttl_secs: ttl,
                user_id,
                read_only,
                only_scope_id,
            };
            let resp = ctx.client.create_token(&req).await?;
            if ctx.json {
                output::print_json(&resp)?;
            } else {
                let expires = match resp.expires_at {
                    Some(t) => format!("expires {} UTC", output::time(Some(t))),
                    None => "does not expire".into(),
                };
                eprintln!(
                    "created {} token {} ({}), {expires}; the secret below is shown only once",
                    resp.kind, resp.id, resp.name
                );
                output::stdout_str(&format!("{}\n", resp.token))?;
            }
            Ok(Exit::Ok)
        }
        TokenCmd::List => {
            let tokens = ctx.client.tokens().await?;
            if ctx.json {
                output::print_json(&tokens)?;
                return Ok(Exit::Ok);
            }
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|t| {
                    vec![
                        t.id.to_string(),
                        t.kind.as_str().to_string(),
                        output::time(Some(t.created_at)),
                        output::time(t.expires_at),
                        output::time(t.revoked_at),
                        t.created_by.clone(),
                        t.name.clone(),
                    ]
                })
                .collect();
            let headers = [
                "ID",
                "KIND",
                "CREATED",
                "EXPIRES",
                "REVOKED",
                "CREATED BY",
                "NAME",
            ];
            output::stdout_str(&output::table(&headers, &rows))?;
            Ok(Exit::Ok)
        }
        TokenCmd::Revoke { id } => {
            ctx.client.revoke_token(id).await?;
            eprintln!("token {id} revoked");
            output::print_done(
                ctx.json,
                serde_json::json!({"token_id": id, "revoked": true}),
            )?;
            Ok(Exit::Ok)
        }
    }
}

pub async fn group(ctx: &Ctx, cmd: GroupCmd) -> anyhow::Result<Exit> {
    match cmd {
        GroupCmd::List => {
            let groups = ctx.client.groups(None).await?;
            print_groups(ctx, &groups)?;
        }
        GroupCmd::Create { name, selector } => {
            let req = GroupRequest {
                scope_id: None,
                name,
                selector,
            };
            let g = ctx.client.create_group(&req).await?;
            eprintln!("created group {}", g.id);
            print_groups(ctx, std::slice::from_ref(&g))?;
        }
        GroupCmd::Update { id, name, selector } => {
            let req = GroupRequest {
                scope_id: None,
                name,
                selector,
            };
            let g = ctx.client.update_group(id, &req).await?;
            eprintln!("updated group {}", g.id);
            print_groups(ctx, std::slice::from_ref(&g))?;
        }
        GroupCmd::Delete { id } => {
            ctx.client.delete_group(id).await?;
            eprintln!("deleted group {id}");
            output::print_done(
                ctx.json,
                serde_json::json!({"group_id": id, "deleted": true}),
            )?;
        }
    }
    Ok(Exit::Ok)
}

fn print_groups(ctx: &Ctx, groups: &[Group]) -> anyhow::Result<()> {
    if ctx.json {
        return output::print_json(groups);
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.id.to_string(),
                g.name.clone(),
                output::time(Some(g.updated_at)),
                g.selector.clone(),
            ]
        })
        .collect();
    output::stdout_str(&output::table(
        &["ID", "NAME", "UPDATED", "SELECTOR"],
        &rows,
    ))
}
