// Pins the agent's side of the protocol against a TLS stand-in server: enrollment writes a
// 0600 identity and is followed by Hello; a Run produces Started, Output and Finished; an
// acknowledged result leaves the spool; after a cut link exactly the unacknowledged output is
// re-sent; a finished but unacknowledged result survives an agent restart while a task that
// was running does not; Hello's facts say how tasks are contained; a silent server is
// detected and a rejected agent retries slowly.

mod common;

use common::{Peer, next_peer};
use shoal_agent::config::{Conn, Options, TokenSource};
use shoal_proto::{AgentMsg, End, PROTOCOL_VERSION, RejectCode, ServerMsg, Stream};
use shoal_types::{Language, ScriptSpec, TaskKey};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

fn spec(content: &str) -> std::sync::Arc<ScriptSpec> {
    std::sync::Arc::new(ScriptSpec {
        language: Language::Shell,
        content: content.to_owned(),
        args: vec![],
        env: vec![],
        account: String::new(),
        login_env: false,
        workdir: String::new(),
        timeout_secs: 30,
    })
}

fn key(step_id: i64) -> TaskKey {
    TaskKey {
        step_id,
        attempt: 0,
        host_id: 7,
    }
}

struct Agent {
    stop: oneshot::Sender<()>,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl Agent {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.handle.await.expect("join").expect("agent run");
    }
}

