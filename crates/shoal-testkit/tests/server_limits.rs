//! Pins the REST endpoint's limits on a real server over real sockets: a client that sends a
//! partial request line is dropped after the header deadline (before: kept for minutes); one
//! address cannot hold more than `--api-max-conns-per-ip` connections (the next gets a 503 in
//! the error format) while other addresses are served; a finished job's event stream ends
//! after its state (so `curl -N` returns); tokens never reach the log, even at debug level; and
//! an idle server stops at once on SIGTERM (before: 5 s every time).

#![allow(clippy::unwrap_used)] // tests may unwrap

use shoal_testkit::api::shell;
use shoal_testkit::sandbox::{Sandbox, SandboxOptions};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

async fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    socket.connect(to).await.unwrap()
}

/// Reads until the server closes the connection (or `limit` passes); what was read.
async fn read_until_closed(conn: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut all = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&all).into_owned())
}

fn api_addr(sb: &Sandbox) -> SocketAddr {
    sb.api_url().trim_start_matches("http://").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_dropped_and_bounded_per_address() {
    let sb = Sandbox::start(SandboxOptions {
        server_args: vec!["--api-max-conns-per-ip".into(), "8".into()],
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let addr = api_addr(&sb);

    // Twenty clients from one address send half a request line and wait.
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..20 {
        let mut conn = connect_from([127, 0, 0, 1], addr).await;
        conn.write_all(b"GET /api/v1/jo").await.unwrap();
        held.push(conn);
    }
    let opened = Instant::now();
    // Those over the limit are answered at once and closed.
    for conn in held.iter_mut().skip(8) {
        let answer = read_until_closed(conn, Duration::from_secs(5))
            .await
            .expect("a connection over the per-address limit stays open");
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("\"UNAVAILABLE\""), "{answer}");
        refused += 1;
    }
    assert_eq!(refused, 12);

    // Another address is served meanwhile.
    let mut other = connect_from([127, 0, 0, 2], addr).await;
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut other, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // The slow ones are dropped after the header deadline (10 s), not kept for minutes.
    for conn in held.iter_mut().take(8) {
        let left = Duration::from_secs(40).saturating_sub(opened.elapsed());
        assert!(
            read_until_closed(conn, left).await.is_some(),
            "a partial request was still open after {:?}",
            opened.elapsed()
        );
    }
    // Their places are free again.
    let mut again = connect_from([127, 0, 0, 1], addr).await;
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut again, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_event_streams_end_and_tokens_stay_out_of_the_log() {
    let mut sb = Sandbox::start(SandboxOptions {
        server_env: vec![("SHOAL_LOG".into(), "debug".into())],
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    sb.start_sim_fleet(1, &[]).unwrap();
    let hosts = sb
        .wait_hosts_online(1, Duration::from_secs(30))
        .await
        .unwrap();
    let api = sb.api();
    let resp = api
        .execute(&shell("true", &[hosts[0].id], 60))
        .await
        .unwrap();
    let job = resp.job_instance_id;
    api.wait_job(job, Duration::from_secs(30)).await.unwrap();

    let token = sb.admin_token().to_string();
    let url = format!(
        "{}/api/v1/jobs/{job}/events?access_token={token}",
        sb.api_url()
    );
    let stream = reqwest::get(&url).await.unwrap();
    assert_eq!(stream.status(), 200);
    let body = tokio::time::timeout(Duration::from_secs(10), stream.text())
        .await
        .expect("the event stream of a finished job never ended")
        .unwrap();
    assert!(body.contains("event: job"), "{body}");
    assert!(body.contains("event: step"), "{body}");

    // Elsewhere a query token is refused, and is not logged either way.
    let other = reqwest::get(format!("{}/api/v1/jobs?access_token={token}", sb.api_url()))
        .await
        .unwrap();
    assert_eq!(other.status(), 401);
    let log = std::fs::read_to_string(sb.server_log()).unwrap();
    assert!(
        log.contains("/api/v1/jobs"),
        "debug request logs are missing"
    );
    assert!(!log.contains(&token), "the token reached the server log");
    assert!(
        !log.contains("access_token"),
        "a query string reached the server log"
    );
}

/// Whether process `pid` has exited (gone, or a zombie waiting for its parent).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_server_stops_at_once_on_sigterm() {
    let mut sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    sb.start_sim_fleet(3, &[]).unwrap();
    sb.wait_hosts_online(3, Duration::from_secs(30))
        .await
        .unwrap();
    let pid = sb.server_pid().unwrap();
    let sent = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    while !exited(pid) && sent.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = sent.elapsed();
    assert!(exited(pid), "the server did not stop within 20 s");
    // Before, the writer waited out a 5 s timeout every time.
    assert!(
        took < Duration::from_secs(3),
        "an idle server took {took:?} to stop"
    );
    let log = std::fs::read_to_string(sb.server_log()).unwrap();
    assert!(log.contains("shoal server stopped"), "{log}");
}
