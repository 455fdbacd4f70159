//! [`Cols`]: typed column access over the row types of both backends.

use serde::de::DeserializeOwned;
use shoal_store::{Error, Result};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{ColumnIndex, Decode, Row, Type};

/// Reads one column of a row as the Rust type a record needs. Decoding failures are
/// `store::Error::Corrupt` naming the column.
///
/// The impls differ only where the schemas do: status codes, attempts and ordinals are SQLite
/// 64-bit integers but PostgreSQL `INTEGER`s, and IP lists are JSON text in SQLite but `TEXT[]`
/// in PostgreSQL.
pub trait Cols {
    /// A 64-bit integer (ids, timestamps, generations).
    fn i64(&self, column: &str) -> Result<i64>;
    fn opt_i64(&self, column: &str) -> Result<Option<i64>>;
    /// A nullable 32-bit integer (exit codes).
    fn opt_i32(&self, column: &str) -> Result<Option<i32>>;
    fn text(&self, column: &str) -> Result<String>;
    fn opt_text(&self, column: &str) -> Result<Option<String>>;
    fn bool(&self, column: &str) -> Result<bool>;
    fn bytes(&self, column: &str) -> Result<Vec<u8>>;
    /// A bk-job status or type code.
    fn code(&self, column: &str) -> Result<i32>;
    /// A non-negative 32-bit count (attempts, ordinals).
    fn u32(&self, column: &str) -> Result<u32>;
    /// A list of strings (a host's IPs).
    fn text_list(&self, column: &str) -> Result<Vec<String>>;

    /// A non-negative 64-bit integer (counts, lengths, offsets).
    fn u64(&self, column: &str) -> Result<u64> {
        let value = self.i64(column)?;
        u64::try_from(value).map_err(|_| Error::Corrupt(format!("column {column}: {value}")))
    }

    /// A JSON text column (labels, step specs).
    fn json<T: DeserializeOwned>(&self, column: &str) -> Result<T> {
        let text = self.text(column)?;
        serde_json::from_str(&text).map_err(|e| Error::Corrupt(format!("column {column}: {e}")))
    }
}

/// One column of a row, with decoding failures reported as corrupt data.
fn get<'r, R, T>(row: &'r R, column: &str) -> Result<T>
where
    R: Row,
    T: Decode<'r, R::Database> + Type<R::Database>,
    for<'c> &'c str: ColumnIndex<R>,
{
    row.try_get(column)
        .map_err(|e| Error::Corrupt(format!("column {column}: {e}")))
}

/// A 64-bit integer column narrowed to a smaller integer type.
fn narrow<T: TryFrom<i64>>(row: &impl Cols, column: &str) -> Result<T> {
    let value = row.i64(column)?;
    T::try_from(value).map_err(|_| Error::Corrupt(format!("column {column}: {value}")))
}

/// The methods whose column types are the same in both schemas.
macro_rules! same_in_both {
    () => {
        fn i64(&self, column: &str) -> Result<i64> {
            get(self, column)
        }
        fn opt_i64(&self, column: &str) -> Result<Option<i64>> {
            get(self, column)
        }
        fn opt_i32(&self, column: &str) -> Result<Option<i32>> {
            get(self, column)
        }
        fn text(&self, column: &str) -> Result<String> {
            get(self, column)
        }
        fn opt_text(&self, column: &str) -> Result<Option<String>> {
            get(self, column)
        }
        fn bool(&self, column: &str) -> Result<bool> {
            get(self, column)
        }
        fn bytes(&self, column: &str) -> Result<Vec<u8>> {
            get(self, column)
        }
    };
}

/// SQLite: every integer is 64 bits, IP lists are JSON text.
impl Cols for SqliteRow {
    same_in_both!();

    fn code(&self, column: &str) -> Result<i32> {
        narrow(self, column)
    }

    fn u32(&self, column: &str) -> Result<u32> {
        narrow(self, column)
    }

    fn text_list(&self, column: &str) -> Result<Vec<String>> {
        self.json(column)
    }
}

/// PostgreSQL: codes, attempts and ordinals are `INTEGER`, IP lists are `TEXT[]`.
impl Cols for PgRow {
    same_in_both!();

    fn code(&self, column: &str) -> Result<i32> {
        get(self, column)
    }

    fn u32(&self, column: &str) -> Result<u32> {
        let value: i32 = get(self, column)?;
        u32::try_from(value).map_err(|_| Error::Corrupt(format!("column {column}: {value}")))
    }

    fn text_list(&self, column: &str) -> Result<Vec<String>> {
        get(self, column)
    }
}

#[cfg(test)]
mod tests {
    // Pins how the SQLite impl absorbs its schema: codes and attempts are 64-bit integers
    // narrowed with a corrupt-data error, IP lists are JSON text, failures name the column.
    use super::Cols;
    use shoal_store::Error;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
    use sqlx::{ConnectOptions, Connection};
    use std::str::FromStr;

    async fn row(select: &str) -> SqliteRow {
        let mut conn = SqliteConnectOptions::from_str("sqlite::memory:")
            .expect("memory url")
            .connect()
            .await
            .expect("open sqlite");
        let row = sqlx::query(select)
            .fetch_one(&mut conn)
            .await
            .expect("select");
        conn.close().await.expect("close");
        row
    }

    fn corrupt<T: std::fmt::Debug>(result: shoal_store::Result<T>) -> String {
        match result {
            Err(Error::Corrupt(message)) => message,
            other => panic!("expected corrupt data, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn sqlite_columns_decode_and_narrow() {
        let r = row(
            "SELECT 3 AS status, 4294967296 AS big, -1 AS negative, 7 AS attempt, \
             '[\"10.0.0.1\",\"10.0.0.2\"]' AS ips, 'x' AS bad_json, NULL AS missing, \
             1 AS flag",
        )
        .await;
        assert_eq!(r.code("status").expect("code"), 3);
        assert_eq!(r.u32("attempt").expect("u32"), 7);
        assert_eq!(r.u64("attempt").expect("u64"), 7);
        assert_eq!(
            r.text_list("ips").expect("ips"),
            vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()]
        );
        assert_eq!(r.opt_i64("missing").expect("null"), None);
        assert!(r.bool("flag").expect("bool"));
        assert_eq!(corrupt(r.code("big")), "column big: 4294967296");
        assert_eq!(corrupt(r.u32("negative")), "column negative: -1");
        assert_eq!(corrupt(r.u64("negative")), "column negative: -1");
        assert!(corrupt(r.text_list("bad_json")).starts_with("column bad_json: "));
        assert!(corrupt(r.i64("absent")).starts_with("column absent: "));
    }
}
