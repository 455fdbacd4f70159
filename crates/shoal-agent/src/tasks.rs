//! The task manager: starts an executor per `Run` or `Fetch`, feeds its output into the [`Spool`], and
//! answers the server's `Kill`, `Ack` and `Forget`. Cheap to clone; sessions come and go, the
//! tasks and the spool stay.

use crate::contain;
use crate::exec::{self, Request, Sink};
use crate::files::runtime::Files;
use crate::launch;
use crate::spool::{Spool, Work};
use nix::sys::signal::Signal;
use shoal_proto::{End, FetchSpec, Outcome, Stream};
use shoal_types::files::FileErrorCode;
use shoal_types::{ScriptSpec, TaskKey, UnixMs};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{Notify, watch};

#[derive(Clone)]
pub struct Tasks {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Signalled whenever there may be something new to send.
    dirty: Notify,
    exec: launch::Config,
    local_cap: Option<u64>,
    next_run_id: AtomicU64,
    shutting_down: AtomicBool,
}

struct State {
    spool: Spool,
    running: HashMap<TaskKey, Running>,
}

struct Running {
    kill: watch::Sender<bool>,
    pgid: Arc<AtomicI32>,
}

impl Tasks {
    /// Opens the spool under `state_dir` (rebuilding it from disk) and prepares the scripts
    /// directory.
    pub fn open(state_dir: &std::path::Path, local_cap: Option<u64>) -> std::io::Result<Tasks> {
        let (spool, dropped) = Spool::open(&state_dir.join("spool"))?;
        for key in dropped {
            tracing::warn!(task = %key, "task was running when the agent stopped; its result is lost");
        }
        let scripts = state_dir.join("scripts");
        // Stale scripts of tasks that were running when the agent stopped.
        let _ = std::fs::remove_dir_all(&scripts);
        let mut exec = launch::Config::new(scripts);
        // Also kills what tasks of a previous run left behind.
        match contain::Tree::open(state_dir) {
            Ok(tree) => {
                tracing::info!(cgroup = %tree.base().display(), "tasks run in cgroups of their own");
                exec.cgroups = Some(Arc::new(tree));
            }
            Err(reason) => tracing::warn!(
                %reason,
                "no usable cgroup2 hierarchy: tasks are contained by process group only, so \
                 processes that start a new session survive terminate and timeout"
            ),
        }
        Ok(Tasks::with_spool(spool, exec, local_cap))
    }

    /// How this agent contains its tasks (reported in the host's facts).
    pub fn containment(&self) -> contain::Mode {
        self.inner.exec.containment()
    }

    pub fn with_spool(spool: Spool, exec: launch::Config, local_cap: Option<u64>) -> Tasks {
        Tasks {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    spool,
                    running: HashMap::new(),
                }),
                dirty: Notify::new(),
                exec,
                local_cap,
                next_run_id: AtomicU64::new(1),
                shutting_down: AtomicBool::new(false),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep going with it.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn poke(&self) {
        self.inner.dirty.notify_one();
    }

    /// Waits until something may be ready to send.
    pub async fn changed(&self) {
        self.inner.dirty.notified().await;
    }

    pub fn known(&self) -> Vec<TaskKey> {
        self.state().spool.known()
    }

    pub fn running(&self) -> u32 {
        self.state().spool.running()
    }

    pub fn begin_session(&self) {
        self.state().spool.begin_session();
        self.poke();
    }

    pub fn next_work(&self) -> Option<Work> {
        self.state().spool.next_work()
    }

    /// `Run`: starts the task unless the key is already known (running or spooled).
    pub fn run(&self, key: TaskKey, spec: ScriptSpec, server_cap: u64) {
        let server_cap = if server_cap == 0 {
            shoal_types::limits::OUTPUT_CAP_DEFAULT
        } else {
            server_cap
        };
        let output_cap = self.output_cap(server_cap);
        let (language, account) = (spec.language.name(), spec.account.clone());
        let launch_cfg = self.inner.exec.clone();
        self.start(key, move |mut sink, kill| async move {
            tracing::info!(task = %key, language, account = %account, "running task");
            let req = Request {
                key,
                spec,
                output_cap,
            };
            exec::execute(&launch_cfg, req, &mut sink, kill).await
        });
    }

    /// `Fetch`: a file task with the same lifecycle as a script (idempotent for a known key,
    /// spooled log and result, Kill). Without a file runtime it fails at once.
    pub fn fetch(&self, key: TaskKey, spec: Arc<FetchSpec>, files: Option<&Files>) {
        let output_cap = self.output_cap(shoal_types::limits::OUTPUT_CAP_DEFAULT);
        let files = files.cloned();
        self.start(key, move |mut sink, kill| async move {
            let Some(files) = files else {
                return spool_failure(End::FileFailed {
                    code: FileErrorCode::Other,
                    message: "file distribution is not enabled on this agent".into(),
                });
            };
            tracing::info!(task = %key, files = spec.files.len(), "fetching files");
            let ctx = files.start_fetch(key, &spec, output_cap);
            let outcome = crate::files::fetch::run(ctx, spec, &mut sink, kill).await;
            files.end_fetch(&key);
            outcome
        });
    }

