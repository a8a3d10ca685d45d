//! Recipient grouping for fan-out: session ids → one batch per destination shard, so the
//! runtime sends one envelope per shard rather than one per subscriber; and per-view fan-out
//! for topics whose name differs between recipients (P2P peers, channel readers).
//!
//! A frame is serialized once per distinct view, never once per recipient.

use crate::proto::{EncodingSet, Frame};

use crate::access::AccessMode;
use crate::ids::{SessionId, ShardId, UserId};
use crate::topic::{Topic, TopicCx, TopicKind, TopicOut};

impl Topic {
    /// Sends a frame to every attached session (except `skip`) whose user passes `filter` and
    /// has all of `need`. `make(view, reader)` builds the frame for recipients who see the
    /// topic as `view` (`reader`: a channel reader); `None` skips them.
    ///
    /// Hot path of every delivery: one pass over the attached sessions with one member lookup
    /// each and no allocation per recipient; the view names (at most one per P2P participant,
    /// two for a channel) are built once per distinct view.
    pub(crate) fn fan(
        &self,
        need: u8,
        skip: Option<SessionId>,
        filter: impl Fn(UserId) -> bool,
        mut make: impl FnMut(&str, bool) -> Option<Frame>,
        cx: &mut TopicCx<'_>,
    ) {
        let chan = self.rec.as_ref().is_some_and(|r| r.is_chan);
        let p2p = matches!(self.kind, TopicKind::P2p(..));
        let has_members = self.kind.has_members();
        // (the P2P participant the view depends on, reader) → sessions.
        type ViewKey = (Option<UserId>, bool);
        let mut groups: Vec<(ViewKey, Vec<SessionId>)> = Vec::new();
        for (sid, a) in &self.attached {
            if Some(*sid) == skip || !filter(a.uid) {
                continue;
            }
            let mut reader = false;
            if has_members {
                match self.members.get(&a.uid) {
                    Some(m) if m.is_active() && m.mode().has(need) => {
                        reader = chan && m.sub.given == AccessMode::CHAN_READER;
                    }
                    _ => continue,
                }
            }
            let key = (p2p.then_some(a.uid), reader);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, sids)) => sids.push(*sid),
                None => groups.push((key, vec![*sid])),
            }
        }
        for ((peer_view, reader), sids) in groups {
            let view = match peer_view {
                Some(uid) => self.view_of(uid),
                None if reader => format!("chn{}", self.name.get(3..).unwrap_or("")),
                None => self.shared_view(),
            };
            if let Some(frame) = make(&view, reader) {
                let to = self.recipients(sids);
                cx.out.push(TopicOut::Deliver { frame, to });
            }
        }
    }

    /// The name every non-reader sees (all kinds but P2P).
    fn shared_view(&self) -> String {
        match self.kind {
            TopicKind::Me(_) => "me".into(),
            TopicKind::Fnd(_) => "fnd".into(),
            TopicKind::Sys => "sys".into(),
            TopicKind::Group | TopicKind::P2p(..) => self.name.clone(),
        }
    }
}

/// Who a shared frame goes to: one batch of session ids per destination shard, and the wire
/// encodings those sessions use (each is produced once, before the frame leaves the topic's
/// shard).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recipients {
    pub batches: Vec<(ShardId, Vec<SessionId>)>,
    pub encodings: EncodingSet,
}

impl Topic {
    /// Groups `sids` by shard and collects their encodings (attached sessions report theirs;
    /// others are encoded lazily by their own shard).
    pub(crate) fn recipients(&self, sids: impl IntoIterator<Item = SessionId>) -> Recipients {
        let mut encodings = EncodingSet::default();
        let batches = group_by_shard(
            sids.into_iter().inspect(|sid| {
                if let Some(a) = self.attached.get(sid) {
                    encodings.insert(a.enc);
                }
            }),
            self.n_shards as usize,
        );
        Recipients { batches, encodings }
    }
}

/// Groups session ids by their home shard (encoded in the id). Shards without recipients are
/// left out; order within a batch follows the input order. Sessions of other cluster nodes
/// ([`SessionId::remote`]) come last, one batch per (node, origin shard): that batch crosses
/// the node link once.
pub fn group_by_shard(
    sids: impl IntoIterator<Item = SessionId>,
    n_shards: usize,
) -> Vec<(ShardId, Vec<SessionId>)> {
    let mut buckets: Vec<Vec<SessionId>> = vec![Vec::new(); n_shards.max(1)];
    let mut remote: std::collections::BTreeMap<ShardId, Vec<SessionId>> = Default::default();
    for sid in sids {
        let idx = sid.shard().idx();
        if let Some(bucket) = buckets.get_mut(idx) {
            bucket.push(sid);
        } else if sid.remote_parts().is_some() {
            remote.entry(sid.shard()).or_default().push(sid);
        }
    }
    buckets
        .into_iter()
        .enumerate()
        .filter(|(_, b)| !b.is_empty())
        .map(|(i, b)| (ShardId(i as u16), b))
        .chain(remote)
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
        let far = SessionId::remote(1, sids[0]).unwrap();
        let groups = group_by_shard([far, sids[1], far], 4);
        assert_eq!(groups[1], (far.shard(), vec![far, far]));
    }
}
