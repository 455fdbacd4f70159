//! One page of a filtered listing and the total it is taken from, for every paged list of both
//! backends (`list_hosts`, `list_jobs`, `list_tasks`, `list_file_tasks`).

use crate::{db, int};
use shoal_store::{Page, Paged, Result};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Database, Encode, Pool, Postgres, QueryBuilder, Sqlite, Type};

/// The fixed parts of a listing's SQL. The count reads `FROM {table}` with the filter; the page
/// reads `SELECT {columns} FROM {table}{joins}` with the same filter, ordered and cut.
#[derive(Clone, Copy, Debug)]
pub struct Listing<'a> {
    /// The table the filter applies to, with its alias: `"hosts h"`.
    pub table: &'a str,
    /// Joins the page needs for its columns (none of which may change the row count), each
    /// starting with a space; `""` for none.
    pub joins: &'a str,
    pub columns: &'a str,
    /// The `ORDER BY` list; it must be total, so that pages neither overlap nor skip rows.
    pub order_by: &'a str,
}

/// Runs the two statements of a page. Implemented for each backend's database, where sqlx
/// knows how long bound arguments live; [`fetch_page`] composes the SQL once for both.
pub trait PageDb: Database {
    fn count(
        pool: &Pool<Self>,
        query: &mut QueryBuilder<'_, Self>,
    ) -> impl Future<Output = Result<i64>> + Send;
    fn rows(
        pool: &Pool<Self>,
        query: &mut QueryBuilder<'_, Self>,
    ) -> impl Future<Output = Result<Vec<Self::Row>>> + Send;
}

impl PageDb for Sqlite {
    async fn count(pool: &Pool<Sqlite>, query: &mut QueryBuilder<'_, Sqlite>) -> Result<i64> {
        query.build_query_scalar().fetch_one(pool).await.map_err(db)
    }
    async fn rows(
        pool: &Pool<Sqlite>,
        query: &mut QueryBuilder<'_, Sqlite>,
    ) -> Result<Vec<SqliteRow>> {
        query.build().fetch_all(pool).await.map_err(db)
    }
}

impl PageDb for Postgres {
    async fn count(pool: &Pool<Postgres>, query: &mut QueryBuilder<'_, Postgres>) -> Result<i64> {
        query.build_query_scalar().fetch_one(pool).await.map_err(db)
    }
    async fn rows(
        pool: &Pool<Postgres>,
        query: &mut QueryBuilder<'_, Postgres>,
    ) -> Result<Vec<PgRow>> {
        query.build().fetch_all(pool).await.map_err(db)
    }
}

/// Counts the rows `push_filter` selects and reads the page `page` of them, with
/// `push_filter` appending the same `WHERE` clause (binds included) to both statements.
pub async fn fetch_page<'q, DB, T>(
    pool: &Pool<DB>,
    listing: Listing<'_>,
    page: Page,
    push_filter: impl Fn(&mut QueryBuilder<'q, DB>) -> Result<()>,
    decode: impl Fn(&DB::Row) -> Result<T>,
) -> Result<Paged<T>>
where
    DB: PageDb,
    i64: Encode<'q, DB> + Type<DB>,
{
    let mut count = QueryBuilder::<DB>::new(format!("SELECT COUNT(*) FROM {}", listing.table));
    push_filter(&mut count)?;
    let total = DB::count(pool, &mut count).await?;

    let mut select = QueryBuilder::<DB>::new(format!(
        "SELECT {} FROM {}{}",
        listing.columns, listing.table, listing.joins
    ));
    push_filter(&mut select)?;
    select
        .push(format_args!(" ORDER BY {} LIMIT ", listing.order_by))
        .push_bind(i64::from(page.length))
        .push(" OFFSET ")
        .push_bind(int(page.start));
    let rows = DB::rows(pool, &mut select).await?;
    Ok(Paged {
        start: page.start,
        length: page.length,
        total: u64::try_from(total).unwrap_or_default(),
        data: rows.iter().map(decode).collect::<Result<_>>()?,
    })
}
