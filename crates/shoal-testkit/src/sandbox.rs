//! The multi-host sandbox: a real `shoal server` (SQLite in a temp data dir, or a PostgreSQL URL)
//! and N real `shoal-agent`s, each in its own network namespace (joined to a private bridge with
//! its own address), mount namespace (its own `/tmp`, and the host's cgroup2 hierarchy at
//! `/sys/fs/cgroup`) and UTS namespace (hostname `host-<i>`).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use shoal_testkit::sandbox::{Sandbox, SandboxOptions};
//! let sb = Sandbox::start(SandboxOptions::with_agents(3)).await?;
//! sb.wait_hosts_online(3, std::time::Duration::from_secs(20)).await?;
//! # Ok(()) }
//! ```
//!
//! Everything is torn down by `Drop`, also when a test panics (the server and agent logs are
//! then printed to stderr; set `SHOAL_TESTKIT_KEEP=1` to keep the sandbox directory). Namespaced
//! agents need root; a sandbox with no namespaced agents (server plus simulated fleets on
//! loopback) does not.

mod cgroups;
mod hostctl;
mod net;
mod procs;

pub use cgroups::cgroup_dir;
pub use procs::{Bins, ServerSpec, proc_status_kib, tail};

use crate::api::Api;
use anyhow::{Context, bail};
use shoal_types::HostId;
use shoal_types::api::Host;
use shoal_types::api::HostSummary;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// What to start.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Real agents, each in its own namespaces. More than zero needs root.
    pub agents: usize,
    /// `postgres://...`; `None` means SQLite in the data dir.
    pub database_url: Option<String>,
    /// The server's `--agent-lost-grace`, seconds.
    pub agent_lost_grace_secs: u64,
    /// The server's `--heartbeat-secs`; `None` keeps the server's default.
    pub heartbeat_secs: Option<u32>,
    /// Extra server flags.
    pub server_args: Vec<String>,
    /// Extra environment variables for the server (e.g. `SHOAL_LOG`).
    pub server_env: Vec<(String, String)>,
    /// Extra flags for every real agent.
    pub agent_args: Vec<String>,
    /// Where `shoal` and `shoal-agent` are; `None` finds them with [`Bins::locate`].
    pub bins: Option<Bins>,
    /// How long to wait for the server to answer `/healthz`.
    pub server_start_timeout: Duration,
    /// Mount a tmpfs of this size (e.g. `"64m"`) on the server's data directory, to fill it
    /// up in tests. Needs root.
    pub data_dir_size: Option<String>,
    /// The caller runs the server itself (in its own process, e.g. a server-crate test that
    /// needs the server's internals): [`Sandbox::start`] builds the network and directories
    /// only, [`Sandbox::server_spec`] says where the server must listen and keep its data, and
    /// [`Sandbox::attach`] waits for it and starts the agents.
    pub external_server: bool,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            agents: 0,
            database_url: None,
            agent_lost_grace_secs: 3,
            heartbeat_secs: None,
            server_args: Vec::new(),
            server_env: Vec::new(),
            agent_args: Vec::new(),
            bins: None,
            server_start_timeout: Duration::from_secs(60),
            data_dir_size: None,
            external_server: false,
        }
    }
}

impl SandboxOptions {
    pub fn with_agents(agents: usize) -> SandboxOptions {
        SandboxOptions {
            agents,
            ..SandboxOptions::default()
        }
    }
}

/// Fails with a clear message unless the process is root (network namespaces need it).
pub fn require_root() -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "this needs root: the sandbox creates network namespaces, veth pairs and a bridge \
             (CI runs as root; run `sudo -E cargo test -p shoal-testkit`)"
        );
    }
    Ok(())
}

/// A running server, its agents and simulated fleets. See the module docs.
pub struct Sandbox {
    opts: SandboxOptions,
    bins: Bins,
    dir: Option<tempfile::TempDir>,
    data_dir: PathBuf,
    /// The slot when there is a network (real agents).
    net: Option<net::Slot>,
    /// The slot when there is none (held for the directory sweep only).
    dir_lock: Option<net::Slot>,
    server_spec: procs::ServerSpec,
    server: Option<Child>,
    agents: Vec<Option<Child>>,
    fleets: Vec<Child>,
    admin_token: String,
    api: Api,
}

