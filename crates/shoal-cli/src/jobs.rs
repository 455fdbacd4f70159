//! `shoal job ...`: list, show, log, hosts, terminate, retry.

use crate::Ctx;
use crate::cli::JobCmd;
use crate::exit::{Exit, usage};
use crate::follow::{self, JobResults};
use crate::output;
use crate::parse::HostSpec;
use futures::StreamExt as _;
use shoal_client::{
    Client, HostId, HostQuery, JobDetail, JobQuery, LogQuery, LogResponseExt as _, RetryMode,
    StepId, StepType, TaskQuery,
};
use std::time::Duration;

/// Largest page the list endpoints return.
const PAGE: u64 = 1000;
/// Bytes asked for per log request.
const LOG_PAGE: u64 = 1024 * 1024;

pub async fn run(ctx: &Ctx, cmd: JobCmd) -> anyhow::Result<Exit> {
    match cmd {
        JobCmd::List {
            status,
            name,
            ip,
            operator,
            limit,
        } => {
            let query = JobQuery {
                status,
                name,
                ip,
                operator,
                ..Default::default()
            };
            list(ctx, query, limit).await
        }
        JobCmd::Show { job } => show(ctx, job).await,
        JobCmd::Log {
            job,
            host,
            step,
            attempt,
            follow,
        } => log(ctx, job, host, step, attempt, follow).await,
        JobCmd::Hosts {
            job,
            step,
            attempt,
            status,
            ip,
            keyword,
            limit,
        } => {
            let detail = ctx.client.job(job).await?;
            let step_id = pick_step(&detail, step)?;
            let query = TaskQuery {
                attempt,
                status,
                ip,
                keyword,
                ..Default::default()
            };
            hosts(ctx, step_id, query, limit).await
        }
        JobCmd::Terminate { job } => {
            ctx.client.terminate_job(job).await?;
            eprintln!("termination of job {job} requested");
            if ctx.json {
                let status = ctx.client.job(job).await?.job.status;
                output::print_done(
                    true,
                    serde_json::json!({
                        "job_instance_id": job,
                        "terminate_requested": true,
                        "status": status,
                    }),
                )?;
            }
            Ok(Exit::Ok)
        }
        JobCmd::Retry {
            job,
            all,
            step,
            wait,
        } => {
            let detail = ctx.client.job(job).await?;
            let step_id = pick_step(&detail, step)?;
            let mode = if all {
                RetryMode::All
            } else {
                RetryMode::Failed
            };
            let resp = ctx.client.retry_step(step_id, mode).await?;
            eprintln!(
                "step {} attempt {}: re-running {}",
                resp.step_instance_id,
                resp.attempt,
                output::count(resp.rerun_count, "host")
            );
            let file_step = detail
                .steps
                .iter()
                .any(|s| s.step.id == step_id && s.step.step_type == StepType::File);
            if wait && file_step {
                // A file step has no exit code: its report is the per-target file summary.
                return crate::launch::follow_and_report(ctx, job, crate::transfer::report).await;
            }
            if wait {
                return crate::launch::follow_and_report(ctx, job, crate::run::report).await;
            }
            if ctx.json {
                output::print_json(&resp)?;
            }
            Ok(Exit::Ok)
        }
    }
}

/// `--step`, which must belong to the job, or the job's first step.
pub fn pick_step(detail: &JobDetail, step: Option<StepId>) -> anyhow::Result<StepId> {
    match step {
        Some(sid) if detail.steps.iter().any(|s| s.step.id == sid) => Ok(sid),
        Some(sid) => Err(usage(format!(
            "step {sid} is not a step of job {}",
            detail.job.id
        ))),
        None => detail
            .steps
            .iter()
            .min_by_key(|s| s.step.ordinal)
            .map(|s| s.step.id)
            .ok_or_else(|| anyhow::anyhow!("job {} has no steps", detail.job.id)),
    }
}

