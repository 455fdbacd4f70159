//! Error mapping and row decoding shared by the modules of this backend.

use serde::Serialize;
use serde::de::DeserializeOwned;
use shoal_store::{Error, Result};
use shoal_types::{AgentStatus, HostTaskStatus, JobType, LaunchMode, RunStatus, StepType};
use sqlx::postgres::PgRow;
use sqlx::{Decode, Postgres, Row, Type};

/// Most log bytes sent in one statement.
pub(crate) const MAX_STATEMENT_BYTES: usize = 16 << 20;

/// Maps a driver error to `store::Error`: unique violations are conflicts, everything else is
/// a database error (values are always bound, so messages carry no secrets).
pub(crate) fn db(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            Error::Conflict(d.message().to_string())
        }
        sqlx::Error::RowNotFound => Error::NotFound("row".to_string()),
        _ => Error::Database(e.to_string()),
    }
}

/// One column of a row, with decoding failures reported as corrupt data.
pub(crate) fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(column)
        .map_err(|e| Error::Corrupt(format!("column {column}: {e}")))
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Database(format!("encoding json: {e}")))
}

pub(crate) fn from_json<T: DeserializeOwned>(row: &PgRow, column: &str) -> Result<T> {
    let text: String = get(row, column)?;
    serde_json::from_str(&text).map_err(|e| Error::Corrupt(format!("column {column}: {e}")))
}

fn unknown(column: &str, code: i32) -> Error {
    Error::Corrupt(format!("column {column}: unknown code {code}"))
}

pub(crate) fn run_status(row: &PgRow, column: &str) -> Result<RunStatus> {
    let c: i32 = get(row, column)?;
    RunStatus::from_code(c).ok_or_else(|| unknown(column, c))
}

pub(crate) fn task_status(row: &PgRow, column: &str) -> Result<HostTaskStatus> {
    let c: i32 = get(row, column)?;
    HostTaskStatus::from_code(c).ok_or_else(|| unknown(column, c))
}

pub(crate) fn agent_status(row: &PgRow, column: &str) -> Result<AgentStatus> {
    let c: i32 = get(row, column)?;
    AgentStatus::from_code(c).ok_or_else(|| unknown(column, c))
}

pub(crate) fn job_type(row: &PgRow, column: &str) -> Result<JobType> {
    let c: i32 = get(row, column)?;
    JobType::from_code(c).ok_or_else(|| unknown(column, c))
}

pub(crate) fn launch_mode(row: &PgRow, column: &str) -> Result<LaunchMode> {
    let c: i32 = get(row, column)?;
    LaunchMode::from_code(c).ok_or_else(|| unknown(column, c))
}

pub(crate) fn step_type(row: &PgRow, column: &str) -> Result<StepType> {
    let c: i32 = get(row, column)?;
    StepType::from_code(c).ok_or_else(|| unknown(column, c))
}

/// A non-negative `INTEGER` column (attempts, ordinals).
pub(crate) fn u32_col(row: &PgRow, column: &str) -> Result<u32> {
    let value: i32 = get(row, column)?;
    u32::try_from(value).map_err(|_| Error::Corrupt(format!("column {column}: {value}")))
}

/// A non-negative `BIGINT` column (counts, lengths, offsets).
pub(crate) fn u64_col(row: &PgRow, column: &str) -> Result<u64> {
    let value: i64 = get(row, column)?;
    u64::try_from(value).map_err(|_| Error::Corrupt(format!("column {column}: {value}")))
}

/// A `u64` from the API as a `BIGINT` (saturating: nothing stored is that large).
pub(crate) fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// An attempt as an `INTEGER` (saturating).
pub(crate) fn attempt(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// A text filter worth applying: `None` for absent or blank ones.
pub(crate) fn filter_text(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}
