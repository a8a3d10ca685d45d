//! The store conformance suite run on [`RedbStore::in_memory`], one test per case.

use crate::store::redb::RedbStore;
use crate::store::Store;

fn fresh() -> Box<dyn Store> {
    Box::new(RedbStore::in_memory())
}

crate::store::conformance::store_conformance!(fresh);
