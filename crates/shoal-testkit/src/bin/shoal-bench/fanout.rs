//! Fan-out: a release server with `shoal-agent simulate --count N` on loopback; a no-op script
//! job on every host, timed from sending the API call to the job being finished with every host
//! result persisted (a tight 5 ms poll of `GET /jobs/{id}`).

use crate::report::{Row, Stats, Unit};
use anyhow::Context;
use shoal_testkit::api::{Api, shell};
use shoal_testkit::sandbox::{Bins, Sandbox, SandboxOptions, proc_status_kib};
use shoal_types::api::JobEvent;
use shoal_types::{HostId, HostTaskStatus};
use std::time::{Duration, Instant};

/// How the bench learns that a job has finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Wait {
    /// `GET /api/v1/jobs/{id}` every 5 ms until `finished`.
    Poll,
    /// The job's server-sent events, until the job reaches a final status.
    Sse,
}

pub struct Params {
    pub wait: Wait,
    pub hosts: usize,
    pub database_url: Option<String>,
    pub backend: String,
    pub repeat: usize,
    pub bins: Bins,
}

/// What one fan-out configuration measured.
struct Figures {
    finish: Vec<Duration>,
    first_dispatch: Vec<f64>,
    all_dispatched: Vec<f64>,
    connect: Duration,
    server_hwm_bytes: Option<f64>,
    fleet_rss_bytes: Option<f64>,
}

/// Runs one configuration and turns it into report rows (errors become rows too).
pub async fn rows(p: Params) -> Vec<Row> {
    let setup = format!("{}, {} hosts", p.backend, p.hosts);
    match measure(&p).await {
        Ok(f) => {
            let finish = Stats::of_durations(&f.finish).ok_or_else(|| "no runs".to_owned());
            let first = Stats::of(&f.first_dispatch)
                .ok_or_else(|| "server exposes no shoal_dispatch_first_seconds".to_owned());
            let all = Stats::of(&f.all_dispatched)
                .ok_or_else(|| "server exposes no shoal_dispatch_all_seconds".to_owned());
            let mut finish_row = Row::new(
                "fan-out: API call -> job finished",
                &setup,
                Unit::Seconds,
                finish,
            );
            if p.hosts == 10_000 && p.backend == "sqlite" {
                finish_row = finish_row.target(3.0);
            }
            let bytes = |v: Option<f64>, what: &str| {
                v.and_then(|b| Stats::of(&[b]))
                    .ok_or_else(|| format!("could not read {what}"))
            };
            let mut rss_row = Row::new(
                "server peak RSS (VmHWM), agents connected",
                &setup,
                Unit::Bytes,
                bytes(f.server_hwm_bytes, "the server's VmHWM"),
            );
            if p.hosts == 10_000 {
                rss_row = rss_row.target(1024.0 * 1024.0 * 1024.0);
            }
            vec![
                finish_row,
                Row::new("time to first dispatch", &setup, Unit::Seconds, first).target(0.2),
                Row::new("time to dispatch all hosts", &setup, Unit::Seconds, all),
                Row::new(
                    "all simulated agents online after fleet start",
                    &setup,
                    Unit::Seconds,
                    Stats::of_durations(&[f.connect]).ok_or_else(String::new),
                ),
                rss_row,
                Row::new(
                    "simulator RSS (whole fleet process)",
                    &setup,
                    Unit::Bytes,
                    bytes(f.fleet_rss_bytes, "the simulator's VmRSS"),
                ),
            ]
        }
        Err(e) => vec![Row::new(
            "fan-out",
            &setup,
            Unit::Seconds,
            Err(format!("{e:#}")),
        )],
    }
}

async fn measure(p: &Params) -> anyhow::Result<Figures> {
    let mut sb = Sandbox::start(SandboxOptions {
        database_url: p.database_url.clone(),
        bins: Some(p.bins.clone()),
        agent_lost_grace_secs: 60,
        ..SandboxOptions::default()
    })
    .await?;
    let started = Instant::now();
    let fleet_pid = sb.start_sim_fleet(p.hosts, &[])?;
    let connect_timeout = Duration::from_secs(60 + p.hosts as u64 / 20);
    let hosts = sb.wait_hosts_online(p.hosts, connect_timeout).await?;
    let connect = started.elapsed();
    let ids: Vec<HostId> = hosts.iter().map(|h| h.id).collect();
    eprintln!(
        "  {} hosts online after {:.1} s",
        ids.len(),
        connect.as_secs_f64()
    );
    let api = sb.api();

    // One warm-up run, not counted.
    let client = sb.client();
    run_once(&api, &client, p.wait, &ids)
        .await
        .context("warm-up run")?;
    let mut f = Figures {
        finish: Vec::new(),
        first_dispatch: Vec::new(),
        all_dispatched: Vec::new(),
        connect,
        server_hwm_bytes: None,
        fleet_rss_bytes: None,
    };
    for k in 0..p.repeat {
        let before = api.metrics().await.unwrap_or_default();
        let took = run_once(&api, &client, p.wait, &ids).await?;
        let after = api.metrics().await.unwrap_or_default();
        eprintln!("  run {}: {:.3} s", k + 1, took.as_secs_f64());
        f.finish.push(took);
        if let Some(v) = metric_delta_mean(&before, &after, "shoal_dispatch_first_seconds") {
            f.first_dispatch.push(v);
        }
        if let Some(v) = metric_delta_mean(&before, &after, "shoal_dispatch_all_seconds") {
            f.all_dispatched.push(v);
        }
    }
    let kib = |v: Option<u64>| v.map(|k| k as f64 * 1024.0);
    f.server_hwm_bytes = kib(sb
        .server_pid()
        .and_then(|pid| proc_status_kib(pid, "VmHWM")));
    f.fleet_rss_bytes = kib(proc_status_kib(fleet_pid, "VmRSS"));
    Ok(f)
}

