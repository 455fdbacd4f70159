//! Latency and agent footprint: 8 real release agents in network namespaces. Their idle RSS is
//! read 5 s after they are all online; then `true` runs on all 8, timed from the API call to the
//! job being finished (5 ms poll), `runs` times.

use crate::report::{Row, Stats, Unit};
use shoal_testkit::api::shell;
use shoal_testkit::sandbox::{Bins, Sandbox, SandboxOptions, proc_status_kib, require_root};
use std::time::{Duration, Instant};

const AGENTS: usize = 8;

pub async fn rows(bins: Bins, runs: usize) -> Vec<Row> {
    let setup = format!("{AGENTS} real agents, sqlite");
    let mut rows = Vec::new();
    let size = std::fs::metadata(&bins.agent)
        .map(|m| m.len() as f64)
        .map_err(|e| format!("{}: {e}", bins.agent.display()));
    rows.push(Row::new(
        "agent binary size (release)",
        "shoal-agent",
        Unit::Bytes,
        size.and_then(|s| Stats::of(&[s]).ok_or_else(String::new)),
    ));
    match measure(bins, runs).await {
        Ok((rss, lat)) => {
            rows.push(
                Row::new(
                    "agent idle RSS (VmRSS, 5 s after online; per agent)",
                    &setup,
                    Unit::Bytes,
                    Stats::of(&rss).ok_or_else(|| "no agent RSS read".to_owned()),
                )
                .target(20.0 * 1024.0 * 1024.0),
            );
            rows.push(
                Row::new(
                    "latency: API call -> job finished (`true`)",
                    &setup,
                    Unit::Seconds,
                    Stats::of_durations(&lat).ok_or_else(|| "no runs".to_owned()),
                )
                .target(0.1),
            );
        }
        Err(e) => rows.push(Row::new(
            "latency and agent RSS",
            &setup,
            Unit::Seconds,
            Err(format!("{e:#}")),
        )),
    }
    rows
}

async fn measure(bins: Bins, runs: usize) -> anyhow::Result<(Vec<f64>, Vec<Duration>)> {
    require_root()?;
    let sb = Sandbox::start(SandboxOptions {
        bins: Some(bins),
        ..SandboxOptions::with_agents(AGENTS)
    })
    .await?;
    sb.wait_hosts_online(AGENTS, Duration::from_secs(60))
        .await?;
    let ids = sb.host_ids().await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss: Vec<f64> = (0..AGENTS)
        .filter_map(|i| sb.agent_pid(i))
        .filter_map(|pid| proc_status_kib(pid, "VmRSS"))
        .map(|k| k as f64 * 1024.0)
        .collect();

    let api = sb.api();
    let req = shell("true", &ids, 60);
    // One warm-up run, not counted.
    let warm = api.execute(&req).await?;
    api.wait_job(warm.job_instance_id, Duration::from_secs(30))
        .await?;
    let mut lat = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let resp = api.execute(&req).await?;
        let view = api
            .wait_job_every(
                resp.job_instance_id,
                Duration::from_secs(30),
                Duration::from_millis(5),
            )
            .await?;
        lat.push(t0.elapsed());
        anyhow::ensure!(
            view.job.status == shoal_types::RunStatus::Success,
            "latency job failed: {view:?}"
        );
    }
    Ok((rss, lat))
}
