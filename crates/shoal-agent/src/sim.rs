//! `shoal-agent simulate`: N independent agents in one process, over the real protocol, for
//! load tests of the server.
//!
//! Each simulated agent has its own identity (`STATE_DIR/sim-<i>.json`, enrolled on first use),
//! fake facts (hostname `sim-<i>`, address `10.250.x.y`, label `sim=true`), its own back-off
//! and watchdog, and a built-in executor that forks nothing: a `Run` is answered at once with
//! `Started`, one `Output` chunk `ok\n` and `Finished` (exit code 1 when the script contains
//! `exit 1`, else 0). Results stay in memory until acknowledged and are re-sent after a
//! reconnect. Sessions hold no per-session buffers beyond the TLS state and a small frame
//! buffer, and connect through a semaphore so thousands can (re)connect without a stampede.

use crate::backoff::{self, Backoff};
use crate::config::SimOptions;
use crate::conn::{self, Error, HANDSHAKE_TIMEOUT, SILENCE_HEARTBEATS};
use crate::exec::now_ms;
use crate::identity::Identity;
use futures::StreamExt as _;
use shoal_proto::{AgentMsg, End, Outcome, PROTOCOL_VERSION, ServerMsg, Stream};
use shoal_types::{HostFacts, Labels, TaskKey};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

/// The output of every simulated task.
pub const SIM_OUTPUT: &[u8] = b"ok\n";

struct Shared {
    opts: SimOptions,
    tls: Arc<rustls::ClientConfig>,
    token: Option<String>,
    connect_gate: Semaphore,
    connected: AtomicUsize,
    runs: AtomicU64,
}

/// Runs `opts.count` simulated agents until `shutdown` resolves.
pub async fn run(opts: SimOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    tokio::fs::create_dir_all(&opts.conn.state_dir).await?;
    let tls = conn::tls_config(&opts.conn.ca)?;
    let token = match &opts.conn.enroll_token {
        Some(source) => Some(source.read()?.0),
        None => None,
    };
    let shared = Arc::new(Shared {
        connect_gate: Semaphore::new(opts.concurrency_connect),
        opts,
        tls,
        token,
        connected: AtomicUsize::new(0),
        runs: AtomicU64::new(0),
    });
    let count = shared.opts.count;
    tracing::info!(count, server = %shared.opts.conn.server, "starting simulated agents");
    if let Some(limit) = open_files_limit()
        && limit < u64::from(count) + 64
    {
        tracing::warn!(
            limit,
            count,
            "the open-files limit is too low for this many sessions (raise it with ulimit -n)"
        );
    }
    let mut handles = Vec::with_capacity(count as usize);
    for i in 0..count {
        handles.push(tokio::spawn(agent_loop(i, shared.clone())));
    }
    let report = async {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            tracing::info!(
                connected = shared.connected.load(Ordering::Relaxed),
                count,
                runs = shared.runs.load(Ordering::Relaxed),
                "simulated agents"
            );
        }
    };
    tokio::select! {
        () = shutdown => {}
        () = report => {}
    }
    for h in handles {
        h.abort();
    }
    Ok(())
}

/// One simulated agent's in-memory spool entry (every task is finished at once).
struct SimTask {
    outcome: Outcome,
    output_acked: bool,
}

struct SimAgent {
    index: u32,
    identity: Option<Identity>,
    tasks: BTreeMap<TaskKey, SimTask>,
}

async fn agent_loop(index: u32, shared: Arc<Shared>) {
    let path = identity_path(&shared, index);
    let identity = match tokio::fs::read(&path).await {
        Ok(bytes) => serde_json::from_slice(&bytes).ok(),
        Err(_) => None,
    };
    let mut agent = SimAgent {
        index,
        identity,
        tasks: BTreeMap::new(),
    };
    let mut backoff = Backoff::default();
    loop {
        let began = std::time::Instant::now();
        let result = session(&mut agent, &shared).await;
        if began.elapsed() > backoff::HEALTHY_SESSION {
            backoff.reset();
        }
        let delay = match result {
            Ok(()) => {
                backoff.reset();
                continue;
            }
            Err(e) if e.needs_operator() => {
                tracing::error!(agent = index, error = %e, "simulated agent refused");
                backoff.slow_delay()
            }
            Err(e) => {
                tracing::debug!(agent = index, error = %e, "simulated agent disconnected");
                backoff.next_delay()
            }
        };
        tokio::time::sleep(delay).await;
    }
}

