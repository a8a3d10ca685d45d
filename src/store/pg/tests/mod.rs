//! Tests of [`PgStore`](super::PgStore): the conformance suite on a fresh database per case,
//! and what only PostgreSQL shows — migrations, connecting and reconnecting, grouped appends
//! and how many statements they cost, the rows as an operator reads them, and another writer
//! on the same database.

mod conformance;
mod connect;
mod grouping;
mod rows;
mod schema;
mod writers;

use postgres::{Client, NoTls};

use super::testing::fresh_url;
use super::{PgOptions, PgStore};

/// A store on a new, empty database, with its URL.
fn fresh_store() -> (PgStore, String) {
    let url = fresh_url();
    let store = PgStore::open(&url, PgOptions::default()).expect("open a fresh PostgreSQL store");
    (store, url)
}

/// A plain connection to the database at `url`, to look under the store (not named
/// `coretalk`, so that terminating the store's sessions spares it).
fn sql(url: &str) -> Client {
    let mut c = Client::connect(url, NoTls).expect("connect to the test database");
    c.batch_execute("SET application_name = 'coretalk-test'")
        .expect("name the test session");
    c
}
