//! The [`Store`] impl of [`RedbStore`]: every read, each in its own read transaction, and
//! `apply`, which hands the batches to the [`write`](super::write) path.
//!
//! It owns how the tables are walked to answer a read (prefix ranges, the exclusion-skipping
//! message walk, the tag search). It never writes; composite reads ([`ReadQuery`]) are
//! answered by [`read::run`](crate::store::read::run) over these primitives.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use super::tables::{
    AUTH, AUTH_BY_USER, CREDS, DELS, MESSAGES, SUBS, SUBS_BY_USER, TAGS, TOPICS, USERS,
};
use super::{backend, codec, RedbStore};
use crate::ids::UserId;
use crate::store::{
    AuthRecord, DelRecord, LastMessage, MessageQuery, MessageRecord, ReadAnswer, ReadQuery, Store,
    StoreError, SubRecord, TopicRecord, UserRecord, WriteBatch,
};

struct Exclusions(Vec<(u64, u64)>);

impl Exclusions {
    fn new(mut ranges: Vec<(u64, u64)>) -> Exclusions {
        ranges.retain(|&(low, hi)| low < hi);
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (low, hi) in ranges {
            match merged.last_mut() {
                Some(last) if low <= last.1 => last.1 = last.1.max(hi),
                _ => merged.push((low, hi)),
            }
        }
        Exclusions(merged)
    }

    /// The low end of the range that holds `seq`, if one does.
    fn low_of(&self, seq: u64) -> Option<u64> {
        let i = self.0.partition_point(|&(low, _)| low <= seq);
        let (low, hi) = *self.0.get(i.checked_sub(1)?)?;
        (seq < hi).then_some(low)
    }
}

impl Store for RedbStore {
    fn user(&self, uid: UserId) -> Result<Option<UserRecord>, StoreError> {
        let txn = self.read_txn()?;
        let table = txn.open_table(USERS).map_err(backend)?;
        match table.get(uid.0).map_err(backend)? {
            Some(g) => codec::decode_user(uid, g.value()).map(Some),
            None => Ok(None),
        }
    }

    fn auth(&self, unique: &str) -> Result<Option<AuthRecord>, StoreError> {
        let txn = self.read_txn()?;
        let table = txn.open_table(AUTH).map_err(backend)?;
        match table.get(unique).map_err(backend)? {
            Some(g) => codec::decode_auth(unique, g.value()).map(Some),
            None => Ok(None),
        }
    }

    fn auths_of_user(&self, uid: UserId) -> Result<Vec<AuthRecord>, StoreError> {
        let txn = self.read_txn()?;
        let index = txn.open_table(AUTH_BY_USER).map_err(backend)?;
        let auth = txn.open_table(AUTH).map_err(backend)?;
        let mut out = Vec::new();
        for entry in index.range((uid.0, "")..).map_err(backend)? {
            let (key, _) = entry.map_err(backend)?;
            let (user, unique) = key.value();
            if user != uid.0 {
                break;
            }
            match auth.get(unique).map_err(backend)? {
                Some(g) => {
                    let rec = codec::decode_auth(unique, g.value())?;
                    if rec.user == uid {
                        out.push(rec);
                    } else {
                        log::warn!("stale auth index entry ({uid}, {unique})");
                    }
                }
                None => log::warn!("dangling auth index entry ({uid}, {unique})"),
            }
        }
        Ok(out)
    }

    fn topic(&self, name: &str) -> Result<Option<TopicRecord>, StoreError> {
        let txn = self.read_txn()?;
        let table = txn.open_table(TOPICS).map_err(backend)?;
        match table.get(name).map_err(backend)? {
            Some(g) => codec::decode_topic(name, g.value()).map(Some),
            None => Ok(None),
        }
    }

    fn sub(&self, topic: &str, uid: UserId) -> Result<Option<SubRecord>, StoreError> {
        let txn = self.read_txn()?;
        let table = txn.open_table(SUBS).map_err(backend)?;
        match table.get((topic, uid.0)).map_err(backend)? {
            Some(g) => codec::decode_sub(topic, uid, g.value()).map(Some),
            None => Ok(None),
        }
    }

    fn subs_of_topic(&self, topic: &str) -> Result<Vec<SubRecord>, StoreError> {
        let txn = self.read_txn()?;
        let table = txn.open_table(SUBS).map_err(backend)?;
        let mut out = Vec::new();
        for entry in table
            .range((topic, 0u64)..=(topic, u64::MAX))
            .map_err(backend)?
        {
            let (key, value) = entry.map_err(backend)?;
            let (_, user) = key.value();
            out.push(codec::decode_sub(topic, UserId(user), value.value())?);
        }
        Ok(out)
    }

    fn subs_of_user(&self, uid: UserId) -> Result<Vec<SubRecord>, StoreError> {
        let txn = self.read_txn()?;
        let index = txn.open_table(SUBS_BY_USER).map_err(backend)?;
        let subs = txn.open_table(SUBS).map_err(backend)?;
        let mut out = Vec::new();
        for entry in index.range((uid.0, "")..).map_err(backend)? {
            let (key, _) = entry.map_err(backend)?;
            let (user, topic) = key.value();
            if user != uid.0 {
                break;
            }
            match subs.get((topic, uid.0)).map_err(backend)? {
                Some(g) => out.push(codec::decode_sub(topic, uid, g.value())?),
                None => log::warn!("dangling subscription index entry ({uid}, {topic})"),
            }
        }
        Ok(out)
    }

