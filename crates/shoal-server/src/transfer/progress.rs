//! Coalesced writes of per-file progress: reports queue in one bounded channel and are applied
//! in one `apply_file_progress` call per ~200 ms window (or per [`MAX_BATCH`] reports), not one
//! transaction per agent message. The store folds reports per row idempotently, so order within
//! a window and repeats do not matter. [`Queue::flush`] is a barrier: everything queued before
//! it is stored when it returns (the writer uses it before closing a target's rows, so the
//! agent's own final reports, with their speeds and start times, land first).

use parking_lot::Mutex;
use shoal_store::{FileProgress, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const QUEUE: usize = 16_384;
const MAX_BATCH: usize = 8_192;
const WINDOW: Duration = Duration::from_millis(200);

enum Item {
    Report(FileProgress),
    Flush(tokio::sync::oneshot::Sender<()>),
}

pub struct Queue {
    tx: mpsc::Sender<Item>,
    /// Taken by the first push, which starts the writing task.
    rx: Mutex<Option<mpsc::Receiver<Item>>>,
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
        self.start(store);
        for r in reports {
            if self.tx.send(Item::Report(r)).await.is_err() {
                return;
            }
        }
    }

    /// Returns once every report queued before the call is stored (or given up).
    pub async fn flush(&self, store: &Arc<dyn Store>) {
        self.start(store);
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(Item::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    fn start(&self, store: &Arc<dyn Store>) {
        let rx = self.rx.lock().take();
        if let Some(rx) = rx {
            tokio::spawn(run(store.clone(), rx));
        }
    }
}

/// The writing task: ends when every sender is gone.
async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Item>) {
    let mut batch = Vec::new();
    let mut flushed = Vec::new();
    loop {
        match rx.recv().await {
            None => return,
            Some(Item::Report(r)) => batch.push(r),
            Some(Item::Flush(ack)) => flushed.push(ack),
        }
        let window = tokio::time::sleep(WINDOW);
        tokio::pin!(window);
        while batch.len() < MAX_BATCH && flushed.is_empty() {
            tokio::select! {
                _ = &mut window => break,
                next = rx.recv() => match next {
                    Some(Item::Report(r)) => batch.push(r),
                    Some(Item::Flush(ack)) => flushed.push(ack),
                    None => break,
                },
            }
        }
        if batch.is_empty() {
            for ack in flushed.drain(..) {
                let _ = ack.send(());
            }
            continue;
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
        for ack in flushed.drain(..) {
            let _ = ack.send(());
        }
    }
}
