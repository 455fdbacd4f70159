//! SQLite's limit on bound variables, and the statement sizes derived from it. (Row decoding
//! and error mapping live in `shoal-store-sql`.)

/// SQLite's limit on bound variables per statement (since 3.32); multi-row statements stay
/// under it.
pub(crate) const MAX_VARIABLES: usize = 32_766;

/// Rows per multi-row statement for a statement binding `per_row` variables.
pub(crate) fn rows_per_statement(per_row: usize) -> usize {
    (MAX_VARIABLES / per_row).min(1_000)
}
