//! Credential claims of [`RedbStore`](super::RedbStore): the `creds` table that says which user
//! holds each confirmed credential (`method:value`), so that uniqueness is decided by the write
//! transaction itself rather than by a read made before it.
//!
//! It owns the claim rows: looking a holder up, claiming and releasing (for ops whose batch
//! passed [`precondition`](super::precondition)), and building the table from the users'
//! confirmed credentials for a database written before it existed. It does not decide when a
//! credential is confirmed, nor release claims on its own when an account is deleted: callers
//! send [`WriteOp::ReleaseCred`](crate::store::WriteOp::ReleaseCred).

use std::collections::BTreeMap;

use redb::ReadableTable;

use super::tables::WriteTables;
use super::{backend, codec};
use crate::ids::UserId;
use crate::store::{StoreError, UserState};

impl WriteTables<'_> {
    /// The user holding the claim on `unique` in this transaction.
    pub(super) fn cred_holder(&self, unique: &str) -> Result<Option<UserId>, StoreError> {
        let held = self.creds.get(unique).map_err(backend)?;
        Ok(held.map(|g| UserId(g.value())))
    }

    /// Claims `unique` for `user`. Its batch passed the precondition: the credential is free
    /// or already `user`'s.
    pub(super) fn claim_cred(&mut self, unique: &str, user: UserId) -> Result<(), StoreError> {
        self.creds.insert(unique, user.0).map_err(backend)?;
        Ok(())
    }

    /// Drops `user`'s claim on `unique`; another user's claim, or none, is left alone.
    pub(super) fn release_cred(&mut self, unique: &str, user: UserId) -> Result<(), StoreError> {
        if self.cred_holder(unique)? == Some(user) {
            self.creds.remove(unique).map_err(backend)?;
        }
        Ok(())
    }

    /// Fills the (empty) claim table from the confirmed credentials (`CredRecord::done`) of
    /// every user not deleted. Before claims existed two accounts could confirm the same
    /// credential; the lower user id keeps it, and the conflict is logged. Unreadable users are
    /// logged and skipped.
    pub(super) fn build_cred_claims(&mut self) -> Result<(), StoreError> {
        let mut claims: BTreeMap<String, UserId> = BTreeMap::new();
        for entry in self.users.iter().map_err(backend)? {
            let (key, value) = entry.map_err(backend)?;
            let id = UserId(key.value());
            let user = match codec::decode_user(id, value.value()) {
                Ok(u) => u,
                Err(e) => {
                    log::error!("credential claims skip unreadable user {id}: {e}");
                    continue;
                }
            };
            if user.state == UserState::Deleted {
                continue;
            }
            for cred in user.creds.iter().filter(|c| c.done) {
                let holder = *claims
                    .entry(format!("{}:{}", cred.method, cred.value))
                    .or_insert(id);
                if holder != id {
                    log::warn!(
                        "a {} credential is confirmed on both {holder} and {id}; {holder} keeps it",
                        cred.method
                    );
                }
            }
        }
        if !claims.is_empty() {
            log::info!("building the credential claims: {} entries", claims.len());
        }
        for (unique, user) in &claims {
            self.creds
                .insert(unique.as_str(), user.0)
                .map_err(backend)?;
        }
        Ok(())
    }
}