/// The soft `RLIMIT_NOFILE`, from /proc/self/limits.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn identity_path(shared: &Shared, index: u32) -> PathBuf {
    shared.opts.conn.state_dir.join(format!("sim-{index}.json"))
}

/// Facts of simulated agent `index`.
pub fn sim_facts(index: u32) -> HostFacts {
    HostFacts {
        hostname: format!("sim-{index}"),
        ips: vec![format!("10.250.{}.{}", (index >> 8) & 0xff, index & 0xff)],
        os: "Simulated".into(),
        os_version: env!("CARGO_PKG_VERSION").into(),
        arch: std::env::consts::ARCH.into(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
        containment: None,
    }
}

fn sim_labels() -> Labels {
    Labels::from([("sim".to_owned(), "true".to_owned())])
}

type Reader = FramedRead<conn::TlsStream, LengthDelimitedCodec>;

/// `Ok(())`: enrolled, reconnect now. A served session ends in `Err`.
async fn session(agent: &mut SimAgent, shared: &Shared) -> Result<(), Error> {
    let permit = shared.connect_gate.acquire().await;
    let stream = conn::connect(
        &shared.opts.conn.server,
        &shared.opts.conn.server_name,
        shared.tls.clone(),
    )
    .await?;
    let mut reader = FramedRead::with_capacity(stream, conn::codec(), 512);
    let facts = sim_facts(agent.index);
    let Some(identity) = &agent.identity else {
        let token = shared
            .token
            .clone()
            .ok_or_else(|| Error::Token("none configured".into()))?;
        write(
            &mut reader,
            &AgentMsg::Enroll {
                protocol: PROTOCOL_VERSION,
                token,
                facts,
                labels: sim_labels(),
            },
            HANDSHAKE_TIMEOUT,
        )
        .await?;
        let identity = match conn::recv(&mut reader, HANDSHAKE_TIMEOUT).await? {
            ServerMsg::Enrolled {
                host_id,
                agent_id,
                secret,
            } => Identity {
                host_id,
                agent_id,
                secret,
            },
            ServerMsg::Rejected { code, message } => return Err(Error::Rejected { code, message }),
            _ => return Err(Error::Unexpected("expected enrolled or rejected")),
        };
        let path = identity_path(shared, agent.index);
        let saved = identity.clone();
        tokio::task::spawn_blocking(move || saved.save(&path))
            .await
            .map_err(std::io::Error::other)??;
        agent.identity = Some(identity);
        return Ok(());
    };
    let hello = AgentMsg::Hello {
        protocol: PROTOCOL_VERSION,
        agent_id: identity.agent_id.clone(),
        secret: identity.secret.clone(),
        facts,
        labels: sim_labels(),
        known_tasks: agent.tasks.keys().copied().collect(),
        peer_port: None,
    };
    write(&mut reader, &hello, HANDSHAKE_TIMEOUT).await?;
    let heartbeat = match conn::recv(&mut reader, HANDSHAKE_TIMEOUT).await? {
        ServerMsg::Welcome { heartbeat_secs, .. } => {
            Duration::from_secs(u64::from(heartbeat_secs.clamp(1, 3600)))
        }
        ServerMsg::Rejected { code, message } => return Err(Error::Rejected { code, message }),
        _ => return Err(Error::Unexpected("expected welcome or rejected")),
    };
    drop(permit);
    shared.connected.fetch_add(1, Ordering::Relaxed);
    let result = serve(agent, shared, &mut reader, heartbeat).await;
    shared.connected.fetch_sub(1, Ordering::Relaxed);
    result
}

async fn serve(
    agent: &mut SimAgent,
    shared: &Shared,
    reader: &mut Reader,
    heartbeat: Duration,
) -> Result<(), Error> {
    let silence = heartbeat * SILENCE_HEARTBEATS;
    // Re-send whatever the server has not acknowledged.
    let pending: Vec<AgentMsg> = agent
        .tasks
        .iter()
        .flat_map(|(key, t)| resend(*key, t))
        .collect();
    for msg in &pending {
        write(reader, msg, silence).await?;
    }
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let msg = tokio::select! {
            r = timeout(silence, reader.next()) => match r {
                Err(_) => return Err(Error::Timeout("no message from the server")),
                Ok(None) => return Err(Error::Closed),
                Ok(Some(frame)) => shoal_proto::decode::<ServerMsg>(&frame?)?,
            },
            _ = tick.tick() => {
                write(reader, &AgentMsg::Heartbeat { running: 0 }, silence).await?;
                continue;
            }
        };
        match msg {
            ServerMsg::Run { key, spec, .. } => {
                if agent.tasks.contains_key(&key) {
                    continue;
                }
                shared.runs.fetch_add(1, Ordering::Relaxed);
                let code = if spec.content.contains("exit 1") {
                    1
                } else {
                    0
                };
                let task = SimTask {
                    outcome: sim_outcome(code),
                    output_acked: false,
                };
                let at = task.outcome.started_at.unwrap_or_default();
                write(reader, &AgentMsg::Started { key, at }, silence).await?;
                for msg in resend(key, &task) {
                    write(reader, &msg, silence).await?;
                }
                agent.tasks.insert(key, task);
            }
            ServerMsg::Ack {
                key,
                output_offset,
                finished,
            } => {
                if finished {
                    agent.tasks.remove(&key);
                } else if let Some(t) = agent.tasks.get_mut(&key) {
                    t.output_acked |= output_offset >= SIM_OUTPUT.len() as u64;
                }
            }
            ServerMsg::Forget { key } => {
                agent.tasks.remove(&key);
            }
            ServerMsg::Rejected { code, message } => return Err(Error::Rejected { code, message }),
            ServerMsg::Kill { .. }
            | ServerMsg::Heartbeat
            | ServerMsg::Welcome { .. }
            | ServerMsg::Enrolled { .. } => {}
            // Simulated agents announce no peer port, so they get no file messages.
            ServerMsg::PeerIdentity { .. }
            | ServerMsg::Scan { .. }
            | ServerMsg::Fetch { .. }
            | ServerMsg::Peers { .. }
            | ServerMsg::ChunkPart { .. }
            | ServerMsg::Release { .. } => {}
        }
    }
}

