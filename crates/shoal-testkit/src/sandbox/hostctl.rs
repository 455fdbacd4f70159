//! Reaching into a sandbox host: run a shell command in its namespaces (its own `/tmp`, its
//! network), and shape its link with `tc` (a token bucket each way, so a host's upload and its
//! download are both limited to the same bandwidth).

use super::Sandbox;
use anyhow::{Context, bail};
use std::process::{Command, Output};

impl Sandbox {
    /// Runs `sh -c script` inside host `i`'s mount, network and UTS namespaces (entered
    /// through its agent's pid, so the agent must be running). Fails unless it exits 0.
    pub fn host_sh(&self, i: usize, script: &str) -> anyhow::Result<String> {
        let out = self.host_sh_output(i, script)?;
        if !out.status.success() {
            bail!(
                "host {i}: `{script}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Like [`Sandbox::host_sh`], but returns the output whatever the exit status.
    pub fn host_sh_output(&self, i: usize, script: &str) -> anyhow::Result<Output> {
        let pid = self
            .agent_pid(i)
            .with_context(|| format!("agent {i} is not running"))?;
        Command::new("nsenter")
            .args([
                "-t",
                &pid.to_string(),
                "-m",
                "-n",
                "-u",
                "--",
                "sh",
                "-c",
                script,
            ])
            .output()
            .with_context(|| format!("nsenter into host {i}"))
    }

    /// Limits host `i`'s link to `mbit` Mbit/s in both directions (egress of its `eth0` and
    /// of the bridge side of its veth), replacing any earlier limit.
    pub fn limit_bandwidth(&self, i: usize, mbit: u32) -> anyhow::Result<()> {
        let slot = self.net.as_ref().context("no network")?;
        let rate = format!("{mbit}mbit");
        // A burst of ~20 ms of traffic (at least 64 KiB, so GSO packets pass whole instead of
        // being split in the qdisc) and a queue of ~100 ms keep TCP near the rate without
        // making the kernel shape every 1500-byte packet.
        let burst = format!("{}kb", (mbit * 1000 / 8 / 50).max(64));
        let tbf = ["tbf", "rate", &rate, "burst", &burst, "latency", "100ms"];
        let (ns, veth) = (slot.netns(i), slot.veth(i));
        let mut inside = vec!["-n", &ns, "qdisc", "replace", "dev", "eth0", "root"];
        inside.extend(tbf);
        tc(&inside)?;
        let mut outside = vec!["qdisc", "replace", "dev", &veth, "root"];
        outside.extend(tbf);
        tc(&outside)
    }

    /// Removes host `i`'s bandwidth limit.
    pub fn clear_bandwidth(&self, i: usize) -> anyhow::Result<()> {
        let slot = self.net.as_ref().context("no network")?;
        let (ns, veth) = (slot.netns(i), slot.veth(i));
        let _ = tc(&["-n", &ns, "qdisc", "del", "dev", "eth0", "root"]);
        let _ = tc(&["qdisc", "del", "dev", &veth, "root"]);
        Ok(())
    }

    /// The network namespace of host `i` (for running other programs in it).
    pub fn netns(&self, i: usize) -> anyhow::Result<String> {
        Ok(self.net.as_ref().context("no network")?.netns(i))
    }
}

fn tc(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("tc")
        .args(args)
        .output()
        .context("running tc (install iproute2)")?;
    if !out.status.success() {
        bail!(
            "tc {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
