//! Tests of [`RedbStore`](super::RedbStore): the conformance suite instantiated for its
//! in-memory store, and what only redb shows — the database file, raw rows after a conformance
//! case, corrupt rows, databases written by older versions.

mod conformance;
mod corrupt;
mod files;
mod migrate;
mod rows;

use redb::ReadableDatabase;

use super::tables::MESSAGES;
use super::{codec, RedbStore};
use crate::store::MessageRecord;

/// The stored row of a message, tombstone or not, read around the query filters.
pub(super) fn raw_message(s: &RedbStore, topic: &str, seq: u64) -> Option<MessageRecord> {
    let txn = s.db.begin_read().unwrap();
    let table = txn.open_table(MESSAGES).unwrap();
    let row = table.get((topic, seq)).unwrap();
    row.map(|g| codec::decode_message(topic, seq, g.value()).unwrap())
}
