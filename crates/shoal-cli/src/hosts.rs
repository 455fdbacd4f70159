//! `shoal hosts ...`: list, show, label, revoke.

use crate::Ctx;
use crate::cli::{HostListArgs, HostsArgs, HostsCmd};
use crate::exit::Exit;
use crate::output;
use crate::parse::LabelEdit;
use shoal_client::{Host, HostQuery, Labels};

pub async fn run(ctx: &Ctx, args: HostsArgs) -> anyhow::Result<Exit> {
    match args.cmd {
        None => list(ctx, args.list).await,
        Some(HostsCmd::List(list_args)) => list(ctx, list_args).await,
        Some(HostsCmd::Show { id }) => {
            let host = ctx.client.host(id).await?;
            if ctx.json {
                output::print_json(&host)?;
            } else {
                output::stdout_str(&describe(&host))?;
            }
            Ok(Exit::Ok)
        }
        Some(HostsCmd::Label { id, edits, replace }) => {
            let current = if replace {
                Labels::new()
            } else {
                ctx.client.host(id).await?.user_labels
            };
            let labels = apply_edits(current, &edits);
            ctx.client.set_host_labels(id, labels).await?;
            let host = ctx.client.host(id).await?;
            if ctx.json {
                output::print_json(&host)?;
            } else {
                eprintln!("host {id}: user labels set");
                output::stdout_str(&format!("{}\n", output::labels(&host.labels)))?;
            }
            Ok(Exit::Ok)
        }
        Some(HostsCmd::Revoke { id }) => {
            ctx.client.revoke_host(id).await?;
            eprintln!("host {id}: agent credentials revoked");
            output::print_done(
                ctx.json,
                serde_json::json!({"host_id": id, "revoked": true}),
            )?;
            Ok(Exit::Ok)
        }
    }
}

/// Applies `k=v` and `k-` edits, in order, to a label map.
pub fn apply_edits(mut labels: Labels, edits: &[LabelEdit]) -> Labels {
    for e in edits {
        match e {
            LabelEdit::Set(k, v) => {
                labels.insert(k.clone(), v.clone());
            }
            LabelEdit::Remove(k) => {
                labels.remove(k);
            }
        }
    }
    labels
}

async fn list(ctx: &Ctx, args: HostListArgs) -> anyhow::Result<Exit> {
    let query = HostQuery {
        status: args.status,
        ip: args.ip,
        q: args.search,
        selector: args.label,
        group_id: args.group,
        ..Default::default()
    };
    let (hosts, total) = output::collect_pages(args.limit, |start, length| {
        let q = HostQuery {
            start: Some(start),
            length: Some(length),
            ..query.clone()
        };
        async move { ctx.client.hosts(&q).await }
    })
    .await?;
    if ctx.json {
        output::print_json(&hosts)?;
        return Ok(Exit::Ok);
    }
    let rows: Vec<Vec<String>> = hosts
        .iter()
        .map(|h| {
            vec![
                h.id.to_string(),
                h.ip.clone(),
                h.hostname.clone(),
                h.status.name().to_string(),
                format!("{} {}", h.os, h.os_version).trim().to_string(),
                output::labels(&h.labels),
            ]
        })
        .collect();
    let headers = ["ID", "IP", "HOSTNAME", "STATUS", "OS", "LABELS"];
    output::stdout_str(&output::table(&headers, &rows))?;
    if total > hosts.len() as u64 {
        eprintln!("showing {} of {total} hosts (--limit)", hosts.len());
    }
    Ok(Exit::Ok)
}

fn describe(h: &Host) -> String {
    let revoked = h
        .revoked_at
        .map(|t| format!("revoked:       {}\n", output::time(Some(t))))
        .unwrap_or_default();
    format!(
        "id:            {}\nhostname:      {}\nip:            {}\nips:           {}\nstatus:        {}\n\
         os:            {} {} ({})\nagent:         {} (id {})\nlabels:        {}\n\
         agent labels:  {}\nuser labels:   {}\nlast seen:     {}\ncreated:       {}\n{revoked}",
        h.id,
        h.hostname,
        h.ip,
        h.ips.join(", "),
        h.status.name(),
        h.os,
        h.os_version,
        h.arch,
        h.agent_version,
        h.agent_id,
        output::labels(&h.labels),
        output::labels(&h.agent_labels),
        output::labels(&h.user_labels),
        output::time(h.last_seen),
        output::time(Some(h.created_at)),
    )
}

#[cfg(test)]
mod tests {
    //! Pins label editing: sets and removals apply in order over the current user labels.
    use super::*;

    #[test]
    fn edits_apply_in_order() {
        let mut cur = Labels::new();
        cur.insert("a".into(), "1".into());
        cur.insert("b".into(), "2".into());
        let edits = [
            LabelEdit::Set("c".into(), "3".into()),
            LabelEdit::Remove("a".into()),
            LabelEdit::Set("b".into(), "x".into()),
            LabelEdit::Remove("missing".into()),
        ];
        let got = apply_edits(cur, &edits);
        assert_eq!(output::labels(&got), "b=x,c=3");
    }
}
