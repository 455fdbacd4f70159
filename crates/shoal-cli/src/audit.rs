//! `shoal audit list` (a table, or JSON) and `shoal audit export` (JSON lines, streamed).

use crate::Ctx;
use crate::cli_access::{AuditCmd, AuditFilterArgs};
use crate::exit::Exit;
use crate::output;
use futures::StreamExt as _;
use shoal_client::{AuditQuery, AuditRecord};

/// Most records the server returns per page.
const PAGE: u64 = 1000;

async fn query(ctx: &Ctx, f: AuditFilterArgs) -> anyhow::Result<AuditQuery> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let scope_id = match &f.scope {
        Some(s) => Some(crate::users_cli::scope_id(ctx, s).await?),
        None => None,
    };
    Ok(AuditQuery {
        from: crate::when::from(f.since, f.from, now),
        to: f.to,
        actor: f.actor,
        action: f.action,
        scope_id,
        resource: f.resource,
        outcome: f.outcome,
        address: f.address,
        before_id: None,
        limit: None,
    })
}

pub async fn run(ctx: &Ctx, cmd: AuditCmd) -> anyhow::Result<Exit> {
    match cmd {
        AuditCmd::List { filter, limit, all } => {
            let mut q = query(ctx, filter).await?;
            let want = if all { u64::MAX } else { limit };
            let mut records: Vec<AuditRecord> = Vec::new();
            loop {
                let left = want - records.len() as u64;
                q.limit = Some(left.min(PAGE) as u32);
                let page = ctx.client.audit(&q).await?;
                records.extend(page.data);
                match page.next_before_id {
                    Some(id) if (records.len() as u64) < want => q.before_id = Some(id),
                    _ => break,
                }
            }
            print_records(ctx, &records)?;
        }
        AuditCmd::Export { filter } => {
            let q = query(ctx, filter).await?;
            let mut lines = ctx.client.audit_export(&q).await?;
            let mut n: u64 = 0;
            while let Some(line) = lines.next().await {
                let mut line = line?;
                line.push('\n');
                output::stdout_str(&line)?;
                n += 1;
            }
            eprintln!("exported {}", output::count(n, "record"));
        }
    }
    Ok(Exit::Ok)
}

fn print_records(ctx: &Ctx, records: &[AuditRecord]) -> anyhow::Result<()> {
    if ctx.json {
        return output::print_json(records);
    }
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                output::time(Some(r.at)),
                dash(&r.actor),
                dash(&r.address),
                r.scope_id
                    .map_or_else(|| "-".to_string(), |s| s.to_string()),
                r.action.clone(),
                dash(&r.resource),
                r.outcome.clone(),
                r.detail.clone(),
            ]
        })
        .collect();
    output::stdout_str(&output::table(
        &[
            "ID",
            "TIME (UTC)",
            "ACTOR",
            "ADDRESS",
            "SCOPE",
            "ACTION",
            "RESOURCE",
            "OUTCOME",
            "DETAIL",
        ],
        &rows,
    ))
}
