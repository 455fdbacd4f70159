//! Pins the agent endpoint under a flood of connections that never authenticate: 300 TCP
//! connections that never send a TLS ClientHello used to hold every handshake slot for 10 s,
//! so an honest agent's reconnect took ~9.5 s. Idle connections now wait without a slot, are
//! bounded per address and dropped after a short deadline: the agent is back within seconds.

#![allow(clippy::unwrap_used)] // tests may unwrap

use shoal_testkit::sandbox::{Sandbox, SandboxOptions, require_root};
use shoal_types::AgentStatus;
use std::time::{Duration, Instant};

async fn status_of_first_host(sb: &Sandbox) -> Option<AgentStatus> {
    sb.api().hosts().await.ok()?.first().map(|h| h.status)
}

async fn wait_status(sb: &Sandbox, want: AgentStatus, limit: Duration) -> Duration {
    let began = Instant::now();
    while status_of_first_host(sb).await != Some(want) {
        assert!(
            began.elapsed() < limit,
            "the host was not {want:?} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    began.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reconnects_quickly_during_a_connection_flood() {
    require_root().unwrap();
    let mut sb = Sandbox::start(SandboxOptions::with_agents(1))
        .await
        .unwrap();
    sb.wait_hosts_online(1, Duration::from_secs(30))
        .await
        .unwrap();

    // The flood comes from another address than the agent's.
    let mut flood = Vec::new();
    for _ in 0..300 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        if let Ok(c) = socket.connect(sb.agent_endpoint()).await {
            flood.push(c);
        }
    }
    assert!(
        flood.len() >= 250,
        "opened only {} connections",
        flood.len()
    );

    sb.kill_agent(0);
    wait_status(&sb, AgentStatus::Offline, Duration::from_secs(30)).await;
    sb.start_agent(0).unwrap();
    let took = wait_status(&sb, AgentStatus::Online, Duration::from_secs(30)).await;
    // Before: ~9.5 s (the flood held all 256 handshake slots for 10 s each).
    assert!(
        took < Duration::from_secs(4),
        "the agent needed {took:?} to reconnect during the flood"
    );

    // Past 256 from one address the flood was closed at once; the rest go at the deadline.
    let closed = |limit: Duration| {
        let conns: Vec<_> = flood.iter().collect();
        async move {
            let mut n = 0;
            for c in conns {
                let mut buf = [0u8; 1];
                let until = tokio::time::timeout(limit, async {
                    loop {
                        c.readable().await.unwrap();
                        match c.try_read(&mut buf) {
                            Ok(_) => return,
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                            Err(_) => return,
                        }
                    }
                });
                if until.await.is_ok() {
                    n += 1;
                }
            }
            n
        }
    };
    assert!(
        closed(Duration::from_millis(10)).await >= 40,
        "no per-address bound"
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(closed(Duration::from_millis(10)).await, flood.len());
}
