// Pins `Registry::send` on a busy session: messages leave in the order they were queued (a
// `Kill` never overtakes its `Run`), a full queue drops the session instead of parking the
// message in a spawned task (these tests run without a runtime, where a spawn would panic),
// and dropping a stalled session never drops a newer one.

use super::*;
use shoal_types::{Language, ScriptSpec, TaskKey};
use tokio::sync::mpsc::error::TryRecvError;

const HOST: HostId = 7;
const KEY: TaskKey = TaskKey {
    step_id: 1,
    attempt: 0,
    host_id: HOST,
};

fn handle(generation: i64, tx: mpsc::Sender<ServerMsg>) -> SessionHandle {
    SessionHandle {
        generation,
        tx,
        last_frame: Arc::new(AtomicI64::new(0)),
        abnormal: Arc::new(AtomicBool::new(false)),
        peer_addr: None,
    }
}

fn run() -> ServerMsg {
    ServerMsg::Run {
        key: KEY,
        spec: Arc::new(ScriptSpec {
            language: Language::Shell,
            content: "sleep 60".into(),
            args: vec![],
            env: vec![],
            account: "root".into(),
            login_env: false,
            workdir: String::new(),
            timeout_secs: 60,
        }),
        output_cap: 1024,
    }
}

fn name(msg: &ServerMsg) -> &'static str {
    match msg {
        ServerMsg::Heartbeat => "busy",
        ServerMsg::Run { .. } => "run",
        ServerMsg::Kill { .. } => "kill",
        _ => "other",
    }
}

/// What `Run` and `Kill` sends answered, what the agent receives, and whether the session is
/// still registered.
type Outcome = (bool, bool, Vec<&'static str>, bool);

/// Queues `busy` heartbeats on a session of `cap` slots, then `Run` and `Kill` through the
/// registry.
fn check(cap: usize, busy: usize) -> Outcome {
    let registry = Registry::default();
    let (tx, mut rx) = mpsc::channel(cap);
    for _ in 0..busy {
        tx.try_send(ServerMsg::Heartbeat)
            .expect("room for the busy messages");
    }
    registry.register(HOST, handle(1, tx));
    let sent_run = registry.send(HOST, run());
    let sent_kill = registry.send(HOST, ServerMsg::Kill { key: KEY });
    let connected = registry.count() == 1;
    // The agent drains its queue; a dropped session's queue then reports it is closed.
    drop(registry);
    let mut received = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(msg) => received.push(name(&msg)),
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => panic!("the queue stays open after the registry is gone"),
        }
    }
    (sent_run, sent_kill, received, connected)
}

#[test]
fn a_kill_never_overtakes_its_run_and_a_full_queue_drops_the_session() {
    // (cap, busy) → (run queued, kill queued, what the agent receives, still connected)
    type Case = ((usize, usize), (bool, bool, &'static [&'static str], bool));
    let cases: &[Case] = &[
        ((4, 0), (true, true, &["run", "kill"], true)),
        ((4, 2), (true, true, &["busy", "busy", "run", "kill"], true)),
        // Room for the Run only: the Kill finds the queue full; the session is dropped, and
        // what was queued before still goes out in order.
        (
            (4, 3),
            (true, false, &["busy", "busy", "busy", "run"], false),
        ),
        // Full already: neither is queued (the Run stays unsent and is sent on reconnection;
        // a terminate settles an unsent task without a Kill).
        (
            (4, 4),
            (false, false, &["busy", "busy", "busy", "busy"], false),
        ),
        ((1, 1), (false, false, &["busy"], false)),
    ];
    for &((cap, busy), (run_sent, kill_sent, received, connected)) in cases {
        let got = check(cap, busy);
        assert_eq!(
            got,
            (run_sent, kill_sent, received.to_vec(), connected),
            "cap {cap}, busy {busy}"
        );
    }
}

#[test]
fn a_dropped_session_takes_no_more_messages() {
    let registry = Registry::default();
    let (tx, _rx) = mpsc::channel(1);
    registry.register(HOST, handle(1, tx));
    assert!(registry.send(HOST, ServerMsg::Heartbeat));
    assert!(!registry.send(HOST, run()), "the queue is full");
    assert!(
        !registry.send(HOST, ServerMsg::Heartbeat),
        "the session is gone"
    );
    assert!(registry.connected_among(&[HOST]).is_empty());
    assert!(registry.disconnected_for(HOST).is_some());
    // Its session loop ending later does not record the host twice.
    assert!(registry.unregister(HOST, 1));
}

#[test]
fn a_stalled_session_never_drops_the_newer_one() {
    let registry = Registry::default();
    let (old_tx, _old_rx) = mpsc::channel(1);
    registry.register(HOST, handle(1, old_tx));
    let (new_tx, mut new_rx) = mpsc::channel(4);
    registry.register(HOST, handle(2, new_tx));
    registry.drop_stalled(HOST, 1);
    assert!(registry.send(HOST, ServerMsg::Kill { key: KEY }));
    assert_eq!(new_rx.try_recv().map(|m| name(&m)), Ok("kill"));
}
