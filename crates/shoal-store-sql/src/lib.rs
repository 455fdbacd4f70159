//! Row decoding shared by the SQL backends of `shoal-store` (`shoal-store-sqlite`,
//! `shoal-store-postgres`): [`Cols`] reads typed columns from a sqlx row, and one function per
//! record (`job`, `step`, `host`, `task_row`, `file_task_row`, `upload`, ...) builds
//! `shoal_store` records from any row that implements it. Also the driver-error mapping, the
//! small value helpers both backends bind with, and [`fetch_page`], the count-then-page query
//! of every paged listing.
//!
//! This crate knows sqlx rows and the column names of the schema, but no SQL text and no
//! dialect: each backend owns its statements and migrations. Where the schemas store a column
//! differently (SQLite `INTEGER` and JSON text, PostgreSQL `INTEGER`/`BIGINT` and `TEXT[]`), the
//! [`Cols`] impls absorb the difference.

mod cols;
mod page;
mod records;

pub use cols::Cols;
pub use page::{Listing, PageDb, fetch_page};
pub use records::{
    ACCOUNT_COLUMNS, AUDIT_COLUMNS, BINDING_COLUMNS, SESSION_COLUMNS, TOKEN_COLUMNS, USER_COLUMNS,
    audit_event, authenticated, binding, session, user,
};
pub use records::{
    agent_auth, agent_status_count, file_status_count, file_task_row, group, host, host_label_row,
    job, log_piece, open_task, result_group, scope, step, task_key, task_log_len, task_row,
    task_status_count, token, upload,
};

use serde::Serialize;
use shoal_store::{Error, Result};

/// Maps a driver error to `store::Error`: unique violations are conflicts, foreign-key
/// violations are references to nothing, everything else is a database error (values are
/// always bound, never inlined, so messages carry no secrets). The first two carry our own
/// words, never the driver's text, since they reach API clients.
pub fn db(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            Error::Conflict("a record with the same name or key already exists".to_string())
        }
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => Error::MissingReference(
            "the request refers to a record that does not exist".to_string(),
        ),
        sqlx::Error::RowNotFound => Error::NotFound("row".to_string()),
        _ => Error::Database(e.to_string()),
    }
}

/// A value as JSON text, for the columns that hold labels, specs or id lists.
pub fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Database(format!("encoding json: {e}")))
}

/// A `u64` from the API as a 64-bit integer column (saturating: nothing stored is that large).
pub fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The condition ` AND {column} IN (...)` for a filter's `scope_ids` (`""` for `None`; never
/// true for an empty list). Ids are integers, written into the SQL as such.
pub fn scope_in(column: &str, scope_ids: &Option<Vec<i64>>) -> String {
    match scope_ids {
        None => String::new(),
        Some(ids) if ids.is_empty() => " AND 1 = 0".to_string(),
        Some(ids) => {
            let list: Vec<String> = ids.iter().map(i64::to_string).collect();
            format!(" AND {column} IN ({})", list.join(", "))
        }
    }
}

/// A text filter worth applying: `None` for absent or blank ones.
pub fn filter_text(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}
