//! Pins the sandbox harness itself: each sandbox host runs in its own network namespace with its
//! own address, hostname and `/tmp`; two sandboxes at once never share a subnet or a name; and
//! dropping a sandbox (also by a panic) leaves no process, namespace, link or directory behind.

#![allow(clippy::unwrap_used)] // tests may unwrap

use shoal_testkit::sandbox::{Sandbox, SandboxOptions, require_root};
use std::process::Command;

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` inside the mount, UTS and network namespaces of process `pid`.
fn in_ns_of(pid: u32, cmd: &str) -> String {
    sh(&format!("nsenter -t {pid} -m -u -n sh -c '{cmd}'"))
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[tokio::test]
async fn hosts_are_isolated_and_drop_leaves_nothing_behind() {
    require_root().unwrap();
    let a = Sandbox::start(SandboxOptions::with_agents(2))
        .await
        .unwrap();
    let b = Sandbox::start(SandboxOptions::with_agents(1))
        .await
        .unwrap();
    assert_ne!(a.agent_ip(0), b.agent_ip(0), "two sandboxes share a subnet");

    let pid0 = a.agent_pid(0).unwrap();
    let pid1 = a.agent_pid(1).unwrap();
    // Give the launch chain (ip netns exec, unshare, sh) time to exec into the agent.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(in_ns_of(pid0, "hostname").trim(), "host-0");
    assert_eq!(in_ns_of(pid1, "hostname").trim(), "host-1");
    let addrs = in_ns_of(pid0, "ip -4 -o addr show dev eth0");
    assert!(addrs.contains(&format!("{}/24", a.agent_ip(0))), "{addrs}");

    // Each host has its own /tmp.
    in_ns_of(pid0, "echo zero > /tmp/shoal-testkit-probe");
    assert_eq!(
        in_ns_of(pid0, "cat /tmp/shoal-testkit-probe").trim(),
        "zero"
    );
    assert_eq!(
        in_ns_of(pid1, "ls /tmp/shoal-testkit-probe 2>/dev/null"),
        ""
    );
    assert!(!std::path::Path::new("/tmp/shoal-testkit-probe").exists());

    // Cutting a link takes the root side of the veth down, and back up.
    a.link_down(1).unwrap();
    let link = sh(&format!("ip -o link show dev shkv{}-1", slot_of(&a)));
    assert!(!link.contains(",UP"), "{link}");
    a.link_up(1).unwrap();

    let server_pid = a.server_pid().unwrap();
    let dir = a.dir().to_path_buf();
    let slot = slot_of(&a);
    assert!(alive(pid0) && alive(server_pid));
    drop(a);

    assert!(!alive(pid0) && !alive(pid1) && !alive(server_pid));
    assert!(!dir.exists(), "{} left behind", dir.display());
    let netns = sh("ip netns list");
    assert!(!netns.contains(&format!("shkns{slot}-")), "{netns}");
    let links = sh("ip -o link show");
    assert!(!links.contains(&format!("shkbr{slot}:")), "{links}");
    assert!(!links.contains(&format!("shkv{slot}-")), "{links}");
    // The other sandbox is untouched.
    assert!(alive(b.agent_pid(0).unwrap()));
}

#[tokio::test]
async fn a_panicking_test_still_cleans_up() {
    require_root().unwrap();
    let sb = Sandbox::start(SandboxOptions::with_agents(1))
        .await
        .unwrap();
    let pid = sb.agent_pid(0).unwrap();
    let slot = slot_of(&sb);
    let joined = std::thread::spawn(move || {
        let _sb = sb;
        panic!("deliberate panic inside a sandbox test");
    })
    .join();
    assert!(joined.is_err());
    assert!(!alive(pid));
    assert!(!sh("ip netns list").contains(&format!("shkns{slot}-")));
}

/// The subnet slot, read from host 0's address `10.213.<slot>.2`.
fn slot_of(sb: &Sandbox) -> u8 {
    match sb.agent_ip(0) {
        std::net::IpAddr::V4(v4) => v4.octets()[2],
        other => panic!("unexpected address {other}"),
    }
}
