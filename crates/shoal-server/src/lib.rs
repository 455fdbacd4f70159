//! The shoal server: the composition root. It owns the agent gateway (TLS listener, one session
//! per agent), the launcher (the one door to the agents: launch, retry, terminate, dispatch),
//! the result writer (batched, idempotent application of agent reports), the step executor
//! (`steps`: carries out `shoal-engine`'s decisions), and the REST API.
//!
//! It is the only crate that picks a storage backend. It must not know how agents execute
//! scripts beyond the protocol in `shoal-proto`.

mod active;
mod api;
mod app;
mod audit;
mod auth;
mod checks;
mod clock;
mod component;
mod events;
mod fsutil;
mod gateway;
mod http;
mod launch;
/// Single sign-on (OpenID Connect); the API layer wires it into the sign-in routes.
pub mod oidc;
mod options;
mod per_address;
mod steps;
mod targets;
mod tls;
mod transfer;
mod uploads;
mod writer;

pub use api::openapi;
pub use options::{ApiTls, Options};

use anyhow::Context as _;
use app::{App, Inner};
use shoal_store::{Store, TokenKind};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Runs the server until `shutdown` resolves.
pub async fn run(
    opts: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with(opts, shutdown, |_| {}).await
}

/// [`run`], handing the app to `ready` once the server serves (in-process tests).
async fn run_with(
    opts: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(App),
) -> anyhow::Result<()> {
    opts.validate()?;
    fsutil::private_data_dir(&opts.data_dir)?;
    let store = open_store(&opts).await?;
    let server_id = server_id(&opts)?;
    let metrics = metrics_handle()?;
    store.mark_all_offline(clock::now_ms()).await?;
    let ca = tls::Ca::load_or_create(&opts.data_dir)?;
    let tls = tls::server_config(&ca, &opts.agent_names)?;
    let files = transfer::Files::load(&opts.data_dir, ca)?;

    let (app, writer_rx) = build_app_with(opts.clone(), store, server_id, metrics, files);
    bootstrap_tokens(&app).await?;

    let agent_listener = tokio::net::TcpListener::bind(opts.agent_listen)
        .await
        .with_context(|| format!("binding the agent endpoint {}", opts.agent_listen))?;
    let http_listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("binding the API endpoint {}", opts.listen))?;

    // Long-running components share one shape (`new`, then `run(self, cancel)`) and start
    // through `component::spawn`, named. They stop in this declared order: the API stops taking
    // requests and drains the open ones (event streams end with `app.shutdown`); agent
    // sessions and background loops stop; last, the writer stores what is still queued.
    let front = app.shutdown.clone();
    let writer_stop = CancellationToken::new();
    let writer = component::spawn(
        "writer",
        writer::Writer::new(app.clone(), writer_rx).run(writer_stop.clone()),
    );
    steps::recover(&app)
        .await
        .context("recovering running steps")?;
    steps::resume_stalled(&app)
        .await
        .context("carrying on jobs stalled between steps")?;
    let sweeper = component::spawn(
        "sweeper",
        steps::Sweeper::new(app.clone()).run(front.clone()),
    );
    let audit_sweeper = component::spawn(
        "audit-sweeper",
        audit::Sweeper { app: app.clone() }.run(front.clone()),
    );
    let upload_sweeper = component::spawn(
        "upload-sweeper",
        uploads::Sweeper::new(app.clone()).run(front.clone()),
    );
    let gateway = component::spawn(
        "gateway",
        gateway::Gateway::new(app.clone(), agent_listener, tls.clone()).run(front.clone()),
    );

    tracing::info!(
        api = %opts.listen,
        agents = %opts.agent_listen,
        backend = app.store.backend(),
        data_dir = %opts.data_dir.display(),
        "shoal server started"
    );
    let http_server = http::HttpServer {
        listener: http_listener,
        router: api::router(app.clone()),
        tls: tls::api_config(&opts.api_tls, &tls)?,
        limits: http::Limits {
            max_conns_per_ip: opts.api_max_conns_per_ip,
        },
    };
    let http = component::spawn("http", http_server.run(front.clone()));
    ready(app.clone());
    shutdown.await;
    tracing::info!("shutting down");
    front.cancel();
    for task in [http, gateway, sweeper, upload_sweeper, audit_sweeper] {
        task.join(None).await;
    }
    writer_stop.cancel();
    writer.join(Some(std::time::Duration::from_secs(30))).await;
    drop(app);
    tracing::info!("shoal server stopped");
    Ok(())
}