    fn output_cap(&self, server_cap: u64) -> u64 {
        self.inner
            .local_cap
            .map_or(server_cap, |c| c.min(server_cap))
    }

    /// Registers `key` in the spool and runs `exec` with its sink and kill switch, unless the
    /// key is already known.
    fn start<F, Fut>(&self, key: TaskKey, exec: F)
    where
        F: FnOnce(SpoolSink, watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: Future<Output = Outcome> + Send,
    {
        let run_id = self.inner.next_run_id.fetch_add(1, Ordering::Relaxed);
        let (kill, kill_rx) = watch::channel(false);
        let pgid = Arc::new(AtomicI32::new(0));
        let output = {
            let mut state = self.state();
            if state.spool.contains(&key) {
                tracing::debug!(task = %key, "ignoring a task the agent already knows");
                return;
            }
            let created = state.spool.insert(key, run_id);
            state.running.insert(
                key,
                Running {
                    kill,
                    pgid: pgid.clone(),
                },
            );
            if let Err(e) = created {
                drop(state);
                tracing::error!(task = %key, error = %e, "cannot spool task");
                let reason = format!("cannot create the spool directory: {e}");
                let this = self.clone();
                tokio::spawn(async move {
                    let outcome = spool_failure(End::StartFailed { reason });
                    this.finish(key, run_id, outcome).await
                });
                return;
            }
            state.spool.output_path(&key)
        };
        let this = self.clone();
        tokio::spawn(async move {
            let file = tokio::fs::OpenOptions::new()
                .append(true)
                .open(&output)
                .await;
            let file =
                file.map_err(|e| tracing::error!(task = %key, error = %e, "opening spool file"));
            let sink = SpoolSink {
                tasks: this.clone(),
                key,
                run_id,
                file: file.ok(),
                pgid,
            };
            let outcome = exec(sink, kill_rx).await;
            this.finish(key, run_id, outcome).await;
        });
    }

    async fn finish(&self, key: TaskKey, run_id: u64, outcome: Outcome) {
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            // Leave no result: after the restart the server marks the task agent-abnormal.
            return;
        }
        tracing::info!(task = %key, end = ?outcome.end, output_len = outcome.output_len, "task ended");
        let record = self.state().spool.record_file(&key, run_id, &outcome);
        if let Some((path, bytes)) = record {
            let written = tokio::task::spawn_blocking(move || {
                crate::identity::write_atomic(&path, &bytes, 0o600)
            })
            .await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(task = %key, error = %e, "spooling result"),
                Err(e) => tracing::error!(task = %key, error = %e, "spooling result"),
            }
        }
        let mut state = self.state();
        state.spool.finished(&key, run_id, outcome);
        state.running.remove(&key);
        drop(state);
        self.poke();
    }

    /// `Kill`: terminates the task if it runs.
    pub fn kill(&self, key: &TaskKey) {
        if let Some(r) = self.state().running.get(key) {
            tracing::info!(task = %key, "killing task");
            let _ = r.kill.send(true);
        }
    }

    /// `Ack`: records it; deletes the task's spool once its result is acknowledged.
    pub fn ack(&self, key: &TaskKey, output_offset: u64, finished: bool) {
        let dir = self.state().spool.ack(key, output_offset, finished);
        if let Some(dir) = dir {
            remove_dir(dir);
        }
    }

    /// `Forget`: kills the task if it runs and deletes its spool.
    pub fn forget(&self, key: &TaskKey) {
        let (running, dir) = {
            let mut state = self.state();
            (state.running.remove(key), state.spool.forget(key))
        };
        if let Some(r) = running {
            let _ = r.kill.send(true);
        }
        if let Some(dir) = dir {
            tracing::info!(task = %key, "forgetting task");
            remove_dir(dir);
        }
    }

    /// Agent shutdown: kill every running task (its cgroup, and its process group) at once and
    /// record no results, so the next start treats these tasks as lost (see the spool's restart
    /// policy).
    pub async fn kill_all_now(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        if let Some(tree) = &self.inner.exec.cgroups {
            tree.kill_tasks_now();
        }
        for (key, r) in &self.state().running {
            let pgid = r.pgid.load(Ordering::SeqCst);
            tracing::warn!(task = %key, "agent stopping: killing task");
            exec::signal_group(pgid, Signal::SIGKILL);
        }
        if let Some(tree) = self.inner.exec.cgroups.clone() {
            let killed = tokio::task::spawn_blocking(move || tree.kill_all()).await;
            if let Err(e) = killed {
                tracing::error!(error = %e, "killing task cgroups");
            }
        }
    }
}

