//! File distribution: one source host and N target hosts, every link limited with `tc` to the
//! same bandwidth B both ways, one random file of S bytes. Timed, in one run: the swarm (peer to
//! peer), the same transfer with peers disabled (the source sends every copy), and `scp` from
//! the source to each target in turn. Reports the swarm's ratio to the optimal bound
//! (S/B)(1 + ⌊log2 N⌋/M) (M = chunks of 4 MiB) and the bytes the source uploaded (from its
//! qdisc's counters) as a multiple of S.

use crate::report::{Row, Stats, Unit};
use anyhow::Context;
use shoal_testkit::files_api::{host_source, transfer};
use shoal_testkit::sandbox::{Bins, Sandbox, SandboxOptions, require_root};
use shoal_types::HostId;
use shoal_types::files::CHUNK_SIZE;
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Params {
    pub bins: Bins,
    pub targets: usize,
    pub mib: u64,
    pub mbit: u32,
    pub skip_baselines: bool,
}

pub async fn rows(p: Params) -> Vec<Row> {
    let setup = format!(
        "1 source → {} targets, {} MiB, {} Mbit/s links",
        p.targets, p.mib, p.mbit
    );
    match measure(&p).await {
        Ok(m) => m.rows(&p, &setup),
        Err(e) => vec![Row::new(
            "file distribution",
            &setup,
            Unit::Seconds,
            Err(format!("{e:#}")),
        )],
    }
}

struct Measured {
    swarm: f64,
    swarm_source_bytes: f64,
    no_peers: Option<f64>,
    scp: Option<Result<f64, String>>,
}

impl Measured {
    fn rows(&self, p: &Params, setup: &str) -> Vec<Row> {
        let s = (p.mib * 1024 * 1024) as f64;
        let b = f64::from(p.mbit) * 1_000_000.0 / 8.0;
        let m = (s / f64::from(CHUNK_SIZE)).ceil();
        let n = p.targets as f64;
        let bound = (s / b) * (1.0 + n.log2().floor() / m);
        let one = |v: f64| Stats::of(&[v]).ok_or_else(|| "no figure".to_owned());
        let mut rows = vec![
            Row::new(
                "files: optimal bound (S/B)(1+⌊log2 N⌋/M)",
                setup,
                Unit::Seconds,
                one(bound),
            ),
            Row::new(
                "files: swarm (peer to peer)",
                setup,
                Unit::Seconds,
                one(self.swarm),
            )
            .target(1.5 * bound),
            Row::new(
                "files: swarm time / bound",
                setup,
                Unit::Ratio,
                one(self.swarm / bound),
            )
            .target(1.5),
            Row::new(
                "files: bytes uploaded by the source / S",
                setup,
                Unit::Ratio,
                one(self.swarm_source_bytes / s),
            )
            .target(3.0),
        ];
        if let Some(t) = self.no_peers {
            rows.push(Row::new(
                "files: peers disabled (source sends every copy)",
                setup,
                Unit::Seconds,
                one(t),
            ));
        }
        if let Some(t) = &self.scp {
            rows.push(Row::new(
                "files: scp to each target in turn",
                setup,
                Unit::Seconds,
                t.clone().and_then(one),
            ));
        }
        rows
    }
}

async fn measure(p: &Params) -> anyhow::Result<Measured> {
    require_root()?;
    let hosts = p.targets + 1;
    let sb = Sandbox::start(SandboxOptions {
        bins: Some(p.bins.clone()),
        ..SandboxOptions::with_agents(hosts)
    })
    .await?;
    sb.wait_hosts_online(hosts, Duration::from_secs(60)).await?;
    let ids = sb.host_ids().await?;
    for i in 0..hosts {
        sb.limit_bandwidth(i, p.mbit)?;
    }
    sb.host_sh(
        0,
        &format!(
            "mkdir -p /tmp/src && head -c {}M /dev/urandom > /tmp/src/payload.bin",
            p.mib
        ),
    )?;
    let targets = &ids[1..];

    eprintln!("files: swarm ...");
    let before = sent_bytes(&sb, 0)?;
    let swarm = timed_transfer(&sb, &ids, targets, "/tmp/swarm", true).await?;
    let swarm_source_bytes = (sent_bytes(&sb, 0)? - before) as f64;
    clean(&sb, hosts, "/tmp/swarm")?;
    let (mut no_peers, mut scp) = (None, None);
    if !p.skip_baselines {
        eprintln!("files: peers disabled ...");
        no_peers = Some(timed_transfer(&sb, &ids, targets, "/tmp/nopeers", false).await?);
        clean(&sb, hosts, "/tmp/nopeers")?;
        eprintln!("files: scp to each target in turn ...");
        // A broken baseline must not throw away the figures measured before it.
        scp = Some(scp_each(&sb, hosts).map_err(|e| format!("{e:#}")));
    }
    Ok(Measured {
        swarm,
        swarm_source_bytes,
        no_peers,
        scp,
    })
}