    fn messages(&self, topic: &str, q: MessageQuery) -> Result<Vec<MessageRecord>, StoreError> {
        let since = q.since.unwrap_or(0);
        if q.limit == 0 || q.before.is_some_and(|b| b <= since) {
            return Ok(Vec::new());
        }
        let exclude = Exclusions::new(q.exclude);
        let mut upper = match q.before {
            Some(b) => Bound::Excluded((topic, b)),
            None => Bound::Included((topic, u64::MAX)),
        };
        let txn = self.read_txn()?;
        let table = txn.open_table(MESSAGES).map_err(backend)?;
        let mut out = Vec::with_capacity(q.limit.min(256));
        // Walks down from `upper`; meeting an excluded seq restarts the walk below its range,
        // so a large exclusion costs one seek, not a scan.
        'walk: loop {
            let range = table
                .range((Bound::Included((topic, since)), upper))
                .map_err(backend)?;
            for entry in range.rev() {
                let (key, value) = entry.map_err(backend)?;
                let (_, seq) = key.value();
                if let Some(low) = exclude.low_of(seq) {
                    if low <= since {
                        break 'walk;
                    }
                    upper = Bound::Excluded((topic, low));
                    continue 'walk;
                }
                let m = codec::decode_message(topic, seq, value.value())?;
                if m.deleted {
                    continue;
                }
                out.push(m);
                if out.len() == q.limit {
                    break 'walk;
                }
            }
            break;
        }
        Ok(out)
    }

    fn last_message(&self, topic: &str) -> Result<Option<LastMessage>, StoreError> {
        let txn = self.read_txn()?;
        let table = txn.open_table(MESSAGES).map_err(backend)?;
        let mut range = table
            .range((topic, 0u64)..=(topic, u64::MAX))
            .map_err(backend)?;
        match range.next_back() {
            Some(entry) => {
                let (key, value) = entry.map_err(backend)?;
                let (_, seq) = key.value();
                let m = codec::decode_message(topic, seq, value.value())?;
                Ok(Some(LastMessage { seq, ts: m.ts }))
            }
            None => Ok(None),
        }
    }

    fn del_log(
        &self,
        topic: &str,
        since: u64,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<DelRecord>, StoreError> {
        if limit == 0 || before.is_some_and(|b| b <= since) {
            return Ok(Vec::new());
        }
        let upper = match before {
            Some(b) => Bound::Excluded((topic, b)),
            None => Bound::Included((topic, u64::MAX)),
        };
        let txn = self.read_txn()?;
        let table = txn.open_table(DELS).map_err(backend)?;
        let mut out = Vec::new();
        for entry in table
            .range((Bound::Included((topic, since)), upper))
            .map_err(backend)?
            .take(limit)
        {
            let (key, value) = entry.map_err(backend)?;
            let (_, del_id) = key.value();
            out.push(codec::decode_del(topic, del_id, value.value())?);
        }
        Ok(out)
    }

    fn find_tags(
        &self,
        tags: &[String],
        limit: usize,
    ) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let txn = self.read_txn()?;
        let table = txn.open_table(TAGS).map_err(backend)?;
        // Walking the tags in the order given keeps each owner's matches in that order.
        let mut seen: HashSet<&str> = HashSet::new();
        let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for tag in tags.iter().filter(|t| seen.insert(t.as_str())) {
            for entry in table.range((tag.as_str(), "")..).map_err(backend)? {
                let (key, _) = entry.map_err(backend)?;
                let (t, owner) = key.value();
                if t != tag {
                    break;
                }
                found.entry(owner.to_owned()).or_default().push(tag.clone());
            }
        }
        let mut out: Vec<(String, Vec<String>)> = found.into_iter().collect();
        // Stable sort over owners already in name order: most matches first, then by name.
        out.sort_by_key(|(_, matched)| std::cmp::Reverse(matched.len()));
        out.truncate(limit);
        Ok(out)
    }

    fn cred_owner(&self, unique: &str) -> Result<Option<UserId>, StoreError> {
        let txn = self.read_txn()?;
        let table = txn.open_table(CREDS).map_err(backend)?;
        let held = table.get(unique).map_err(backend)?;
        Ok(held.map(|g| UserId(g.value())))
    }

    fn read(&self, q: &ReadQuery) -> Result<ReadAnswer, StoreError> {
        crate::store::read::run(self, q)
    }

    fn apply(&self, batches: &[WriteBatch]) -> Vec<Result<(), StoreError>> {
        self.apply_with(batches, self.durable)
    }

    fn apply_volatile(&self, batches: &[WriteBatch]) -> Vec<Result<(), StoreError>> {
        self.apply_with(batches, false)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.sync_txn()
    }
}

impl RedbStore {
    fn apply_with(&self, batches: &[WriteBatch], durable: bool) -> Vec<Result<(), StoreError>> {
        if batches.is_empty() {
            return Vec::new();
        }
        match self.apply_txn(batches, durable) {
            Ok(results) => results,
            Err(e) => {
                log::error!("store commit of {} batches failed: {e}", batches.len());
                vec![Err(e); batches.len()]
            }
        }
    }
}