async fn list(ctx: &Ctx, query: JobQuery, limit: u64) -> anyhow::Result<Exit> {
    let (jobs, total) = output::collect_pages(limit, |start, length| {
        let q = JobQuery {
            start: Some(start),
            length: Some(length),
            ..query.clone()
        };
        async move { ctx.client.jobs(&q).await }
    })
    .await?;
    if ctx.json {
        output::print_json(&jobs)?;
        return Ok(Exit::Ok);
    }
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            vec![
                j.id.to_string(),
                j.status.text().to_string(),
                j.host_count.to_string(),
                output::time(Some(j.created_at)),
                output::duration(j.started_at, j.ended_at),
                j.operator.clone(),
                j.name.clone(),
            ]
        })
        .collect();
    let headers = [
        "ID", "STATUS", "HOSTS", "CREATED", "TOOK", "OPERATOR", "NAME",
    ];
    output::stdout_str(&output::table(&headers, &rows))?;
    if total > jobs.len() as u64 {
        eprintln!("showing {} of {total} jobs (--limit)", jobs.len());
    }
    Ok(Exit::Ok)
}

async fn show(ctx: &Ctx, job_id: i64) -> anyhow::Result<Exit> {
    let detail = ctx.client.job(job_id).await?;
    let groups = follow::load_groups(&ctx.client, &detail).await?;
    if ctx.json {
        output::print_json(&JobResults {
            detail: &detail,
            groups,
        })?;
        return Ok(Exit::Ok);
    }
    let j = &detail.job;
    let mut text = format!(
        "job {}: {}\nstatus:   {}{}\noperator: {}\ncreated:  {}\nstarted:  {}\nended:    {}\ntook:     {}\nhosts:    {}\n",
        j.id,
        j.name,
        j.status.text(),
        if detail.finished {
            ""
        } else {
            " (not finished)"
        },
        j.operator,
        output::time(Some(j.created_at)),
        output::time(j.started_at),
        output::time(j.ended_at),
        output::duration(j.started_at, j.ended_at),
        j.host_count,
    );
    for sd in &detail.steps {
        let s = &sd.step;
        let counts: Vec<String> = sd
            .counts
            .iter()
            .filter(|c| c.count > 0)
            .map(|c| format!("{} {}", c.count, c.status.text()))
            .collect();
        text.push_str(&format!(
            "step {} (id {}): {}, {}, attempt {}, {}: {}\n",
            s.ordinal + 1,
            s.id,
            s.name,
            s.status.text(),
            s.attempt,
            output::count(s.host_count, "host"),
            counts.join(", ")
        ));
    }
    output::stdout_str(&text)?;
    follow::print_groups(&ctx.client, &detail, &groups, false).await?;
    Ok(Exit::Ok)
}

