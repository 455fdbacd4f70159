//! Coalesced writes of per-file progress: reports queue in one bounded channel and are applied
//! in one `apply_file_progress` call per ~200 ms window (or per [`MAX_BATCH`] reports), not one
//! transaction per agent message. The store folds reports per row idempotently, so order within
//! a window and repeats do not matter.

use parking_lot::Mutex;
use shoal_store::{FileProgress, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const QUEUE: usize = 16_384;
const MAX_BATCH: usize = 8_192;
const WINDOW: Duration = Duration::from_millis(200);

pub struct Queue {
    tx: mpsc::Sender<FileProgress>,
    /// Taken by the first push, which starts the writing task.
    rx: Mutex<Option<mpsc::Receiver<FileProgress>>>,
}

impl Queue {
    pub fn new() -> Queue {
        let (tx, rx) = mpsc::channel(QUEUE);
        Queue {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }

    /// Queues reports, waiting while the writer is behind.
    pub async fn push(&self, store: &Arc<dyn Store>, reports: Vec<FileProgress>) {
        if reports.is_empty() {
            return;
        }
        let rx = self.rx.lock().take();
        if let Some(rx) = rx {
            tokio::spawn(run(store.clone(), rx));
        }
        for r in reports {
            if self.tx.send(r).await.is_err() {
                return;
            }
        }
    }
}

/// The writing task: ends when every sender is gone.
async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<FileProgress>) {
    let mut batch = Vec::new();
    loop {
        let Some(first) = rx.recv().await else { return };
        batch.push(first);
        let window = tokio::time::sleep(WINDOW);
        tokio::pin!(window);
        while batch.len() < MAX_BATCH {
            tokio::select! {
                _ = &mut window => break,
                next = rx.recv() => match next {
                    Some(r) => batch.push(r),
                    None => break,
                },
            }
        }
        let mut delay = Duration::from_millis(100);
        for tries in 1.. {
            match store.apply_file_progress(&batch).await {
                Ok(()) => break,
                Err(e) if tries < 5 => {
                    tracing::warn!(error = %e, reports = batch.len(), retry_in_ms = delay.as_millis() as u64, "storing file progress failed");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => {
                    tracing::error!(error = %e, reports = batch.len(), "storing file progress failed; dropping the batch");
                    break;
                }
            }
        }
        batch.clear();
    }
}
