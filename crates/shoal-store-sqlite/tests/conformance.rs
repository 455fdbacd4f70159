//! Pins that `SqliteStore` keeps the whole `Store` contract: the shared conformance suite, each
//! case on a fresh database file, and again on a fresh in-memory database.

use shoal_store_sqlite::SqliteStore;

async fn make_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("shoal.db"))
        .await
        .expect("open sqlite store");
    (store, dir)
}

shoal_store::conformance_tests!(make_store);

mod in_memory {
    use super::SqliteStore;

    async fn make_store() -> (SqliteStore, ()) {
        let store = SqliteStore::open_in_memory()
            .await
            .expect("open in-memory sqlite store");
        (store, ())
    }

    shoal_store::conformance_tests!(make_store);
}
