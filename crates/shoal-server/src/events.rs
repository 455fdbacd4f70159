//! Live events for the push channel (`GET /api/v1/jobs/{id}/events`). One bounded broadcast
//! channel; subscribers filter by job. Per-host events (log, task) are only produced for
//! hosts someone is watching, so a 10,000-host job does not flood the channel; step progress
//! is coalesced by the writer.

use parking_lot::Mutex;
use shoal_types::api::JobEvent;
use shoal_types::{HostId, JobId};
use std::collections::HashMap;
use tokio::sync::broadcast;

pub struct Events {
    tx: broadcast::Sender<JobEvent>,
    watched: Mutex<HashMap<(JobId, HostId), usize>>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(4096).0,
            watched: Mutex::new(HashMap::new()),
        }
    }
}

impl Events {
    pub fn publish(&self, event: JobEvent) {
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.tx.subscribe()
    }

    pub fn is_watched(&self, job_id: JobId, host_id: HostId) -> bool {
        self.watched.lock().contains_key(&(job_id, host_id))
    }

    /// Registers interest in one host of a job until the guard is dropped.
    pub fn watch(self: &std::sync::Arc<Self>, job_id: JobId, host_id: HostId) -> WatchGuard {
        *self.watched.lock().entry((job_id, host_id)).or_default() += 1;
        WatchGuard {
            events: self.clone(),
            key: (job_id, host_id),
        }
    }
}

pub struct WatchGuard {
    events: std::sync::Arc<Events>,
    key: (JobId, HostId),
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        let mut w = self.events.watched.lock();
        if let Some(n) = w.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                w.remove(&self.key);
            }
        }
    }
}
