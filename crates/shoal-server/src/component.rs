//! Long-running components. Each has one shape: options (or what it serves) passed to `new`
//! (or a struct literal), a cheap handle where others talk to it (`WriterHandle`, `Registry`),
//! and `run(self, cancel)`, which returns once `cancel` fires and its work is wound down. They
//! are started here, by name, and joined in the order `lib.rs` declares.

use std::future::Future;
use std::time::Duration;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

/// A started component.
pub struct Task {
    name: &'static str,
    handle: JoinHandle<()>,
}

/// Starts a component's `run` future as a task named `name` (in its log span).
pub fn spawn(name: &'static str, run: impl Future<Output = ()> + Send + 'static) -> Task {
    tracing::debug!(component = name, "starting");
    let span = tracing::info_span!("component", name);
    Task {
        name,
        handle: tokio::spawn(run.instrument(span)),
    }
}

impl Task {
    /// Waits for the component to stop (at most `within`), and says how it ended.
    pub async fn join(self, within: Option<Duration>) {
        let result = match within {
            None => Ok(self.handle.await),
            Some(limit) => tokio::time::timeout(limit, self.handle).await,
        };
        match result {
            Ok(Ok(())) => tracing::debug!(component = self.name, "stopped"),
            Ok(Err(e)) => tracing::error!(component = self.name, error = %e, "component failed"),
            Err(_) => tracing::warn!(
                component = self.name,
                "still stopping after {:?}; going on without it",
                within.unwrap_or_default()
            ),
        }
    }
}
