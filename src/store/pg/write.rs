//! The write path of [`PgStore`](super::PgStore): `Store::apply`'s one transaction over a
//! whole group of batches.
//!
//! It owns the shape of a group: `BEGIN`, then the batches in order, each either part of a run
//! of consecutive append/markers batches (handed whole to `write_fast.rs`, a few multi-row
//! statements per run) or a general batch (its preconditions from `precondition.rs`, then its
//! ops from `write_ops.rs`), then `COMMIT`. A batch's preconditions are decided before any of
//! its rows is written, so a skipped batch leaves nothing behind and no savepoint is needed.
//! Any statement failing fails the whole group with [`StoreError::Backend`], COMMIT included
//! (its outcome is then unknown, and nothing is acknowledged).

use super::pool::Conn;
use super::{precondition, write_fast, write_ops, PgStore};
use crate::store::{StoreError, UserPatch, WriteBatch, WriteOp};

/// The outcome of each batch of a group, filled in as the group is applied.
pub(super) type Outcomes = Vec<Option<Result<(), StoreError>>>;

impl PgStore {
    /// The body of [`Store::apply`](crate::store::Store::apply).
    pub(super) fn apply_group(&self, batches: &[WriteBatch]) -> Vec<Result<(), StoreError>> {
        if batches.is_empty() {
            return Vec::new();
        }
        let mut outcomes: Outcomes = batches.iter().map(|b| unstorable(b).map(Err)).collect();
        match self.commit_group(batches, &mut outcomes) {
            Ok(()) => outcomes.into_iter().map(|o| o.unwrap_or(Ok(()))).collect(),
            Err(e) => {
                log::error!("PostgreSQL commit of {} batches failed: {e}", batches.len());
                vec![Err(e); batches.len()]
            }
        }
    }

    fn commit_group(
        &self,
        batches: &[WriteBatch],
        outcomes: &mut Outcomes,
    ) -> Result<(), StoreError> {
        let mut lease = self.pool.get()?;
        if let Err(e) = lease.begin() {
            // Nothing was written: a connection that died idle (PostgreSQL restarted) is
            // replaced once.
            if !lease.died_idle() {
                return Err(e);
            }
            log::warn!("PostgreSQL connection found closed ({e}); reconnecting");
            drop(lease);
            lease = self.pool.get()?;
            lease.begin()?;
        }
        if let Some(fence) = &self.fence {
            fence.check(&mut lease)?;
        }
        let max_rows = self.pool.opts().max_rows_per_statement;
        apply_in_txn(&mut lease, batches, outcomes, max_rows)?;
        lease.commit()
    }
}

/// Whether a batch only appends messages and raises markers: such batches, in a row, are
/// applied together by [`write_fast`].
pub(super) fn is_fast(batch: &WriteBatch) -> bool {
    batch
        .iter()
        .all(|op| matches!(op, WriteOp::AppendMessage(_) | WriteOp::Markers { .. }))
}

/// Applies every batch not yet decided, in order, inside the open transaction.
fn apply_in_txn(
    conn: &mut Conn,
    batches: &[WriteBatch],
    outcomes: &mut Outcomes,
    max_rows: usize,
) -> Result<(), StoreError> {
    let mut i = 0;
    while i < batches.len() {
        if outcomes[i].is_some() {
            i += 1;
            continue;
        }
        if is_fast(&batches[i]) {
            let mut end = i;
            while end < batches.len() && (outcomes[end].is_some() || is_fast(&batches[end])) {
                end += 1;
            }
            write_fast::apply_run(conn, &batches[i..end], &mut outcomes[i..end], max_rows)?;
            i = end;
            continue;
        }
        outcomes[i] = Some(match precondition::conflict(conn, &batches[i])? {
            Some(reason) => Err(StoreError::Conflict(reason)),
            None => {
                write_ops::apply_batch(conn, &batches[i], max_rows)?;
                Ok(())
            }
        });
        i += 1;
    }
    Ok(())
}

/// Why PostgreSQL cannot store a batch as it is, if it cannot: a text holding a NUL character
/// (which redb keeps but PostgreSQL's `text` refuses). Such a batch fails alone, before the
/// transaction, rather than failing the whole group inside it.
fn unstorable(batch: &WriteBatch) -> Option<StoreError> {
    let nul = |s: &str| s.contains('\0');
    let opt = |s: &Option<String>| s.as_deref().is_some_and(nul);
    let many = |v: &[String]| v.iter().any(|s| nul(s));
    let patch = |p: &UserPatch| {
        p.public.as_ref().is_some_and(opt)
            || p.trusted.as_ref().is_some_and(opt)
            || p.tags.as_deref().is_some_and(many)
            || p.last_seen.as_ref().is_some_and(|(_, ua)| nul(ua))
            || p.creds
                .as_deref()
                .is_some_and(|c| c.iter().any(|c| nul(&c.method) || nul(&c.value)))
    };
    let bad = batch.iter().any(|op| match op {
        WriteOp::CreateUser(u) | WriteOp::PutUser(u) => {
            opt(&u.public)
                || opt(&u.trusted)
                || many(&u.tags)
                || u.last_seen.as_ref().is_some_and(|(_, ua)| nul(ua))
                || u.creds.iter().any(|c| nul(&c.method) || nul(&c.value))
        }
        WriteOp::PatchUser(p) => patch(p),
        WriteOp::CreateAuth(a) | WriteOp::PutAuth(a) => nul(&a.unique) || nul(&a.scheme),
        WriteOp::CreateTopic(t) | WriteOp::PutTopic(t) => {
            nul(&t.name) || opt(&t.public) || opt(&t.trusted) || many(&t.tags) || opt(&t.aux)
        }
        WriteOp::PutSub(s) => nul(&s.topic) || opt(&s.private),
        WriteOp::AppendMessage(m) => nul(&m.topic) || opt(&m.head) || nul(&m.content),
        WriteOp::DeleteMessages(d) => nul(&d.topic),
        WriteOp::DeleteSub { topic, .. }
        | WriteOp::Markers { topic, .. }
        | WriteOp::DeleteTopic { name: topic } => nul(topic),
        WriteOp::DeleteAuth { unique }
        | WriteOp::ClaimCred { unique, .. }
        | WriteOp::ReleaseCred { unique, .. } => nul(unique),
    });
    bad.then(|| {
        StoreError::Backend("a text holds a NUL character, which PostgreSQL cannot store".into())
    })
}