/// Sends one no-op job to every host and waits until it is finished; checks that every host
/// result is there and successful.
async fn run_once(
    api: &Api,
    client: &shoal_client::Client,
    wait: Wait,
    ids: &[HostId],
) -> anyhow::Result<Duration> {
    let req = shell("true", ids, 600);
    let t0 = Instant::now();
    let resp = api.execute(&req).await?;
    let job = resp.job_instance_id;
    match wait {
        Wait::Poll => {
            api.wait_job_every(job, Duration::from_secs(300), Duration::from_millis(5))
                .await?;
        }
        Wait::Sse => {
            let events = client.open_job_events(job, None).await?;
            // The job may have ended before the stream opened.
            if !api.job(job).await?.finished {
                tokio::time::timeout(Duration::from_secs(300), job_ended(events))
                    .await
                    .context("no final job event within 300 s")??;
            }
        }
    }
    let took = t0.elapsed();
    let view = api.job(resp.job_instance_id).await?;
    let ok: u64 = view
        .steps
        .iter()
        .flat_map(|s| &s.counts)
        .filter(|c| c.status == HostTaskStatus::Success)
        .map(|c| c.count)
        .sum();
    anyhow::ensure!(
        ok == ids.len() as u64,
        "only {ok} of {} hosts succeeded: {:?}",
        ids.len(),
        view.steps.first().map(|s| &s.counts)
    );
    Ok(took)
}

async fn job_ended(mut events: shoal_client::JobEventStream) -> anyhow::Result<()> {
    use futures::StreamExt;
    while let Some(ev) = events.next().await {
        if let JobEvent::Job { status, .. } = ev?
            && status.is_terminal()
        {
            return Ok(());
        }
    }
    anyhow::bail!("the event stream ended before the job did")
}

/// Sums the `NAME_sum` and `NAME_count` series of a Prometheus text page (any labels).
pub fn sum_count(text: &str, name: &str) -> Option<(f64, f64)> {
    let series = |suffix: &str| -> Option<f64> {
        let prefix = format!("{name}{suffix}");
        let mut found = None;
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(&prefix) else {
                continue;
            };
            if !(rest.starts_with(' ') || rest.starts_with('{')) {
                continue;
            }
            let v: f64 = rest.rsplit(' ').next()?.parse().ok()?;
            *found.get_or_insert(0.0) += v;
        }
        found
    };
    Some((series("_sum")?, series("_count")?))
}

/// The mean of the observations recorded between two scrapes.
fn metric_delta_mean(before: &str, after: &str, name: &str) -> Option<f64> {
    let (s1, c1) = sum_count(after, name)?;
    let (s0, c0) = sum_count(before, name).unwrap_or((0.0, 0.0));
    (c1 > c0).then(|| (s1 - s0) / (c1 - c0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_sum_and_count_of_a_summary_or_histogram() {
        let text = "# TYPE shoal_dispatch_first_seconds summary\n\
                    shoal_dispatch_first_seconds{quantile=\"0.5\"} 0.01\n\
                    shoal_dispatch_first_seconds_sum 0.5\n\
                    shoal_dispatch_first_seconds_count 4\n\
                    shoal_dispatch_first_seconds_sumx 9\n";
        assert_eq!(
            sum_count(text, "shoal_dispatch_first_seconds"),
            Some((0.5, 4.0))
        );
        let later = text
            .replace("_sum 0.5", "_sum 0.7")
            .replace("_count 4", "_count 5");
        let mean = metric_delta_mean(text, &later, "shoal_dispatch_first_seconds").unwrap();
        assert!((mean - 0.2).abs() < 1e-9);
        assert_eq!(sum_count(text, "nope"), None);
    }
}
