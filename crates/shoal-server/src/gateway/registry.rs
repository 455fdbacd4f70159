//! Live agent sessions by host. Every (re)connection registers with the generation the database
//! handed out; a newer generation replaces (and so closes) an older session, and an older
//! session can never unregister a newer one. Only the registry keeps a session's sender for
//! long: dropping the entry (replaced, kicked, stalled) ends the session once its queue is
//! drained.

use parking_lot::Mutex;
use shoal_proto::ServerMsg;
use shoal_types::HostId;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::time::Instant;
use tokio::sync::mpsc;

#[derive(Clone)]
pub struct SessionHandle {
    pub generation: i64,
    pub tx: mpsc::Sender<ServerMsg>,
    /// Unix ms of the last frame received.
    pub last_frame: Arc<AtomicI64>,
    /// Currently reported as abnormal (late heartbeats).
    pub abnormal: Arc<AtomicBool>,
    /// Where the agent serves chunks to peers (the address it connected from, with the
    /// `peer_port` of its `Hello`); `None` for agents without file distribution.
    pub peer_addr: Option<std::net::SocketAddr>,
}

pub struct Registry {
    state: Mutex<State>,
    started: Instant,
}

#[derive(Default)]
struct State {
    sessions: HashMap<HostId, SessionHandle>,
    /// When each host's last session ended. Hosts never seen since start count from start.
    disconnected_at: HashMap<HostId, Instant>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            state: Mutex::new(State::default()),
            started: Instant::now(),
        }
    }
}

impl Registry {
    /// Registers a session; returns the one it replaced, if any.
    pub fn register(&self, host_id: HostId, handle: SessionHandle) -> Option<SessionHandle> {
        let mut st = self.state.lock();
        st.disconnected_at.remove(&host_id);
        st.sessions.insert(host_id, handle)
    }

    /// Called when a session ends. Returns whether the session should record the host as
    /// disconnected: true if it was still the registered session (or was kicked out), false if
    /// a newer session has taken over.
    pub fn unregister(&self, host_id: HostId, generation: i64) -> bool {
        let mut st = self.state.lock();
        match st.sessions.get(&host_id) {
            Some(h) if h.generation == generation => {
                st.sessions.remove(&host_id);
                st.disconnected_at.insert(host_id, Instant::now());
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    /// Drops a host's session (its agent was revoked): the session loop ends when its queue's
    /// sender is gone, and the agent's next Hello is rejected.
    pub fn kick(&self, host_id: HostId) {
        let mut st = self.state.lock();
        if st.sessions.remove(&host_id).is_some() {
            st.disconnected_at.insert(host_id, Instant::now());
        }
    }

    pub fn connected_among(&self, ids: &[HostId]) -> HashSet<HostId> {
        let st = self.state.lock();
        ids.iter()
            .copied()
            .filter(|id| st.sessions.contains_key(id))
            .collect()
    }

    /// Hosts among `ids` whose session is connected but late with its heartbeats.
    pub fn abnormal_among(&self, ids: &[HostId]) -> HashSet<HostId> {
        let st = self.state.lock();
        ids.iter()
            .copied()
            .filter(|id| {
                st.sessions
                    .get(id)
                    .is_some_and(|h| h.abnormal.load(std::sync::atomic::Ordering::Relaxed))
            })
            .collect()
    }

    /// `None` if the host has no session; `Some(None)` if its agent cannot do file steps (no
    /// peer port); `Some(Some(addr))` with its peer address otherwise.
    pub fn peer_capability(&self, host_id: HostId) -> Option<Option<std::net::SocketAddr>> {
        self.state
            .lock()
            .sessions
            .get(&host_id)
            .map(|h| h.peer_addr)
    }

    /// The session queue of a host, for senders that must wait for room (chunk data) instead
    /// of queueing without bound.
    pub fn sender(&self, host_id: HostId) -> Option<mpsc::Sender<ServerMsg>> {
        self.state
            .lock()
            .sessions
            .get(&host_id)
            .map(|h| h.tx.clone())
    }

    pub fn count(&self) -> usize {
        self.state.lock().sessions.len()
    }

    /// How long the host has been without a session (`None` while connected), and whether it
    /// has had one since this server started.
    pub fn disconnected_for(&self, host_id: HostId) -> Option<(std::time::Duration, bool)> {
        let st = self.state.lock();
        if st.sessions.contains_key(&host_id) {
            return None;
        }
        Some(match st.disconnected_at.get(&host_id) {
            Some(at) => (at.elapsed(), true),
            None => (self.started.elapsed(), false),
        })
    }

    pub fn sessions(&self) -> Vec<(HostId, SessionHandle)> {
        self.state
            .lock()
            .sessions
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }

    /// Queues a message for a host's session, in order: messages to one session leave in the
    /// order they were queued. Returns false if the host has no session or the message was not
    /// queued. Never blocks and never spawns: a session whose queue is full is stalled (its
    /// agent is far behind or gone), so it is dropped like a kicked one. What was queued before
    /// still goes out, nothing queued after the loss does, and the agent's reconnection
    /// re-sends the tasks that were never handed over (`session::reconcile`).
    pub fn send(&self, host_id: HostId, msg: ServerMsg) -> bool {
        let Some((tx, generation)) = self
            .state
            .lock()
            .sessions
            .get(&host_id)
            .map(|h| (h.tx.clone(), h.generation))
        else {
            return false;
        };
        match tx.try_send(msg) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.drop_stalled(host_id, generation);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Drops the session `generation` of a host because its queue is full (not a newer one
    /// that replaced it meanwhile).
    fn drop_stalled(&self, host_id: HostId, generation: i64) {
        let mut st = self.state.lock();
        if st
            .sessions
            .get(&host_id)
            .is_none_or(|h| h.generation != generation)
        {
            return;
        }
        st.sessions.remove(&host_id);
        st.disconnected_at.insert(host_id, Instant::now());
        drop(st);
        metrics::counter!("shoal_sessions_stalled_total").increment(1);
        tracing::warn!(
            host_id,
            generation,
            "the agent's session queue is full; dropping the session so that it reconnects"
        );
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
