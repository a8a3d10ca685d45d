//! Recipient grouping for fan-out: session ids → one batch per destination shard, so the
//! runtime sends one envelope per shard rather than one per subscriber.
//!
//! Pure functions; the frame itself is serialized once by the caller and shared.

use crate::ids::{SessionId, ShardId};

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
