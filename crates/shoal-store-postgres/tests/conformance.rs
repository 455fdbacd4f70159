//! Pins that `PgStore` keeps the whole `Store` contract: the shared conformance suite, each
//! case on a fresh database of the test binary's throwaway PostgreSQL cluster.

use shoal_store_postgres::PgStore;
use shoal_testkit::pg::PgCluster;

async fn make_store() -> (PgStore, ()) {
    let url = PgCluster::shared()
        .create_database("conformance")
        .expect("create test database");
    let store = PgStore::connect(&url)
        .await
        .expect("connect postgres store");
    (store, ())
}

shoal_store::conformance_tests!(make_store);
