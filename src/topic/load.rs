//! Loading a topic: the reads one round of loading takes, and the topic built from their
//! answers (its record, its members, its user record for `me`, its last message).

use crate::store::{Answers, ReadQuery, StoreError, UserRecord, UserState};

use super::{sys_record, Member, Topic, TopicKind};

impl Topic {
    /// The reads that loading topic `name` takes (one round); `None` for a name of a kind not
    /// hosted here.
    pub fn load_reads(name: &str) -> Option<Vec<ReadQuery>> {
        let kind = TopicKind::of(name)?;
        let name = name.to_owned();
        Some(match kind {
            TopicKind::Me(uid) => vec![
                ReadQuery::User(uid),
                ReadQuery::SubsOfUser(uid),
                ReadQuery::Sub {
                    topic: name,
                    user: uid,
                },
            ],
            TopicKind::Fnd(uid) => vec![
                ReadQuery::User(uid),
                ReadQuery::Sub {
                    topic: name,
                    user: uid,
                },
            ],
            TopicKind::Group | TopicKind::P2p(..) | TopicKind::Sys => {
                let mut q = vec![
                    ReadQuery::Topic(name.clone()),
                    ReadQuery::SubsOfTopic(name.clone()),
                    ReadQuery::LastMessage(name),
                ];
                if let TopicKind::P2p(a, b) = kind {
                    q.push(ReadQuery::Users(vec![a, b]));
                }
                q
            }
        })
    }

    /// Builds a topic from the answers to [`Topic::load_reads`]. `Ok(None)`: no such topic.
    pub fn from_answers(
        name: &str,
        answers: &Answers,
        n_shards: usize,
    ) -> Result<Option<Topic>, StoreError> {
        let Some(kind) = TopicKind::of(name) else {
            return Ok(None);
        };
        let mut topic = Topic::empty(name, kind, n_shards);
        let active =
            |u: &Option<UserRecord>| u.as_ref().is_some_and(|u| u.state != UserState::Deleted);
        match kind {
            TopicKind::Me(uid) => {
                let user = answers.user(uid)?;
                if !active(&user) {
                    return Ok(None);
                }
                topic.user = user;
                topic.load_contacts(answers)?;
                if let Some(sub) = answers.sub(name, uid)? {
                    topic.me_want = sub.want;
                }
            }
            TopicKind::Fnd(uid) => {
                let user = answers.user(uid)?;
                if !active(&user) {
                    return Ok(None);
                }
                topic.user = user;
                if let (Some(sub), Some(fnd)) = (answers.sub(name, uid)?, topic.fnd.as_mut()) {
                    fnd.private = sub.private;
                }
            }
            TopicKind::Group | TopicKind::P2p(..) | TopicKind::Sys => {
                if let TopicKind::P2p(a, b) = kind {
                    // Both users must exist; the topic itself is created by the first `{sub}`.
                    if !active(&answers.user(a)?) || !active(&answers.user(b)?) {
                        return Ok(None);
                    }
                }
                match answers.topic(name)? {
                    Some(rec) => topic.rec = Some(Box::new(rec)),
                    None if kind == TopicKind::Group => return Ok(None),
                    None if kind == TopicKind::Sys => topic.rec = Some(Box::new(sys_record())),
                    None => {}
                }
                for sub in answers.subs_of_topic(name)? {
                    topic.members.insert(sub.user, Member { sub, online: 0 });
                }
                if let Some(last) = answers.last_message(name)? {
                    topic.seq = last.seq;
                    topic.touch(last.ts);
                }
            }
        }
        Ok(Some(topic))
    }
}
