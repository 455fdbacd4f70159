//! The SQLite backend of `shoal-store`: [`SqliteStore`], with its schema in `migrations/`
//! (embedded, applied at open).
//!
//! One file, WAL mode, `synchronous=NORMAL`. SQLite has a single writer, so the store keeps
//! one pool with a single connection for writes (every multi-statement write is a
//! `BEGIN IMMEDIATE` transaction) and a small read-only pool for reads; writes queue in the
//! pool instead of failing with `SQLITE_BUSY`. Bulk writes are multi-row statements chunked
//! under SQLite's bound-variable limit.
//!
//! This crate knows SQL and SQLite, nothing about the network, agents or the engine.

mod access;
mod bind;
mod files;
mod hosts;
mod jobs;
mod tasks;
mod uploads;
mod users;

use shoal_store::{Error, Result, Store};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a statement waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections of the read pool (WAL readers do not block the writer or each other).
const READERS: u32 = 4;

/// Shoal's store on one SQLite file. Cheap to clone (the pools are shared).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        let base = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .synchronous(SqliteSynchronous::Normal)
            .pragma("temp_store", "MEMORY");
        let write_options = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .pragma("cache_size", "-32000");
        let write = single_connection_pool()
            .after_release(|conn, _| Box::pin(async move { reusable(conn).await }))
            .connect_with(write_options)
            .await
            .map_err(|e| open_error(path, e))?;
        migrate(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(READERS)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(base.read_only(true))
            .await
            .map_err(|e| open_error(path, e))?;
        Ok(SqliteStore { write, read })
    }

    /// A private in-memory database (one connection serves reads and writes), for tests.
    pub async fn open_in_memory() -> Result<SqliteStore> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .shared_cache(false)
            .foreign_keys(true);
        let pool = single_connection_pool()
            .connect_with(options)
            .await
            .map_err(shoal_store_sql::db)?;
        migrate(&pool).await?;
        Ok(SqliteStore {
            write: pool.clone(),
            read: pool,
        })
    }

    /// Closes both pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    /// Starts a write transaction that holds SQLite's write lock from its first statement.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(shoal_store_sql::db)
    }
}

/// A pool of exactly one connection that lives as long as the pool (an in-memory database
/// would vanish with its connection).
fn single_connection_pool() -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(120))
}

/// Whether the write connection may go back to the pool. A transaction that failed in a way
/// after which SQLite rolled back on its own (a full disk, an I/O error), or whose future was
/// dropped, can leave the driver's transaction depth above zero: its own ROLLBACK then fails
/// ("no transaction is active") and every later `BEGIN` would fail with "attempted to call
/// begin_with at non-zero transaction depth". Such a connection is closed; the pool opens a
/// fresh one for the next write. The ping first lets the driver's worker run the rollback it
/// queued when the transaction was dropped.
async fn reusable(conn: &mut sqlx::SqliteConnection) -> std::result::Result<bool, sqlx::Error> {
    use sqlx::Connection as _;
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::warn!("sqlite write connection left inside a transaction; replacing it");
        return Ok(false);
    }
    Ok(true)
}

async fn migrate(pool: &SqlitePool) -> Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .map_err(|e| Error::Database(format!("applying sqlite migrations: {e}")))
}

fn open_error(path: &Path, e: sqlx::Error) -> Error {
    Error::Database(format!("opening sqlite database {}: {e}", path.display()))
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }
}
