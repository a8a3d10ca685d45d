//! Recipient grouping for fan-out: session ids → one batch per destination shard, so the
//! runtime sends one envelope per shard rather than one per subscriber; and per-view fan-out
//! for topics whose name differs between recipients (P2P peers, channel readers).
//!
//! A frame is serialized once per distinct view, never once per recipient.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::ids::{SessionId, ShardId, UserId};
use crate::topic::{Topic, TopicCx, TopicOut};

impl Topic {
    /// Sends a frame to every attached session (except `skip`) whose user passes `filter` and
    /// has all of `need`. `make(view, reader)` builds the frame for recipients who see the
    /// topic as `view` (`reader`: a channel reader); `None` skips them.
    pub(crate) fn fan(
        &self,
        need: u8,
        skip: Option<SessionId>,
        filter: impl Fn(UserId) -> bool,
        mut make: impl FnMut(&str, bool) -> Option<Bytes>,
        cx: &mut TopicCx<'_>,
    ) {
        let mut by_view: BTreeMap<(String, bool), Vec<SessionId>> = BTreeMap::new();
        for (sid, a) in &self.attached {
            if Some(*sid) == skip || !filter(a.uid) {
                continue;
            }
            if self.kind.has_members() && !self.mode_of_user(a.uid).has(need) {
                continue;
            }
            let key = (self.view_of(a.uid), self.is_reader(a.uid));
            by_view.entry(key).or_default().push(*sid);
        }
        for ((view, reader), sids) in by_view {
            if let Some(frame) = make(&view, reader) {
                let batches = group_by_shard(sids, self.n_shards);
                cx.out.push(TopicOut::Deliver { frame, batches });
            }
        }
    }
}

/// Groups session ids by their home shard (encoded in the id). Shards without recipients are
/// left out; order within a batch follows the input order.
pub fn group_by_shard(
    sids: impl IntoIterator<Item = SessionId>,
    n_shards: usize,
) -> Vec<(ShardId, Vec<SessionId>)> {
    let mut buckets: Vec<Vec<SessionId>> = vec![Vec::new(); n_shards.max(1)];
    for sid in sids {
        let idx = sid.shard().idx();
        if let Some(bucket) = buckets.get_mut(idx) {
            bucket.push(sid);
        }
    }
    buckets
        .into_iter()
        .enumerate()
        .filter(|(_, b)| !b.is_empty())
        .map(|(i, b)| (ShardId(i as u16), b))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_batch_per_shard_with_recipients() {
        let sids = [
            SessionId::new(ShardId(0), 1),
            SessionId::new(ShardId(1), 2),
            SessionId::new(ShardId(0), 3),
            SessionId::new(ShardId(3), 4),
        ];
        let groups = group_by_shard(sids, 4);
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0], (ShardId(0), vec![sids[0], sids[2]]));
        assert_eq!(groups[1], (ShardId(1), vec![sids[1]]));
        assert_eq!(groups[2], (ShardId(3), vec![sids[3]]));
    }
}