fn start_agent(addr: std::net::SocketAddr, ca: &Path, state: &Path) -> Agent {
    let token_path = state.with_extension("token");
    std::fs::write(&token_path, "tok-123\n").expect("token");
    let opts = Options {
        conn: Conn {
            server: addr.to_string(),
            server_name: "localhost".into(),
            ca: ca.to_owned(),
            state_dir: state.to_owned(),
            enroll_token: Some(TokenSource::File(token_path)),
        },
        labels: [("role".to_owned(), "web".to_owned())].into(),
        output_cap: None,
        files: shoal_agent::files::runtime::Options {
            peer_listen: "127.0.0.1:0".parse().expect("addr"),
            cache_bytes: 64 << 20,
        },
    };
    let (stop, stop_rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(shoal_agent::agent::run(opts, async {
        let _ = stop_rx.await;
    }));
    Agent { stop, handle }
}

fn write_identity(state: &Path) {
    std::fs::create_dir_all(state).expect("state");
    std::fs::write(
        state.join("identity.json"),
        r#"{"host_id":7,"agent_id":"ag-7","secret":"sec"}"#,
    )
    .expect("identity");
}

/// Expects Hello, answers Welcome (heartbeat 1 s) and returns the known tasks.
async fn welcome(peer: &mut Peer) -> Vec<TaskKey> {
    let Some(AgentMsg::Hello {
        protocol,
        agent_id,
        secret,
        known_tasks,
        facts,
        ..
    }) = peer.recv().await
    else {
        panic!("expected hello");
    };
    assert_eq!(
        (protocol, agent_id.as_str(), secret.as_str()),
        (PROTOCOL_VERSION, "ag-7", "sec")
    );
    // Root on a host with cgroup2 gets a cgroup per task; anything else says it has none.
    let contained = facts.containment.as_deref();
    assert!(
        matches!(contained, Some("cgroup" | "pgroup")),
        "{contained:?}"
    );
    let cgroup2 = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .contains(" - cgroup2 ");
    if nix::unistd::geteuid().is_root() && cgroup2 {
        assert_eq!(contained, Some("cgroup"));
    }
    peer.send(&ServerMsg::Welcome {
        host_id: 7,
        generation: 1,
        heartbeat_secs: 1,
    })
    .await;
    known_tasks
}

/// Collects messages up to and including `Finished`; returns (output by offset, outcome end,
/// whether Started came, lowest output offset seen).
async fn until_finished(peer: &mut Peer) -> (Vec<u8>, End, bool, Option<u64>) {
    let mut output = Vec::new();
    let mut started = false;
    let mut lowest = None;
    loop {
        match peer.recv().await.expect("connection closed") {
            AgentMsg::Started { .. } => started = true,
            AgentMsg::Output { offset, data, .. } => {
                lowest = Some(lowest.map_or(offset, |l: u64| l.min(offset)));
                let end = offset as usize + data.len();
                if output.len() < end {
                    output.resize(end, 0);
                }
                output[offset as usize..end].copy_from_slice(&data);
            }
            AgentMsg::Finished { outcome, .. } => return (output, outcome.end, started, lowest),
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn wait_gone(path: &Path) {
    for _ in 0..100 {
        if !path.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} still exists", path.display());
}

#[tokio::test]
async fn enrolls_runs_acks_and_resends_after_a_cut() {
    let pki = common::pki();
    let (addr, mut peers) = common::listen(pki.acceptor.clone()).await;
    let state = pki.dir.path().join("state");
    let agent = start_agent(addr, &pki.ca_path, &state);

    let mut peer = next_peer(&mut peers, 10).await;
    let Some(AgentMsg::Enroll {
        protocol,
        token,
        facts,
        labels,
    }) = peer.recv().await
    else {
        panic!("expected enroll");
    };
    assert_eq!((protocol, token.as_str()), (PROTOCOL_VERSION, "tok-123"));
    assert!(!facts.hostname.is_empty());
    assert_eq!(labels.get("role").map(String::as_str), Some("web"));
    peer.send(&ServerMsg::Enrolled {
        host_id: 7,
        agent_id: "ag-7".into(),
        secret: "sec".into(),
    })
    .await;

    let mut peer = next_peer(&mut peers, 10).await;
    let mode = std::fs::metadata(state.join("identity.json"))
        .expect("identity")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(welcome(&mut peer).await.is_empty());

    peer.send(&ServerMsg::Run {
        key: key(1),
        spec: spec("echo hi; exit 3"),
        output_cap: 1000,
    })
    .await;
    let (output, end, started, _) = until_finished(&mut peer).await;
    assert_eq!(
        (output.as_slice(), end, started),
        (&b"hi\n"[..], End::Exited { code: 3 }, true)
    );
    peer.send(&ServerMsg::Ack {
        key: key(1),
        output_offset: 3,
        finished: true,
    })
    .await;
    wait_gone(&state.join("spool").join(key(1).to_string())).await;

    // Partial ack, then the link is cut while the task runs.
    peer.send(&ServerMsg::Run {
        key: key(2),
        spec: spec("echo a; sleep 1; echo b"),
        output_cap: 1000,
    })
    .await;
    loop {
        match peer.recv().await.expect("open") {
            AgentMsg::Output {
                offset: 0,
                data,
                stream,
                ..
            } => {
                assert_eq!((data.as_slice(), stream), (&b"a\n"[..], Stream::Stdout));
                break;
            }
            AgentMsg::Started { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    peer.send(&ServerMsg::Ack {
        key: key(2),
        output_offset: 2,
        finished: false,
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(peer);

    let mut peer = next_peer(&mut peers, 10).await;
    assert_eq!(welcome(&mut peer).await, [key(2)]);
    let (output, end, _, lowest) = until_finished(&mut peer).await;
    assert_eq!(end, End::Exited { code: 0 });
    assert_eq!(lowest, Some(2), "only unacknowledged output is re-sent");
    assert_eq!(&output[2..], b"b\n");

    // A Run for a key the agent still holds is ignored.
    peer.send(&ServerMsg::Run {
        key: key(2),
        spec: spec("echo again"),
        output_cap: 1000,
    })
    .await;
    peer.send(&ServerMsg::Ack {
        key: key(2),
        output_offset: 4,
        finished: true,
    })
    .await;
    wait_gone(&state.join("spool").join(key(2).to_string())).await;
    agent.stop().await;
}

#[tokio::test]
async fn results_survive_restart_running_tasks_do_not() {
    let pki = common::pki();
    let (addr, mut peers) = common::listen(pki.acceptor.clone()).await;
    let state = pki.dir.path().join("state");
    write_identity(&state);

    let agent = start_agent(addr, &pki.ca_path, &state);
    let mut peer = next_peer(&mut peers, 10).await;
    assert!(welcome(&mut peer).await.is_empty());
    peer.send(&ServerMsg::Run {
        key: key(1),
        spec: spec("printf 'x\\377y'"),
        output_cap: 1000,
    })
    .await;
    let (output, end, _, _) = until_finished(&mut peer).await;
    assert_eq!(
        (output.as_slice(), end),
        (&b"x\xffy"[..], End::Exited { code: 0 })
    );
    peer.send(&ServerMsg::Run {
        key: key(2),
        spec: spec("echo $$; sleep 100"),
        output_cap: 1000,
    })
    .await;
    let pid: i32 = loop {
        if let Some(AgentMsg::Output { data, .. }) = peer.recv().await {
            break String::from_utf8_lossy(&data).trim().parse().expect("pid");
        }
    };
    agent.stop().await;
    let dead =
        || std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z"));
    for _ in 0..50 {
        if dead() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dead(), "the running task's process is killed at shutdown");

    let agent = start_agent(addr, &pki.ca_path, &state);
    let mut peer = next_peer(&mut peers, 10).await;
    assert_eq!(
        welcome(&mut peer).await,
        [key(1)],
        "finished result kept, running task dropped"
    );
    assert!(!state.join("spool").join(key(2).to_string()).exists());
    let (output, end, started, lowest) = until_finished(&mut peer).await;
    assert_eq!(
        (output.as_slice(), end, started, lowest),
        (&b"x\xffy"[..], End::Exited { code: 0 }, false, Some(0))
    );
    peer.send(&ServerMsg::Ack {
        key: key(1),
        output_offset: 3,
        finished: true,
    })
    .await;
    wait_gone(&state.join("spool").join(key(1).to_string())).await;
    agent.stop().await;
}

#[tokio::test]
async fn kill_forget_and_silent_server() {
    let pki = common::pki();
    let (addr, mut peers) = common::listen(pki.acceptor.clone()).await;
    let state = pki.dir.path().join("state");
    write_identity(&state);
    let agent = start_agent(addr, &pki.ca_path, &state);
    let mut peer = next_peer(&mut peers, 10).await;
    welcome(&mut peer).await;

    peer.send(&ServerMsg::Run {
        key: key(1),
        spec: spec("sleep 100"),
        output_cap: 1000,
    })
    .await;
    assert!(matches!(peer.recv().await, Some(AgentMsg::Started { .. })));
    peer.send(&ServerMsg::Kill { key: key(1) }).await;
    let (_, end, _, _) = until_finished(&mut peer).await;
    assert_eq!(end, End::Killed);

    peer.send(&ServerMsg::Run {
        key: key(2),
        spec: spec("sleep 100"),
        output_cap: 1000,
    })
    .await;
    assert!(matches!(peer.recv().await, Some(AgentMsg::Started { .. })));
    peer.send(&ServerMsg::Forget { key: key(2) }).await;
    wait_gone(&state.join("spool").join(key(2).to_string())).await;

    // The server stops answering heartbeats: the agent drops the link within 3 heartbeats
    // and comes back.
    peer.answer_heartbeats = false;
    let t = std::time::Instant::now();
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        while peer.recv().await.is_some() {}
    })
    .await;
    assert!(drained.is_ok(), "agent kept a silent link open");
    assert!(t.elapsed() >= Duration::from_secs(2), "{:?}", t.elapsed());
    let mut peer = next_peer(&mut peers, 10).await;
    // Key 1 is still unacknowledged, key 2 was forgotten.
    assert_eq!(welcome(&mut peer).await, [key(1)]);
    agent.stop().await;
}

#[tokio::test]
async fn rejected_agent_retries_slowly() {
    let pki = common::pki();
    let (addr, mut peers) = common::listen(pki.acceptor.clone()).await;
    let state = pki.dir.path().join("state");
    write_identity(&state);
    let agent = start_agent(addr, &pki.ca_path, &state);
    let mut peer = next_peer(&mut peers, 10).await;
    assert!(matches!(peer.recv().await, Some(AgentMsg::Hello { .. })));
    peer.send(&ServerMsg::Rejected {
        code: RejectCode::Revoked,
        message: "revoked".into(),
    })
    .await;
    drop(peer);
    let again = tokio::time::timeout(Duration::from_secs(3), peers.recv()).await;
    assert!(
        again.is_err(),
        "a rejected agent must not reconnect at once"
    );
    agent.stop().await;
}

#[tokio::test]
async fn an_agent_the_server_does_not_know_enrolls_again() {
    let pki = common::pki();
    let (addr, mut peers) = common::listen(pki.acceptor.clone()).await;
    let state = pki.dir.path().join("state");
    write_identity(&state);
    let agent = start_agent(addr, &pki.ca_path, &state);
    let mut peer = next_peer(&mut peers, 10).await;
    assert!(matches!(peer.recv().await, Some(AgentMsg::Hello { .. })));
    peer.send(&ServerMsg::Rejected {
        code: RejectCode::UnknownAgent,
        message: "unknown agent id".into(),
    })
    .await;
    drop(peer);
    // It comes straight back, enrolling with its token rather than repeating the old hello.
    let mut peer = next_peer(&mut peers, 3).await;
    match peer.recv().await {
        Some(AgentMsg::Enroll { token, .. }) => assert_eq!(token, "tok-123"),
        other => panic!("expected a new enrollment, got {other:?}"),
    }
    assert!(
        !state.join("identity.json").exists(),
        "the unknown identity must not be reused"
    );
    let kept = std::fs::read_dir(&state)
        .expect("state dir")
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("identity.json.unknown-")
        });
    assert!(kept, "the old identity is kept aside for the operator");
    agent.stop().await;
}

#[tokio::test]
async fn refuses_a_server_outside_the_ca() {
    let pki = common::pki();
    let other = common::pki(); // a server whose certificate the agent's CA did not sign
    let (addr, mut peers) = common::listen(other.acceptor.clone()).await;
    let state = pki.dir.path().join("state");
    write_identity(&state);
    let agent = start_agent(addr, &pki.ca_path, &state);
    let got = tokio::time::timeout(Duration::from_secs(2), peers.recv()).await;
    assert!(got.is_err(), "the TLS handshake must fail");
    agent.stop().await;
}