fn sim_outcome(code: i32) -> Outcome {
    let now = now_ms();
    Outcome {
        end: End::Exited { code },
        started_at: Some(now),
        ended_at: now,
        output_len: SIM_OUTPUT.len() as u64,
        truncated: false,
        digest: blake3::hash(SIM_OUTPUT).to_hex().to_string(),
        tag: None,
    }
}

/// The unacknowledged messages of a finished simulated task.
fn resend(key: TaskKey, task: &SimTask) -> Vec<AgentMsg> {
    let mut msgs = Vec::with_capacity(2);
    if !task.output_acked {
        msgs.push(AgentMsg::Output {
            key,
            offset: 0,
            stream: Stream::Stdout,
            data: SIM_OUTPUT.to_vec(),
        });
    }
    msgs.push(AgentMsg::Finished {
        key,
        outcome: task.outcome.clone(),
    });
    msgs
}

/// Writes one frame straight to the stream (no write buffer is kept between frames).
async fn write<S: AsyncRead + AsyncWrite + Unpin>(
    reader: &mut FramedRead<S, LengthDelimitedCodec>,
    msg: &AgentMsg,
    limit: Duration,
) -> Result<(), Error> {
    let payload = shoal_proto::encode(msg)?;
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    let stream = reader.get_mut();
    timeout(limit, async {
        stream.write_all(&frame).await?;
        stream.flush().await
    })
    .await
    .map_err(|_| Error::Timeout("writing to the server"))??;
    Ok(())
}

#[cfg(test)]
mod tests {
    // Pins the simulator's fake identity data and its built-in executor's answers.
    use super::*;

    #[test]
    fn reads_the_open_files_limit() {
        assert!(open_files_limit().is_some_and(|n| n > 0));
    }

    #[test]
    fn facts_and_outcomes() {
        let f = sim_facts(258);
        assert_eq!(f.hostname, "sim-258");
        assert_eq!(f.ips, ["10.250.1.2"]);
        assert_eq!(sim_labels().get("sim").map(String::as_str), Some("true"));
        let key = TaskKey {
            step_id: 1,
            attempt: 0,
            host_id: 2,
        };
        let task = SimTask {
            outcome: sim_outcome(1),
            output_acked: false,
        };
        assert_eq!(task.outcome.end, End::Exited { code: 1 });
        let msgs = resend(key, &task);
        assert_eq!(msgs.len(), 2);
        assert!(matches!(&msgs[0], AgentMsg::Output { data, .. } if data == SIM_OUTPUT));
        let acked = SimTask {
            output_acked: true,
            ..task
        };
        assert_eq!(resend(key, &acked).len(), 1);
    }
}
