//! Error mapping and row decoding shared by the modules of this backend.

use serde::Serialize;
use serde::de::DeserializeOwned;
use shoal_store::{Error, Result};
use shoal_types::{AgentStatus, HostTaskStatus, JobType, LaunchMode, RunStatus, StepType};
use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Row, Sqlite, Type};

/// SQLite's limit on bound variables per statement (since 3.32); multi-row statements stay
/// under it.
pub(crate) const MAX_VARIABLES: usize = 32_766;

/// Rows per multi-row statement for a statement binding `per_row` variables.
pub(crate) fn rows_per_statement(per_row: usize) -> usize {
    (MAX_VARIABLES / per_row).min(1_000)
}

/// Maps a driver error to `store::Error`: unique violations are conflicts, everything else is
/// a database error (driver messages carry no secrets: values are bound, never inlined).
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
pub(crate) fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T>
where
    T: Decode<'r, Sqlite> + Type<Sqlite>,
{
    row.try_get(column)
        .map_err(|e| Error::Corrupt(format!("column {column}: {e}")))
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Database(format!("encoding json: {e}")))
}

pub(crate) fn from_json<T: DeserializeOwned>(row: &SqliteRow, column: &str) -> Result<T> {
    let text: String = get(row, column)?;
    serde_json::from_str(&text).map_err(|e| Error::Corrupt(format!("column {column}: {e}")))
}

fn code(row: &SqliteRow, column: &str) -> Result<i32> {
    let value: i64 = get(row, column)?;
    i32::try_from(value).map_err(|_| Error::Corrupt(format!("column {column}: {value}")))
}

fn unknown(column: &str, code: i32) -> Error {
    Error::Corrupt(format!("column {column}: unknown code {code}"))
}

pub(crate) fn run_status(row: &SqliteRow, column: &str) -> Result<RunStatus> {
    let c = code(row, column)?;
    RunStatus::from_code(c).ok_or_else(|| unknown(column, c))
}

pub(crate) fn task_status(row: &SqliteRow, column: &str) -> Result<HostTaskStatus> {
    let c = code(row, column)?;
    HostTaskStatus::from_code(c).ok_or_else(|| unknown(column, c))
}

pub(crate) fn agent_status(row: &SqliteRow, column: &str) -> Result<AgentStatus> {
    let c = code(row, column)?;
    AgentStatus::from_code(c).ok_or_else(|| unknown(column, c))
}

pub(crate) fn job_type(row: &SqliteRow, column: &str) -> Result<JobType> {
    let c = code(row, column)?;
    JobType::from_code(c).ok_or_else(|| unknown(column, c))
}

pub(crate) fn launch_mode(row: &SqliteRow, column: &str) -> Result<LaunchMode> {
    let c = code(row, column)?;
    LaunchMode::from_code(c).ok_or_else(|| unknown(column, c))
}

pub(crate) fn step_type(row: &SqliteRow, column: &str) -> Result<StepType> {
    let c = code(row, column)?;
    StepType::from_code(c).ok_or_else(|| unknown(column, c))
}

/// A non-negative integer column (counts, lengths, attempts).
pub(crate) fn unsigned<T: TryFrom<i64>>(row: &SqliteRow, column: &str) -> Result<T> {
    let value: i64 = get(row, column)?;
    T::try_from(value).map_err(|_| Error::Corrupt(format!("column {column}: {value}")))
}

/// A `u64` from the API as an SQLite integer (saturating: nothing stored is that large).
pub(crate) fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A text filter worth applying: `None` for absent or blank ones.
pub(crate) fn filter_text(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}