async fn timed_transfer(
    sb: &Sandbox,
    ids: &[HostId],
    targets: &[HostId],
    dir: &str,
    peers: bool,
) -> anyhow::Result<f64> {
    let api = sb.api();
    let mut req = transfer(
        vec![host_source(&ids[0..1], &["/tmp/src/payload.bin"])],
        targets,
        dir,
        3600,
    );
    req.peer_to_peer = Some(peers);
    let t = Instant::now();
    let resp = api.transfer(&req).await?;
    let view = api
        .wait_job_every(
            resp.job_instance_id,
            Duration::from_secs(3600),
            Duration::from_millis(20),
        )
        .await?;
    let took = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        view.job.status == shoal_types::RunStatus::Success,
        "the transfer ended {}: {:?}",
        view.job.status,
        api.step_hosts(resp.step_instance_id).await.ok()
    );
    Ok(took)
}

/// Bytes host `i` has sent through its shaped `eth0`.
fn sent_bytes(sb: &Sandbox, i: usize) -> anyhow::Result<u64> {
    let ns = sb.netns(i)?;
    let out = Command::new("tc")
        .args(["-n", &ns, "-s", "qdisc", "show", "dev", "eth0"])
        .output()
        .context("tc -s qdisc show")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let sent = text
        .split_whitespace()
        .skip_while(|w| *w != "Sent")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no byte counter in {text}"))?;
    Ok(sent)
}

fn clean(sb: &Sandbox, hosts: usize, dir: &str) -> anyhow::Result<()> {
    for i in 1..hosts {
        sb.host_sh(i, &format!("rm -rf '{dir}'"))?;
    }
    Ok(())
}

/// `scp` of the payload from host 0 to every target in turn (an sshd in each target's network
/// namespace, writing to /dev/shm). Returns the total time.
fn scp_each(sb: &Sandbox, hosts: usize) -> anyhow::Result<f64> {
    let dir = sb.dir().join("ssh");
    std::fs::create_dir_all(&dir)?;
    let key = dir.join("id");
    let host_key = dir.join("host_key");
    for k in [&key, &host_key] {
        if !k.exists() {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", ""])
                .arg("-f")
                .arg(k))?;
        }
    }
    std::fs::copy(dir.join("id.pub"), dir.join("authorized_keys"))?;
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port 22\nHostKey {}\nAuthorizedKeysFile {}\nPermitRootLogin yes\nStrictModes no\n\
             UsePAM no\nPasswordAuthentication no\nPidFile none\nSubsystem sftp internal-sftp\n",
            host_key.display(),
            dir.join("authorized_keys").display()
        ),
    )?;
    std::fs::create_dir_all("/run/sshd")?;
    let mut daemons = Vec::new();
    for i in 1..hosts {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &sb.netns(i)?,
                "/usr/sbin/sshd",
                "-D",
                "-e",
                "-f",
            ])
            .arg(&config)
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting sshd")?;
        daemons.push(child);
    }
    std::thread::sleep(Duration::from_millis(500));
    let result = (|| {
        let t = Instant::now();
        for i in 1..hosts {
            let dest = format!("root@{}:/dev/shm/shoal-bench-scp-{i}", sb.agent_ip(i));
            let script = format!(
                "scp -q -i '{}' -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
                 -o BatchMode=yes /tmp/src/payload.bin '{dest}'",
                key.display()
            );
            sb.host_sh(0, &script)?;
            let _ = std::fs::remove_file(format!("/dev/shm/shoal-bench-scp-{i}"));
        }
        Ok(t.elapsed().as_secs_f64())
    })();
    for mut d in daemons {
        let _ = d.kill();
        let _ = d.wait();
    }
    result
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    anyhow::ensure!(status.success(), "{cmd:?} failed");
    Ok(())
}