async fn hosts(ctx: &Ctx, step_id: StepId, query: TaskQuery, limit: u64) -> anyhow::Result<Exit> {
    let (rows, total) = output::collect_pages(limit, |start, length| {
        let q = TaskQuery {
            start: Some(start),
            length: Some(length),
            ..query.clone()
        };
        async move { ctx.client.step_hosts(step_id, &q).await }
    })
    .await?;
    if ctx.json {
        output::print_json(&rows)?;
        return Ok(Exit::Ok);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.host_id.to_string(),
                r.ip.clone(),
                r.hostname.clone(),
                r.status.text().to_string(),
                r.exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                output::duration(r.started_at, r.ended_at),
                format!(
                    "{}{}",
                    r.log_len,
                    if r.truncated { " (truncated)" } else { "" }
                ),
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let headers = [
        "HOST", "IP", "HOSTNAME", "STATUS", "EXIT", "TOOK", "LOG", "ERROR",
    ];
    output::stdout_str(&output::table(&headers, &table))?;
    if total > rows.len() as u64 {
        eprintln!("showing {} of {total} hosts (--limit)", rows.len());
    }
    Ok(Exit::Ok)
}

/// Finds the host a `--host` names among the step's hosts.
async fn resolve_host(
    client: &Client,
    step_id: StepId,
    attempt: Option<u32>,
    spec: &HostSpec,
) -> anyhow::Result<HostId> {
    let ip = match spec {
        HostSpec::Id(id) => return Ok(*id),
        HostSpec::Ip(ip) => ip,
    };
    let query = TaskQuery {
        attempt,
        ip: Some(ip.clone()),
        length: Some(PAGE as u32),
        ..Default::default()
    };
    let rows = client.step_hosts(step_id, &query).await?.data;
    let exact: Vec<HostId> = rows
        .iter()
        .filter(|r| &r.ip == ip)
        .map(|r| r.host_id)
        .collect();
    if let [id] = exact.as_slice() {
        return Ok(*id);
    }
    // The IP may be a host's secondary address: ask the inventory, which knows them all.
    let in_step: Vec<HostId> = rows.iter().map(|r| r.host_id).collect();
    let hosts = client
        .hosts(&HostQuery {
            ip: Some(ip.clone()),
            length: Some(PAGE as u32),
            ..Default::default()
        })
        .await?
        .data;
    let matches: Vec<HostId> = hosts
        .iter()
        .filter(|h| h.ips.iter().any(|i| i == ip) && in_step.contains(&h.id))
        .map(|h| h.id)
        .collect();
    match matches.as_slice() {
        [id] => Ok(*id),
        [] => Err(usage(format!("no host with IP {ip} in step {step_id}"))),
        many => Err(usage(format!(
            "several hosts of step {step_id} have IP {ip} (ids {many:?}); pass --host ID"
        ))),
    }
}

async fn log(
    ctx: &Ctx,
    job_id: i64,
    host: HostSpec,
    step: Option<StepId>,
    attempt: Option<u32>,
    follow: bool,
) -> anyhow::Result<Exit> {
    let detail = ctx.client.job(job_id).await?;
    let step_id = pick_step(&detail, step)?;
    let host_id = resolve_host(&ctx.client, step_id, attempt, &host).await?;
    // Events for this host wake the loop up; polling covers a broken or missing stream.
    let mut events = follow.then(|| ctx.client.job_events(job_id, Some(host_id)).boxed());
    let mut query = LogQuery {
        attempt,
        offset: Some(0),
        limit: Some(LOG_PAGE),
    };
    loop {
        let page = ctx.client.task_log(step_id, host_id, &query).await?;
        // Pin the attempt so that a retry meanwhile does not switch logs under us.
        query.attempt = Some(page.attempt);
        let bytes = page.bytes()?;
        if ctx.json {
            // One object per page (JSON lines), so that --follow streams too.
            if !bytes.is_empty() || page.finished || !follow {
                output::print_json_line(&page)?;
            }
        } else if !bytes.is_empty() {
            output::stdout_bytes(&bytes)?;
        }
        query.offset = Some(page.next_offset);
        if page.next_offset < page.total && !bytes.is_empty() {
            continue;
        }
        if !follow || page.finished {
            if page.truncated {
                eprintln!("shoal: the log was truncated at the server's output cap");
            }
            return Ok(Exit::Ok);
        }
        wait_for_change(&mut events).await?;
    }
}

/// Waits until the host's log may have grown: an event for it, or a short timeout. Ctrl-C keeps
/// its default action (the process ends; everything printed is already flushed).
async fn wait_for_change(events: &mut Option<EventStream>) -> anyhow::Result<()> {
    let Some(stream) = events else {
        tokio::time::sleep(Duration::from_millis(500)).await;
        return Ok(());
    };
    tokio::select! {
        ev = stream.next() => match ev {
            Some(Ok(_)) => {}
            Some(Err(e)) if e.is_auth() => return Err(e.into()),
            // Broken or closed: poll from now on.
            Some(Err(_)) | None => *events = None,
        },
        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
    }
    Ok(())
}

type EventStream =
    futures::stream::BoxStream<'static, shoal_client::Result<shoal_client::JobEvent>>;