fn spool_failure(end: End) -> Outcome {
    Outcome {
        end,
        started_at: None,
        ended_at: exec::now_ms(),
        output_len: 0,
        truncated: false,
        digest: blake3::hash(b"").to_hex().to_string(),
        tag: None,
    }
}

fn remove_dir(dir: PathBuf) {
    tokio::task::spawn_blocking(move || {
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %dir.display(), error = %e, "removing spooled task");
        }
    });
}

/// Appends output to the task's spool file, then makes it visible to the session.
struct SpoolSink {
    tasks: Tasks,
    key: TaskKey,
    run_id: u64,
    file: Option<tokio::fs::File>,
    pgid: Arc<AtomicI32>,
}

impl Sink for SpoolSink {
    async fn started(&mut self, at: UnixMs, pgid: i32) {
        self.pgid.store(pgid, Ordering::SeqCst);
        self.tasks.state().spool.started(&self.key, self.run_id, at);
        self.tasks.poke();
    }

    async fn output(&mut self, stream: Stream, data: &[u8]) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let written = async {
            file.write_all(data).await?;
            file.flush().await
        };
        if let Err(e) = written.await {
            // The output is lost for the server; the digest still covers it.
            tracing::error!(task = %self.key, error = %e, "writing spool file; dropping further output");
            self.file = None;
            return;
        }
        self.tasks
            .state()
            .spool
            .appended(&self.key, self.run_id, stream, data.len() as u64);
        self.tasks.poke();
    }
}

#[cfg(test)]
mod tests {
    // Pins the task manager: a Run is idempotent, its output and result reach the send queue
    // in order and survive on disk until acknowledged, Kill ends it as Killed, and Forget
    // removes its spool.
    use super::*;
    use shoal_types::Language;
    use std::time::Duration;

    const KEY: TaskKey = TaskKey {
        step_id: 3,
        attempt: 0,
        host_id: 1,
    };

    fn spec(content: &str) -> ScriptSpec {
        ScriptSpec {
            language: Language::Shell,
            content: content.into(),
            args: vec![],
            env: vec![],
            account: String::new(),
            login_env: false,
            workdir: String::new(),
            timeout_secs: 30,
        }
    }

    async fn until_finished(tasks: &Tasks) -> Vec<Work> {
        let mut seen = Vec::new();
        for _ in 0..500 {
            while let Some(w) = tasks.next_work() {
                let done = matches!(w, Work::Finished { .. });
                seen.push(w);
                if done {
                    return seen;
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(20), tasks.changed()).await;
        }
        panic!("task did not finish: {seen:?}");
    }

    #[tokio::test]
    async fn run_spool_ack() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tasks = Tasks::open(dir.path(), Some(4)).expect("open");
        tasks.run(KEY, spec("printf hello"), 100);
        tasks.run(KEY, spec("echo duplicate"), 100);
        let work = until_finished(&tasks).await;
        assert!(matches!(work[0], Work::Started { .. }), "{work:?}");
        let Some(Work::Finished { outcome, .. }) = work.last() else {
            panic!("{work:?}")
        };
        assert_eq!(outcome.end, End::Exited { code: 0 });
        assert!(outcome.truncated, "local cap of 4 bytes applies");
        let spooled = dir.path().join("spool").join(KEY.to_string());
        assert!(spooled.join("outcome.json").exists());
        assert_eq!(
            std::fs::read(spooled.join("output")).expect("output")[..4],
            *b"hell"
        );
        assert_eq!(tasks.known(), [KEY]);
        tasks.ack(&KEY, outcome.output_len, true);
        assert!(tasks.known().is_empty());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!spooled.exists());
    }

    #[tokio::test]
    async fn kill_and_forget() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tasks = Tasks::open(dir.path(), None).expect("open");
        tasks.run(KEY, spec("sleep 100"), 100);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(tasks.running(), 1);
        tasks.kill(&KEY);
        let work = until_finished(&tasks).await;
        let Some(Work::Finished { outcome, .. }) = work.last() else {
            panic!("{work:?}")
        };
        assert_eq!(outcome.end, End::Killed);

        let other = TaskKey { attempt: 1, ..KEY };
        tasks.run(other, spec("sleep 100"), 100);
        tokio::time::sleep(Duration::from_millis(200)).await;
        tasks.forget(&other);
        assert!(!tasks.known().contains(&other));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!dir.path().join("spool").join(other.to_string()).exists());
    }
}
