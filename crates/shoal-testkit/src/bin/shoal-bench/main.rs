//! `shoal-bench`: measures fan-out time, time to first dispatch and server memory with simulated
//! fleets, end-to-end latency with real agents in network namespaces, the agent's footprint, and
//! file distribution (swarm vs. no peers vs. scp, against the optimal bound, under `tc`); prints a Markdown table with the targets beside the figures. It reports missed targets but
//! never fails because of them.
//!
//! `cargo run --release -p shoal-testkit --bin shoal-bench -- [--hosts 1000,10000]
//! [--backends sqlite,postgres] [--repeat 5] [--out FILE] [--no-fanout] [--no-latency]
//! [--no-files] [--file-targets 16 --file-mib 256 --file-mbit 100 --file-no-baselines]`

mod fanout;
mod files;
mod latency;
mod report;

use anyhow::Context;
use clap::Parser;
use shoal_testkit::pg::PgCluster;
use shoal_testkit::sandbox::Bins;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "shoal-bench", about = "Benchmarks a release build of shoal.")]
struct Cli {
    /// Simulated fleet sizes for the fan-out benchmark.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    hosts: Vec<usize>,
    /// Storage backends: sqlite, postgres.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    backends: Vec<String>,
    /// Timed fan-out runs per configuration (after one warm-up run).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// How to learn that a job has finished: a 5 ms poll of the job, or its event stream.
    #[arg(long, value_enum, default_value = "poll")]
    wait: fanout::Wait,
    /// Timed runs of the latency benchmark.
    #[arg(long, default_value_t = 20)]
    latency_runs: usize,
    /// Skip the latency and agent-footprint part (it needs root).
    #[arg(long)]
    no_latency: bool,
    /// Skip the fan-out part.
    #[arg(long)]
    no_fanout: bool,
    /// Skip the file-distribution part (it needs root, tc and, for the scp baseline, sshd).
    #[arg(long)]
    no_files: bool,
    /// Target hosts of the file benchmark (one more host is the source).
    #[arg(long, default_value_t = 16)]
    file_targets: usize,
    /// Size of the file benchmark's file, MiB.
    #[arg(long, default_value_t = 256)]
    file_mib: u64,
    /// Bandwidth of every host's link in the file benchmark, Mbit/s (each way).
    #[arg(long, default_value_t = 100)]
    file_mbit: u32,
    /// Time only the swarm (skip the no-peers and scp baselines, which take N times longer).
    #[arg(long)]
    file_no_baselines: bool,
    /// Also write the report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where the release `shoal` and `shoal-agent` are [default: next to this binary].
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Do not run `cargo build --release` for `shoal` and `shoal-agent` first.
    #[arg(long)]
    no_build: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let bin_dir = match &cli.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the bench binary has no directory")?
            .to_path_buf(),
    };
    if !cli.no_build {
        build_release_bins()?;
    }
    let bins = Bins::in_dirs(std::slice::from_ref(&bin_dir)).with_context(|| {
        format!(
            "release binaries missing in {}: run `cargo build --release --bins` first",
            bin_dir.display()
        )
    })?;

    let mut rows = Vec::new();
    let wants_pg = !cli.no_fanout && cli.backends.iter().any(|b| b == "postgres");
    let pg = wants_pg.then(|| {
        eprintln!("starting a throwaway PostgreSQL cluster ...");
        PgCluster::start()
    });
    if !cli.no_fanout {
        for backend in &cli.backends {
            for &hosts in &cli.hosts {
                eprintln!("fan-out: {backend}, {hosts} simulated hosts");
                let database_url = match backend.as_str() {
                    "sqlite" => None,
                    "postgres" => match pg_database(pg.as_ref(), hosts) {
                        Ok(url) => Some(url),
                        Err(e) => {
                            rows.push(report::Row::new(
                                "fan-out",
                                &format!("{backend}, {hosts} hosts"),
                                report::Unit::Seconds,
                                Err(format!("no PostgreSQL: {e:#}")),
                            ));
                            continue;
                        }
                    },
                    other => anyhow::bail!("unknown backend {other:?} (sqlite, postgres)"),
                };
                rows.extend(
                    fanout::rows(fanout::Params {
                        wait: cli.wait,
                        hosts,
                        database_url,
                        backend: backend.clone(),
                        repeat: cli.repeat,
                        bins: bins.clone(),
                    })
                    .await,
                );
            }
        }
    }
    if !cli.no_latency {
        eprintln!("latency: 8 real agents");
        rows.extend(latency::rows(bins.clone(), cli.latency_runs).await);
    }
    if !cli.no_files {
        eprintln!(
            "files: {} targets, {} MiB, {} Mbit/s",
            cli.file_targets, cli.file_mib, cli.file_mbit
        );
        rows.extend(
            files::rows(files::Params {
                bins: bins.clone(),
                targets: cli.file_targets,
                mib: cli.file_mib,
                mbit: cli.file_mbit,
                skip_baselines: cli.file_no_baselines,
            })
            .await,
        );
    }

    let header = format!(
        "## shoal-bench ({} cores, release build, {})\n\nFan-out: one warm-up run, then {} timed runs per setup; \
         latency: {} timed runs; finish detected by {:?}.",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        bins.shoal.display(),
        cli.repeat,
        cli.latency_runs,
        cli.wait
    );
    let md = report::markdown(&rows, &header);
    println!("{md}");
    if let Some(out) = &cli.out {
        std::fs::write(out, &md).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

/// `cargo build --release` of the two shipped binaries, so the bench never measures stale ones.
/// Skipped (with a note) when not run through cargo.
fn build_release_bins() -> anyhow::Result<()> {
    let Some(cargo) = std::env::var_os("CARGO") else {
        eprintln!("note: not run by cargo; using the release binaries as they are");
        return Ok(());
    };
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    eprintln!("building release shoal and shoal-agent ...");
    let status = std::process::Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "--release",
            "--bin",
            "shoal",
            "--bin",
            "shoal-agent",
        ])
        .status()
        .context("running cargo build")?;
    anyhow::ensure!(status.success(), "cargo build --release failed");
    Ok(())
}

/// A fresh database on the bench's throwaway PostgreSQL cluster.
fn pg_database(pg: Option<&anyhow::Result<PgCluster>>, hosts: usize) -> anyhow::Result<String> {
    match pg {
        Some(Ok(cluster)) => cluster.create_database(&format!("bench_{hosts}")),
        Some(Err(e)) => anyhow::bail!("{e:#}"),
        None => anyhow::bail!("no cluster was started"),
    }
}
