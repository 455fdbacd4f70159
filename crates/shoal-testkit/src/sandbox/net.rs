//! The sandbox's private network: one bridge in the root namespace and, per agent, a network
//! namespace joined to it by a veth pair.
//!
//! Subnets are `10.213.<slot>.0/24`. A slot is owned by whoever holds an exclusive `flock` on
//! `/run/shoal-testkit/slot-<slot>.lock`, so test binaries running at the same time never share
//! names or addresses. Names carry the slot: bridge `shkbr<slot>`, namespace `shkns<slot>-<i>`,
//! root-side veth `shkv<slot>-<i>` (its peer becomes `eth0` inside the namespace). Leftovers of a
//! crashed run are found by these prefixes and removed once their slot's lock is free.

use anyhow::{Context, bail};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where slot locks and sandbox directories live (outside `/tmp`, which every sandbox host
/// replaces with its own tmpfs).
pub const RUN_DIR: &str = "/run/shoal-testkit";
const SLOTS: u16 = 250;
const BRIDGE_PREFIX: &str = "shkbr";
const NETNS_PREFIX: &str = "shkns";
const VETH_PREFIX: &str = "shkv";
const PEER_PREFIX: &str = "shkp";
/// Jumbo frames on the private network: 6x fewer packets for the kernel to switch and shape
/// than 1500-byte frames, which matters when 17 namespaces move 200 MB/s on 2 cores.
const MTU: &str = "9000";

/// An exclusively held subnet slot. Released when dropped.
#[derive(Debug)]
pub struct Slot {
    pub n: u16,
    _lock: Flock<File>,
}

impl Slot {
    /// Takes the first free slot, starting at a point derived from the process id so that
    /// concurrent binaries rarely contend. Sweeps leftovers of every free slot first.
    pub fn acquire() -> anyhow::Result<Slot> {
        std::fs::create_dir_all(RUN_DIR).with_context(|| format!("creating {RUN_DIR}"))?;
        sweep_stale();
        let start = (std::process::id() % u32::from(SLOTS)) as u16;
        for k in 0..SLOTS {
            let n = (start + k) % SLOTS;
            if let Some(lock) = try_lock(n)? {
                let slot = Slot { n, _lock: lock };
                // A crashed run may have left this slot's names behind.
                clean_slot(n, true);
                return Ok(slot);
            }
        }
        bail!("all {SLOTS} sandbox slots under {RUN_DIR} are in use")
    }

    pub fn bridge(&self) -> String {
        format!("{BRIDGE_PREFIX}{}", self.n)
    }
    pub fn bridge_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.n as u8, 1)
    }
    pub fn netns(&self, i: usize) -> String {
        format!("{NETNS_PREFIX}{}-{i}", self.n)
    }
    pub fn veth(&self, i: usize) -> String {
        format!("{VETH_PREFIX}{}-{i}", self.n)
    }
    fn peer(&self, i: usize) -> String {
        format!("{PEER_PREFIX}{}-{i}", self.n)
    }
    pub fn agent_ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.n as u8, (i + 2) as u8)
    }
    /// The prefix of sandbox directories of this slot under [`RUN_DIR`].
    pub fn dir_prefix(&self) -> String {
        format!("sb{}.", self.n)
    }

    /// Creates the bridge with its address.
    pub fn create_bridge(&self) -> anyhow::Result<()> {
        let br = self.bridge();
        ip(&["link", "add", "name", &br, "type", "bridge"])?;
        ip(&["link", "set", &br, "mtu", MTU])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", self.bridge_ip()),
            "dev",
            &br,
        ])?;
        ip(&["link", "set", &br, "up"])
    }

    /// Creates host `i`'s namespace and joins it to the bridge.
    pub fn create_host(&self, i: usize) -> anyhow::Result<()> {
        anyhow::ensure!(i < 250, "a sandbox holds at most 250 hosts");
        let (ns, veth, peer) = (self.netns(i), self.veth(i), self.peer(i));
        ip(&["netns", "add", &ns])?;
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", &peer, "netns", &ns,
        ])?;
        ip(&["link", "set", &veth, "mtu", MTU])?;
        ip(&["-n", &ns, "link", "set", &peer, "mtu", MTU])?;
        ip(&["link", "set", &veth, "master", &self.bridge(), "up"])?;
        ip(&["-n", &ns, "link", "set", &peer, "name", "eth0"])?;
        let addr = format!("{}/24", self.agent_ip(i));
        ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])
    }

    pub fn set_link(&self, i: usize, up: bool) -> anyhow::Result<()> {
        ip(&["link", "set", &self.veth(i), if up { "up" } else { "down" }])
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The sandbox directory is its owner's to keep or delete.
        clean_slot(self.n, false);
    }
}

