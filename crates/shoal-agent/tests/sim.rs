// Pins `shoal-agent simulate`: N sessions enroll once each (identities persist across runs),
// say hello, answer a Run with `ok` and the right exit code, and reconnect as themselves.

mod common;

use shoal_agent::config::{Conn, SimOptions, TokenSource};
use std::sync::atomic::Ordering;
use std::time::Duration;

const COUNT: u32 = 40;

fn start(
    addr: std::net::SocketAddr,
    ca: &std::path::Path,
    state: &std::path::Path,
) -> tokio::sync::oneshot::Sender<()> {
    let opts = SimOptions {
        conn: Conn {
            server: addr.to_string(),
            server_name: "localhost".into(),
            ca: ca.to_owned(),
            state_dir: state.to_owned(),
            enroll_token: Some(TokenSource::Inline(shoal_agent::config::Secret(
                "tok".into(),
            ))),
        },
        count: COUNT,
        concurrency_connect: 8,
    };
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(shoal_agent::sim::run(opts, async {
        let _ = stop_rx.await;
    }));
    stop
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..300 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_agents_enroll_run_and_reconnect() {
    let pki = common::pki();
    let (addr, stats) = common::auto_server(pki.acceptor.clone(), "127.0.0.1:0").await;
    let state = pki.dir.path().join("sim");
    let stop = start(addr, &pki.ca_path, &state);
    wait_for("all results", || {
        stats.results.lock().expect("lock").len() == COUNT as usize
    })
    .await;
    assert_eq!(stats.enrolls.load(Ordering::SeqCst), COUNT as usize);
    for (host, code) in stats.results.lock().expect("lock").iter() {
        assert_eq!(*code, (*host % 2) as i32, "host {host}");
    }
    assert!(state.join("sim-0.json").exists());
    let _ = stop.send(());
    tokio::time::sleep(Duration::from_millis(200)).await;

    let hellos = stats.hellos.load(Ordering::SeqCst);
    let stop = start(addr, &pki.ca_path, &state);
    wait_for("hellos after restart", || {
        stats.hellos.load(Ordering::SeqCst) == hellos + COUNT as usize
    })
    .await;
    assert_eq!(
        stats.enrolls.load(Ordering::SeqCst),
        COUNT as usize,
        "identities are reused"
    );
    let _ = stop.send(());
}
