//! The PostgreSQL backend of `shoal-store`: [`PgStore`], with its schema in `migrations/`
//! (embedded, applied at connect; several servers may share one database).
//!
//! Id lists are bound as arrays (`= ANY($1)`), batches as parallel arrays expanded with
//! `UNNEST`, so a write costs a handful of round trips whatever its size. Step claims are one
//! `FOR UPDATE SKIP LOCKED` statement with a lease; task batches lock their rows in key order
//! first, so concurrent batches cannot deadlock.
//!
//! This crate knows SQL and PostgreSQL, nothing about the network, agents or the engine.

mod access;
mod bind;
mod files;
mod hosts;
mod jobs;
mod tasks;
mod uploads;
mod users;

use shoal_store::{Error, Result, Store};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connections per store (per server process).
const MAX_CONNECTIONS: u32 = 16;

/// Shoal's store on a PostgreSQL database. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) and applies pending
    /// migrations.
    pub async fn connect(url: &str) -> Result<PgStore> {
        // The URL may hold a password: errors name the host and database, never the URL.
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| Error::Database("invalid postgres url".to_string()))?;
        let target = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        );
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|e| Error::Database(format!("connecting to postgres at {target}: {e}")))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| Error::Database(format!("applying postgres migrations: {e}")))?;
        Ok(PgStore { pool })
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.pool.begin().await.map_err(shoal_store_sql::db)
    }
}

impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }
}
