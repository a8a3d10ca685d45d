//! A glance at every `me` topic loaded on this shard: which sessions a user-level `{pres}`
//! would reach, kept in one dense table keyed by user id, so that a message's `{pres what=msg}`
//! to a thousand members does not format a thousand topic names and touch a thousand topics.
//!
//! It owns the table and the answer it gives; the shard keeps it in step with its topic table
//! (every change of a topic goes through `with_topic`, every insert and removal of a `me`
//! topic refreshes or drops its glance). The topic itself stays the authority: a glance that
//! cannot answer (a `me` reading its contacts, or attached on more than two sessions) sends
//! the notification the slow way, through the topic.

use std::collections::HashMap;

use crate::ids::{SessionId, UserId};
use crate::topic::Topic;

/// What a loaded `me` topic shows a user-level `{pres}` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Glance {
    /// Not reading its contacts, and attached on these sessions (at most two; `n` of them).
    Shows { n: u8, sids: [SessionId; 2] },
    /// Reading its contacts, or attached on more sessions: only the topic can tell.
    Ask,
}

impl Glance {
    /// The glance of a loaded `me` topic.
    pub(super) fn of(topic: &Topic) -> Glance {
        if topic.is_reading() || topic.n_attached() > 2 {
            return Glance::Ask;
        }
        let mut sids = [SessionId(0); 2];
        let mut n = 0u8;
        for sid in topic.attached_sids() {
            sids[n as usize] = sid;
            n += 1;
        }
        Glance::Shows { n, sids }
    }

    /// `Some(true)`: a user-level `{pres}` skipping `skip` reaches no session of this `me`
    /// (what `Topic::user_pres_reaches_none` answers); `None`: ask the topic.
    pub(super) fn reaches_none(&self, skip: &[SessionId]) -> Option<bool> {
        match self {
            Glance::Shows { n, sids } => {
                Some(sids[..*n as usize].iter().all(|sid| skip.contains(sid)))
            }
            Glance::Ask => None,
        }
    }
}

/// The glances of the `me` topics loaded here, by user.
#[derive(Default)]
pub(super) struct MeGlances {
    by_user: HashMap<UserId, Glance, foldhash::fast::RandomState>,
}

impl MeGlances {
    /// The glance of `uid`'s `me`, if it is loaded here.
    pub(super) fn get(&self, uid: UserId) -> Option<Glance> {
        self.by_user.get(&uid).copied()
    }

    /// Records what topic `name` now shows, if it is a `me` topic: `None` when it is not
    /// loaded (any more).
    pub(super) fn refresh(&mut self, name: &str, topic: Option<&Topic>) {
        let Some(uid) = UserId::parse_usr(name) else {
            return;
        };
        match topic {
            Some(t) => {
                self.by_user.insert(uid, Glance::of(t));
            }
            None => {
                self.by_user.remove(&uid);
            }
        }
    }

    /// Number of `me` topics glanced at (tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_user.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_only_for_small_quiet_topics() {
        let (a, b) = (SessionId(11), SessionId(12));
        let none = Glance::Shows {
            n: 0,
            sids: [SessionId(0); 2],
        };
        assert_eq!(none.reaches_none(&[]), Some(true));
        let one = Glance::Shows {
            n: 1,
            sids: [a, SessionId(0)],
        };
        assert_eq!(one.reaches_none(&[a]), Some(true));
        assert_eq!(one.reaches_none(&[b]), Some(false));
        assert_eq!(one.reaches_none(&[]), Some(false));
        let two = Glance::Shows { n: 2, sids: [a, b] };
        assert_eq!(two.reaches_none(&[b, a]), Some(true));
        assert_eq!(two.reaches_none(&[a]), Some(false));
        assert_eq!(Glance::Ask.reaches_none(&[a, b]), None);
    }

    #[test]
    fn only_me_topics_are_glanced_at_and_unloads_drop_them() {
        let uid = UserId(0x1234_5678);
        // Any topic with no attachment and no read in flight glances as `Shows { n: 0 }`.
        let idle = Topic::new_group("grpAbCdEfGhIjK", 1);
        let mut g = MeGlances::default();
        g.refresh("grpAbCdEfGhIjK", Some(&idle));
        assert_eq!(g.len(), 0, "a group is not a `me`");
        g.refresh(&uid.usr(), Some(&idle));
        assert_eq!(g.len(), 1);
        assert_eq!(
            g.get(uid),
            Some(Glance::Shows {
                n: 0,
                sids: [SessionId(0); 2]
            })
        );
        g.refresh(&uid.usr(), None);
        assert_eq!(g.get(uid), None);
        assert_eq!(g.len(), 0);
    }
}
