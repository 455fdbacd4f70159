//! The server's shared state: one cheap-to-clone [`App`] handed to every component and handler.

use crate::active::Active;
use crate::events::Events;
use crate::gateway::Registry;
use crate::options::Options;
use crate::writer::WriterHandle;
use metrics_exporter_prometheus::PrometheusHandle;
use shoal_store::Store;
use std::sync::Arc;

#[derive(Clone)]
pub struct App(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub opts: Options,
    /// This process's lease-owner name, stable across restarts of the same data directory.
    pub server_id: String,
    pub registry: Registry,
    pub active: Active,
    pub writer: WriterHandle,
    pub events: Arc<Events>,
    pub uploads: crate::uploads::Uploads,
    /// File steps: ticket key, peer identities, scans, swarms.
    pub files: crate::transfer::Files,
    pub metrics: PrometheusHandle,
    /// The single sign-on provider once discovered (`auth::sso::provider`).
    pub oidc: tokio::sync::Mutex<Option<Arc<crate::oidc::Oidc>>>,
    /// Cancelled when the server shuts down: long-lived requests (event streams) end with it.
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl App {
    pub fn new(inner: Inner) -> App {
        App(Arc::new(inner))
    }

    /// How long a step lease lasts; renewed at a third of it.
    pub fn lease_ms(&self) -> i64 {
        30_000
    }
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
