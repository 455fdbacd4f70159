//! A stand-in agent endpoint for load-testing `shoal-agent simulate` without the real server:
//! `cargo run --release -p shoal-agent --example mock_server -- CA_OUT_PATH [BIND]`
//! writes its CA to CA_OUT_PATH, enrolls agents presenting the token `tok`, runs one task per
//! host and reports progress every 5 s.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::Ordering;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let ca_out = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: mock_server CA_OUT_PATH [BIND]"))?;
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:18681".into());
    let pki = common::pki();
    std::fs::copy(&pki.ca_path, &ca_out)?;
    let (addr, stats) = common::auto_server(pki.acceptor.clone(), &bind).await;
    eprintln!("mock server on {addr}, CA in {ca_out}");
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        eprintln!(
            "enrolls={} hellos={} results={}",
            stats.enrolls.load(Ordering::Relaxed),
            stats.hellos.load(Ordering::Relaxed),
            stats.results.lock().map(|r| r.len()).unwrap_or(0)
        );
    }
}
