//! The tag index of [`RedbStore`](super::RedbStore): moving an owner's `(tag, owner)` entries
//! when its tags change, and building the whole index for a database written before it existed.
//!
//! It owns the index rows only; the records whose `tags` it mirrors are written by
//! [`write`](super::write), and searching it is [`read`](super::read)'s `find_tags`.

use redb::ReadableTable;

use super::tables::WriteTables;
use super::{backend, codec};
use crate::ids::UserId;
use crate::store::StoreError;

impl WriteTables<'_> {
    /// Moves `owner`'s tag index entries from `old` to `new` tags. `old: None` means the
    /// previous tags are unknown (unreadable record): every entry of the owner is dropped first.
    pub(super) fn retag(
        &mut self,
        owner: &str,
        old: Option<&[String]>,
        new: &[String],
    ) -> Result<(), StoreError> {
        match old {
            Some(old) => {
                for tag in old.iter().filter(|t| !new.contains(t)) {
                    self.tags.remove((tag.as_str(), owner)).map_err(backend)?;
                }
            }
            None => self.tags.retain(|(_, o), ()| o != owner).map_err(backend)?,
        }
        for tag in new {
            if !old.is_some_and(|old| old.contains(tag)) {
                self.tags
                    .insert((tag.as_str(), owner), ())
                    .map_err(backend)?;
            }
        }
        Ok(())
    }

    /// Fills the (empty) tag index from every stored user and topic; unreadable records are
    /// logged and skipped.
    pub(super) fn build_tag_index(&mut self) -> Result<(), StoreError> {
        let mut entries: Vec<(String, String)> = Vec::new();
        for entry in self.users.iter().map_err(backend)? {
            let (key, value) = entry.map_err(backend)?;
            let id = UserId(key.value());
            match codec::decode_user(id, value.value()) {
                Ok(u) => entries.extend(u.tags.into_iter().map(|t| (t, id.usr()))),
                Err(e) => log::error!("tag index skips unreadable user {id}: {e}"),
            }
        }
        for entry in self.topics.iter().map_err(backend)? {
            let (key, value) = entry.map_err(backend)?;
            let name = key.value();
            match codec::decode_topic(name, value.value()) {
                Ok(t) => entries.extend(t.tags.into_iter().map(|tag| (tag, name.to_owned()))),
                Err(e) => log::error!("tag index skips unreadable topic {name}: {e}"),
            }
        }
        if !entries.is_empty() {
            log::info!("building the tag index: {} entries", entries.len());
        }
        for (tag, owner) in &entries {
            self.tags
                .insert((tag.as_str(), owner.as_str()), ())
                .map_err(backend)?;
        }
        Ok(())
    }
}
