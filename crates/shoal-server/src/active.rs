//! The in-memory index of work in flight: running steps (with the spec their agents need) and,
//! per host, the open tasks it owes a result for. Rebuilt from the database at start
//! (`recover`), kept in step with every dispatch and every applied result.
//!
//! It answers, without a database round trip: what to send an agent that (re)connects, which
//! tasks a lost agent takes down with it, and what a terminate must kill.

use parking_lot::Mutex;
use shoal_proto::FetchSpec;
use shoal_types::{HostId, JobId, RunStatus, ScriptSpec, StepId, TaskKey};
use std::collections::HashMap;
use std::sync::Arc;

/// What the hosts of a running step are sent.
#[derive(Clone, Debug)]
pub enum Payload {
    Script(Arc<ScriptSpec>),
    /// A file step: its targets' `Fetch`, `None` while the sources are scanned (nothing is
    /// sent until the plan is ready).
    File(Option<Arc<FetchSpec>>),
}

#[derive(Clone, Debug)]
pub struct RunningStep {
    pub job_id: JobId,
    pub attempt: u32,
    pub status: RunStatus,
    pub payload: Payload,
    /// When the current attempt started (Unix ms), for the completion-latency metric.
    pub started_ms: i64,
    /// When the step's last progress event went out (for coalescing).
    pub last_event_ms: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskSlot {
    pub job_id: JobId,
    /// A `Run` was handed to a session for it (since this process started, or the task was
    /// already running when it started).
    pub sent: bool,
}

#[derive(Default)]
struct State {
    steps: HashMap<StepId, RunningStep>,
    by_host: HashMap<HostId, HashMap<TaskKey, TaskSlot>>,
}

#[derive(Default)]
pub struct Active {
    state: Mutex<State>,
}

impl Active {
    pub fn add_step(&self, step_id: StepId, step: RunningStep) {
        self.state.lock().steps.insert(step_id, step);
    }

    pub fn step(&self, step_id: StepId) -> Option<RunningStep> {
        self.state.lock().steps.get(&step_id).cloned()
    }

    pub fn job_of(&self, step_id: StepId) -> Option<JobId> {
        self.state.lock().steps.get(&step_id).map(|s| s.job_id)
    }

    pub fn set_step_status(&self, step_id: StepId, status: RunStatus) {
        if let Some(s) = self.state.lock().steps.get_mut(&step_id) {
            s.status = status;
        }
    }

    /// Sets the `Fetch` of a file step's attempt once it is planned; false if that attempt is
    /// no longer running.
    pub fn set_fetch(&self, step_id: StepId, attempt: u32, spec: Arc<FetchSpec>) -> bool {
        match self.state.lock().steps.get_mut(&step_id) {
            Some(s) if s.attempt == attempt && s.status == RunStatus::Running => {
                s.payload = Payload::File(Some(spec));
                true
            }
            _ => false,
        }
    }

    /// Whether `attempt` of the step is running (not stopping, not ended, not superseded).
    pub fn is_running(&self, step_id: StepId, attempt: u32) -> bool {
        self.state
            .lock()
            .steps
            .get(&step_id)
            .is_some_and(|s| s.attempt == attempt && s.status == RunStatus::Running)
    }

    pub fn remove_step(&self, step_id: StepId) {
        self.state.lock().steps.remove(&step_id);
    }

    pub fn step_ids(&self) -> Vec<StepId> {
        self.state.lock().steps.keys().copied().collect()
    }

    /// Returns true (and records the time) when a progress event for the step is due.
    pub fn progress_due(&self, step_id: StepId, now_ms: i64, every_ms: i64) -> bool {
        let mut st = self.state.lock();
        match st.steps.get_mut(&step_id) {
            Some(s) if now_ms - s.last_event_ms >= every_ms => {
                s.last_event_ms = now_ms;
                true
            }
            _ => false,
        }
    }

    pub fn add_tasks(&self, tasks: impl IntoIterator<Item = (TaskKey, TaskSlot)>) {
        let mut st = self.state.lock();
        for (key, t) in tasks {
            st.by_host.entry(key.host_id).or_default().insert(key, t);
        }
    }

    pub fn mark_sent(&self, key: TaskKey) {
        if let Some(t) = self
            .state
            .lock()
            .by_host
            .get_mut(&key.host_id)
            .and_then(|m| m.get_mut(&key))
        {
            t.sent = true;
        }
    }

    pub fn remove_task(&self, key: &TaskKey) {
        let mut st = self.state.lock();
        if let Some(m) = st.by_host.get_mut(&key.host_id) {
            m.remove(key);
            if m.is_empty() {
                st.by_host.remove(&key.host_id);
            }
        }
    }

    pub fn tasks_of_host(&self, host_id: HostId) -> Vec<(TaskKey, TaskSlot)> {
        self.state
            .lock()
            .by_host
            .get(&host_id)
            .map(|m| m.iter().map(|(k, t)| (*k, *t)).collect())
            .unwrap_or_default()
    }

    pub fn hosts_with_tasks(&self) -> Vec<HostId> {
        self.state.lock().by_host.keys().copied().collect()
    }

    /// Open tasks of one step attempt.
    pub fn tasks_of_step(&self, step_id: StepId, attempt: u32) -> Vec<(TaskKey, TaskSlot)> {
        let st = self.state.lock();
        st.by_host
            .values()
            .flat_map(|m| m.iter())
            .filter(|(k, _)| k.step_id == step_id && k.attempt == attempt)
            .map(|(k, t)| (*k, *t))
            .collect()
    }

    /// The message that runs `key`, if its step is still running.
    pub fn run_message(&self, key: TaskKey, output_cap: u64) -> Option<shoal_proto::ServerMsg> {
        let st = self.state.lock();
        let step = st.steps.get(&key.step_id)?;
        if step.status != RunStatus::Running || step.attempt != key.attempt {
            return None;
        }
        match &step.payload {
            Payload::Script(spec) => Some(shoal_proto::ServerMsg::Run {
                key,
                spec: spec.clone(),
                output_cap,
            }),
            Payload::File(Some(spec)) => Some(shoal_proto::ServerMsg::Fetch {
                key,
                spec: spec.clone(),
            }),
            Payload::File(None) => None,
        }
    }
}