fn lock_path(n: u16) -> PathBuf {
    Path::new(RUN_DIR).join(format!("slot-{n}.lock"))
}

fn try_lock(n: u16) -> anyhow::Result<Option<Flock<File>>> {
    let path = lock_path(n);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

/// Runs `ip ARGS`, failing with its stderr.
pub fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (install iproute2)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn ip_output(args: &[&str]) -> String {
    Command::new("ip")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The slot a sandbox name belongs to, if it has one of our prefixes.
fn slot_of(name: &str) -> Option<u16> {
    let rest = [BRIDGE_PREFIX, NETNS_PREFIX, VETH_PREFIX, PEER_PREFIX]
        .iter()
        .find_map(|p| name.strip_prefix(p))?;
    rest.split('-').next()?.parse().ok()
}

fn netns_names() -> Vec<String> {
    ip_output(&["netns", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn link_names() -> Vec<String> {
    // `ip -o link show` lines look like `12: shkv3-0@if11: <...> ...`.
    ip_output(&["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect()
}

/// Removes the names and directories of every slot whose lock is free.
fn sweep_stale() {
    let mut slots: Vec<u16> = netns_names()
        .iter()
        .chain(link_names().iter())
        .filter_map(|n| slot_of(n))
        .collect();
    if let Ok(dir) = std::fs::read_dir(RUN_DIR) {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(n) = name
                .strip_prefix("sb")
                .and_then(|r| r.split('.').next())
                .and_then(|n| n.parse().ok())
            {
                slots.push(n);
            }
        }
    }
    slots.sort_unstable();
    slots.dedup();
    for n in slots {
        if let Ok(Some(_lock)) = try_lock(n) {
            tracing::info!(slot = n, "removing leftovers of a crashed sandbox");
            clean_slot(n, true);
        }
    }
}

/// Kills processes in the slot's namespaces and deletes its namespaces, links and directories.
/// Best effort: errors are ignored (the thing may already be gone).
fn clean_slot(n: u16, dirs: bool) {
    for ns in netns_names() {
        if slot_of(&ns) != Some(n) || !ns.starts_with(NETNS_PREFIX) {
            continue;
        }
        for pid in ip_output(&["netns", "pids", &ns]).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = ip(&["netns", "del", &ns]);
    }
    for link in link_names() {
        if slot_of(&link) == Some(n)
            && (link.starts_with(VETH_PREFIX) || link.starts_with(BRIDGE_PREFIX))
        {
            let _ = ip(&["link", "del", &link]);
        }
    }
    if !dirs {
        return;
    }
    if let Ok(dir) = std::fs::read_dir(RUN_DIR) {
        let prefix = format!("sb{n}.");
        for entry in dir.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_in_ifnamsiz_and_map_back_to_their_slot() {
        for n in [0u16, 9, 249] {
            for i in [0usize, 7, 249] {
                for name in [
                    format!("{BRIDGE_PREFIX}{n}"),
                    format!("{NETNS_PREFIX}{n}-{i}"),
                    format!("{VETH_PREFIX}{n}-{i}"),
                    format!("{PEER_PREFIX}{n}-{i}"),
                ] {
                    assert!(name.len() <= 15, "{name}");
                    assert_eq!(slot_of(&name), Some(n), "{name}");
                }
            }
        }
        assert_eq!(slot_of("eth0"), None);
        assert_eq!(slot_of("shkbrX"), None);
    }
}