impl Sandbox {
    /// Creates the network, starts the server and waits until it answers, then starts the
    /// agents (without waiting for them: see [`Sandbox::wait_hosts_online`]).
    pub async fn start(opts: SandboxOptions) -> anyhow::Result<Sandbox> {
        let bins = match &opts.bins {
            Some(b) => b.clone(),
            None => Bins::locate()?,
        };
        let is_root = nix::unistd::geteuid().is_root();
        if opts.agents > 0 {
            require_root()?;
        }
        // As root every sandbox holds a slot, so a crashed run's directory is swept like its
        // network; only sandboxes with real agents build the network.
        let slot = if is_root {
            Some(net::Slot::acquire()?)
        } else {
            None
        };
        let parent = match &slot {
            Some(_) => PathBuf::from(net::RUN_DIR),
            None => std::env::temp_dir(),
        };
        std::fs::create_dir_all(&parent)?;
        let prefix = match &slot {
            Some(slot) => slot.dir_prefix(),
            None => "shoal-testkit-".to_owned(),
        };
        let (net, dir_lock) = match slot {
            Some(slot) if opts.agents > 0 => {
                slot.create_bridge()?;
                for i in 0..opts.agents {
                    slot.create_host(i)?;
                }
                (Some(slot), None)
            }
            other => (None, other),
        };
        let dir = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir_in(&parent)
            .with_context(|| format!("creating a sandbox dir in {}", parent.display()))?;
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir)?;
        if let Some(size) = &opts.data_dir_size {
            require_root()?;
            let ok = std::process::Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size},mode=0700"),
                    "tmpfs",
                ])
                .arg(&data_dir)
                .status()?
                .success();
            anyhow::ensure!(ok, "mounting a {size} tmpfs on {}", data_dir.display());
        }
        // Sandbox hosts get their own tmpfs on /tmp, which hides a binary built in a checkout
        // under /tmp; the sandbox dir is outside /tmp, so the hosts run a copy kept there.
        let bins = if net.is_some() {
            bins.with_agent_copied_to(dir.path())?
        } else {
            bins
        };

        let agent_ip = match &net {
            Some(slot) => IpAddr::V4(slot.bridge_ip()),
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let server_spec = procs::ServerSpec {
            data_dir: data_dir.clone(),
            database_url: opts.database_url.clone(),
            listen: SocketAddr::new(loopback, procs::free_port(loopback)?),
            agent_listen: SocketAddr::new(agent_ip, procs::free_port(agent_ip)?),
            agent_lost_grace_secs: opts.agent_lost_grace_secs,
            heartbeat_secs: opts.heartbeat_secs,
            extra_args: opts.server_args.clone(),
            env: opts.server_env.clone(),
            log: dir.path().join("server.log"),
        };
        let api = Api::new(format!("http://{}", server_spec.listen), "");
        let mut sandbox = Sandbox {
            agents: (0..opts.agents).map(|_| None).collect(),
            opts,
            bins,
            dir: Some(dir),
            data_dir,
            net,
            dir_lock,
            server_spec,
            server: None,
            fleets: Vec::new(),
            admin_token: String::new(),
            api,
        };
        if !sandbox.opts.external_server {
            sandbox.attach().await?;
        }
        Ok(sandbox)
    }

    /// Where the server listens and keeps its data (see [`SandboxOptions::external_server`]).
    pub fn server_spec(&self) -> &procs::ServerSpec {
        &self.server_spec
    }

    /// Starts the server (unless it runs outside, see [`SandboxOptions::external_server`]),
    /// waits until it answers, then starts the agents.
    pub async fn attach(&mut self) -> anyhow::Result<()> {
        self.restart_server().await?;
        for i in 0..self.opts.agents {
            self.start_agent(i)?;
        }
        Ok(())
    }

    /// The sandbox's directory (server data, agent state dirs, logs).
    pub fn dir(&self) -> &Path {
        match &self.dir {
            Some(d) => d.path(),
            None => &self.data_dir,
        }
    }
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    pub fn bins(&self) -> &Bins {
        &self.bins
    }
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }
    /// `http://127.0.0.1:PORT` of the REST API.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.server_spec.listen)
    }
    /// Where agents connect.
    pub fn agent_endpoint(&self) -> SocketAddr {
        self.server_spec.agent_listen
    }
    /// The REST helper with the admin token.
    pub fn api(&self) -> Api {
        self.api.clone()
    }
    /// The typed client with the admin token.
    pub fn client(&self) -> shoal_client::Client {
        shoal_client::Client::new(self.api_url(), Some(self.admin_token.clone()))
    }
    pub fn server_log(&self) -> PathBuf {
        self.server_spec.log.clone()
    }
    pub fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().map(Child::id)
    }
    pub fn agent_count(&self) -> usize {
        self.agents.len()
    }
    pub fn agent_pid(&self, i: usize) -> Option<u32> {
        self.agents.get(i)?.as_ref().map(Child::id)
    }
    /// Host `i`'s address on the sandbox network.
    pub fn agent_ip(&self, i: usize) -> IpAddr {
        match &self.net {
            Some(slot) => IpAddr::V4(slot.agent_ip(i)),
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }
    /// Host `i`'s hostname (also set in its UTS namespace and passed as
    /// `SHOAL_AGENT_HOSTNAME`).
    pub fn agent_hostname(&self, i: usize) -> String {
        format!("host-{i}")
    }
    fn agent_log(&self, i: usize) -> PathBuf {
        self.dir().join(format!("agent-{i}.log"))
    }

    /// SIGKILLs the server.
    pub fn kill_server(&mut self) {
        if let Some(mut child) = self.server.take() {
            procs::kill(&mut child);
        }
    }

    /// (Re)starts the server with the same data, database and ports, and waits until it
    /// answers `/healthz`. Kills it first if it is running.
    pub async fn restart_server(&mut self) -> anyhow::Result<()> {
        if !self.opts.external_server {
            self.kill_server();
            let child = procs::spawn_server(&self.bins, &self.server_spec)?;
            self.server = Some(child);
        }
        let deadline = Instant::now() + self.opts.server_start_timeout;
        loop {
            if let Some(child) = &mut self.server
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!(
                    "the server exited at start ({status}); its log:\n{}",
                    procs::tail(&self.server_spec.log, 8000)
                );
            }
            if self.api.healthy().await {
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "the server did not answer /healthz within {:?}; its log:\n{}",
                    self.opts.server_start_timeout,
                    procs::tail(&self.server_spec.log, 8000)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let token_path = self.data_dir.join("admin.token");
        let token = std::fs::read_to_string(&token_path)
            .with_context(|| format!("reading {}", token_path.display()))?;
        self.admin_token = token.trim().to_owned();
        self.api = self.api.with_token(self.admin_token.clone());
        Ok(())
    }

    /// Starts real agent `i` (again) in its namespaces. Its state dir survives restarts, so it
    /// comes back as the same host.
    pub fn start_agent(&mut self, i: usize) -> anyhow::Result<()> {
        anyhow::ensure!(i < self.agents.len(), "no agent {i}");
        self.kill_agent(i);
        let slot = self
            .net
            .as_ref()
            .context("this sandbox has no real agents")?;
        let state = self.dir().join(format!("agent-{i}"));
        std::fs::create_dir_all(&state)?;
        let conn = procs::agent_conn_args(&self.data_dir, self.agent_endpoint(), &state);
        let child = procs::spawn_netns_agent(
            &self.bins,
            &slot.netns(i),
            &self.agent_hostname(i),
            &conn,
            &self.opts.agent_args,
            &self.agent_log(i),
        )?;
        self.agents[i] = Some(child);
        Ok(())
    }

    /// SIGKILLs real agent `i` (the agent process only: scripts it started may live on, as
    /// they would on a real host).
    pub fn kill_agent(&mut self, i: usize) {
        if let Some(Some(mut child)) = self.agents.get_mut(i).map(Option::take) {
            procs::kill(&mut child);
        }
    }

    /// Stops real agent `i` as a service manager would: SIGTERM (the agent kills its running
    /// tasks and exits), SIGKILL if it is still there after 10 s.
    pub fn stop_agent(&mut self, i: usize) {
        if let Some(Some(mut child)) = self.agents.get_mut(i).map(Option::take) {
            procs::stop(&mut child, Duration::from_secs(10));
        }
    }

    /// Cuts host `i`'s link (the root side of its veth goes down).
    pub fn link_down(&self, i: usize) -> anyhow::Result<()> {
        self.net.as_ref().context("no network")?.set_link(i, false)
    }
    pub fn link_up(&self, i: usize) -> anyhow::Result<()> {
        self.net.as_ref().context("no network")?.set_link(i, true)
    }

    /// Starts `shoal-agent simulate --count N` against this server (it stays up until the
    /// sandbox is dropped or [`Sandbox::kill_fleets`]). Returns the fleet's pid.
    pub fn start_sim_fleet(&mut self, count: usize, extra_args: &[String]) -> anyhow::Result<u32> {
        let k = self.fleets.len();
        let state = self.dir().join(format!("fleet-{k}"));
        std::fs::create_dir_all(&state)?;
        let conn = procs::agent_conn_args(&self.data_dir, self.agent_endpoint(), &state);
        let log = self.dir().join(format!("fleet-{k}.log"));
        let child = procs::spawn_sim_fleet(&self.bins, count, &conn, extra_args, &log)?;
        let pid = child.id();
        self.fleets.push(child);
        Ok(pid)
    }

    pub fn kill_fleets(&mut self) {
        for mut child in self.fleets.drain(..) {
            procs::kill(&mut child);
        }
    }

    /// Waits until at least `n` hosts are online; returns the online hosts.
    pub async fn wait_hosts_online(
        &self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<Host>> {
        let deadline = Instant::now() + timeout;
        let mut last: Option<HostSummary> = None;
        loop {
            if let Ok(s) = self.api.summary().await {
                if s.online >= n as u64 {
                    let hosts = self.api.hosts().await?;
                    return Ok(hosts
                        .into_iter()
                        .filter(|h| h.status == shoal_types::AgentStatus::Online)
                        .collect());
                }
                last = Some(s);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{n} hosts not online after {timeout:?} (last summary: {last:?}); server log:\n{}",
                    procs::tail(&self.server_spec.log, 4000)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The host id of real agent `i` (matched by its hostname `host-<i>`).
    pub async fn host_id(&self, i: usize) -> anyhow::Result<HostId> {
        let name = self.agent_hostname(i);
        let hosts = self.api.hosts().await?;
        hosts
            .iter()
            .find(|h| h.hostname == name)
            .map(|h| h.id)
            .with_context(|| format!("no host named {name} among {} hosts", hosts.len()))
    }

    /// Host ids of every real agent, by index.
    pub async fn host_ids(&self) -> anyhow::Result<Vec<HostId>> {
        let hosts = self.api.hosts().await?;
        (0..self.agents.len())
            .map(|i| {
                let name = self.agent_hostname(i);
                hosts
                    .iter()
                    .find(|h| h.hostname == name)
                    .map(|h| h.id)
                    .with_context(|| format!("no host named {name}"))
            })
            .collect()
    }

    fn dump_logs(&self) {
        let mut logs = vec![self.server_spec.log.clone()];
        logs.extend((0..self.agents.len()).map(|i| self.agent_log(i)));
        logs.extend((0..self.fleets.len()).map(|k| self.dir().join(format!("fleet-{k}.log"))));
        for log in logs {
            eprintln!(
                "----- {} (tail) -----\n{}",
                log.display(),
                procs::tail(&log, 6000)
            );
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Stopped, not killed, so they take their scripts and task cgroups with them; what
        // agents killed during the test left behind goes too.
        for i in 0..self.agents.len() {
            self.stop_agent(i);
            cgroups::remove_agent_cgroups(&self.dir().join(format!("agent-{i}")));
        }
        self.kill_fleets();
        self.kill_server();
        if std::thread::panicking() {
            self.dump_logs();
        }
        if std::env::var_os("SHOAL_TESTKIT_KEEP").is_some()
            && let Some(dir) = self.dir.take()
        {
            // Renamed out of the way of the sweep of stale `sb<slot>.` directories.
            let kept = dir.keep();
            let name = kept.file_name().map(|n| n.to_string_lossy().into_owned());
            let target = kept.with_file_name(format!("kept-{}", name.unwrap_or_default()));
            let shown = match std::fs::rename(&kept, &target) {
                Ok(()) => target,
                Err(_) => kept,
            };
            eprintln!("shoal-testkit: keeping {}", shown.display());
        }
        if self.opts.data_dir_size.is_some() {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.data_dir)
                .status();
        }
        // The directory goes before the slot is free for others.
        drop(self.dir.take());
        // Namespaces, veths and bridge go with the slot.
        self.net.take();
        self.dir_lock.take();
    }
}