/// The app with throwaway ticket and CA keys (tests).
#[cfg(test)]
fn build_app(
    opts: Options,
    store: Arc<dyn Store>,
    server_id: String,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
) -> (App, tokio::sync::mpsc::Receiver<writer::Report>) {
    build_app_with(
        opts,
        store,
        server_id,
        metrics,
        transfer::Files::ephemeral(),
    )
}

fn build_app_with(
    opts: Options,
    store: Arc<dyn Store>,
    server_id: String,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    files: transfer::Files,
) -> (App, tokio::sync::mpsc::Receiver<writer::Report>) {
    let (writer, writer_rx) = writer::WriterHandle::new();
    let opts_data_dir = opts.data_dir.clone();
    let app = App::new(Inner {
        store,
        opts,
        server_id,
        registry: Default::default(),
        active: Default::default(),
        writer,
        events: Default::default(),
        uploads: uploads::Uploads::new(&opts_data_dir),
        files,
        metrics,
        oidc: Default::default(),
        shutdown: CancellationToken::new(),
    });
    (app, writer_rx)
}

#[cfg(test)]
mod tests;

async fn open_store(opts: &Options) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match &opts.database_url {
        Some(url) => Arc::new(
            shoal_store_postgres::PgStore::connect(url)
                .await
                .context("connecting to PostgreSQL")?,
        ),
        None => {
            let path = opts.data_dir.join("shoal.db");
            Arc::new(
                shoal_store_sqlite::SqliteStore::open(&path)
                    .await
                    .with_context(|| format!("opening {}", path.display()))?,
            )
        }
    })
}

/// A stable name for this server's leases: kept in the data directory so a restarted server
/// takes back its own steps at once.
fn server_id(opts: &Options) -> anyhow::Result<String> {
    let path = opts.data_dir.join("server.id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() {
            return Ok(id.to_string());
        }
    }
    let id = auth::new_secret("server")[..23].to_string();
    fsutil::write_atomic(&path, id.as_bytes(), 0o600)?;
    Ok(id)
}

fn metrics_handle() -> anyhow::Result<metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    // One installer at a time: tests build apps in parallel and a recorder installs once.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _installing = INSTALLING.lock();
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let buckets = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&buckets)?
        .install_recorder()
        .context("installing the metrics recorder")?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// On first start (no tokens at all), creates the bootstrap admin API token (the built-in
/// `admin` account's) and an enrollment token, and writes them, mode 0600, into the data
/// directory. While the `admin` account has no password, gives it a generated one, written to
/// `admin.password` (mode 0600). Secrets are never logged; the log names the files.
async fn bootstrap_tokens(app: &App) -> anyhow::Result<()> {
    bootstrap_admin_password(app).await?;
    if !app.store.list_tokens().await?.is_empty() {
        return Ok(());
    }
    let issue = |spec: auth::TokenSpec| async move {
        let name = spec.name.clone();
        auth::issue_token(app, spec, "bootstrap")
            .await
            .map(|(secret, _)| secret)
            .with_context(|| format!("creating the {name} token"))
    };
    let admin = issue(auth::TokenSpec::api("bootstrap-admin", ADMIN_USER_ID)).await?;
    fsutil::write_private(
        &app.opts.admin_token_path(),
        format!("{admin}\n").as_bytes(),
    )?;
    let enroll = issue(auth::TokenSpec {
        kind: TokenKind::Enroll,
        user_id: None,
        ..auth::TokenSpec::api("bootstrap-enroll", 0)
    })
    .await?;
    fsutil::write_private(
        &app.opts.enroll_token_path(),
        format!("{enroll}\n").as_bytes(),
    )?;
    tracing::info!(
        admin_token_file = %app.opts.admin_token_path().display(),
        enroll_token_file = %app.opts.enroll_token_path().display(),
        "created the bootstrap admin and enrollment tokens"
    );
    Ok(())
}

/// The built-in platform admin the migrations create.
pub const ADMIN_USER_ID: i64 = 1;

async fn bootstrap_admin_password(app: &App) -> anyhow::Result<()> {
    let Some(admin) = app.store.get_user(ADMIN_USER_ID).await? else {
        return Ok(());
    };
    if admin.password_hash.is_some() {
        return Ok(());
    }
    let password = auth::password::generate();
    let hash = auth::password::hash(password.clone()).await?;
    fsutil::write_private(
        &app.opts.admin_password_path(),
        format!("{password}\n").as_bytes(),
    )?;
    app.store
        .update_user(
            admin.id,
            shoal_store::UserPatch {
                password_hash: Some(Some(hash)),
                ..Default::default()
            },
            clock::now_ms(),
        )
        .await?;
    tracing::info!(
        user = %admin.name,
        password_file = %app.opts.admin_password_path().display(),
        "set the built-in admin's password"
    );
    Ok(())
}
