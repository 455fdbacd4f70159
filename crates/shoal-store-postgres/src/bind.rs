//! Statement sizes and integer widths of values bound on PostgreSQL. (Row decoding and error
//! mapping live in `shoal-store-sql`.)

/// Most log bytes sent in one statement.
pub(crate) const MAX_STATEMENT_BYTES: usize = 16 << 20;

/// An attempt as an `INTEGER` (saturating).
pub(crate) fn attempt(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}
