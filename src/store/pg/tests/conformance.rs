//! The store conformance suite run on [`PgStore`], one test per case, each on a new database.

use crate::store::pg::testing::fresh_url;
use crate::store::pg::{PgOptions, PgStore};
use crate::store::Store;

fn fresh() -> Box<dyn Store> {
    Box::new(PgStore::open(&fresh_url(), PgOptions::default()).expect("open a PostgreSQL store"))
}

crate::store::conformance::store_conformance!(fresh);
