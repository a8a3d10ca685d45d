//! What a topic request needs from the store before it can run: [`Topic::reads_for`] names the
//! reads ([`ReadQuery`]) for a request given what was already fetched, round after round until
//! nothing is missing, and the accessors here pick the answers back out for the handlers.
//!
//! This file is the one list of a topic's reads: a handler that needs stored data takes it
//! from [`TopicCx::fetched`], and its read is named here. Most requests need none.

use crate::ids::UserId;
use crate::proto::client::{what, GetQuery};
use crate::routing::{ContactEvent, DelWhat, ReqHead, Requester, TopicRequest};
use crate::store::{
    Answers, ContactRow, DelRecord, Found, MessageQuery, MessageRecord, ReadAnswer, ReadQuery,
    StoreError,
};
use crate::topic::{Topic, TopicCx, TopicKind, TopicLimits};

/// Which queries are missing from `answers`.
pub(crate) fn missing(queries: Vec<ReadQuery>, answers: &Answers) -> Vec<ReadQuery> {
    let mut out: Vec<ReadQuery> = Vec::new();
    for q in queries {
        if !answers.has(&q) && !out.contains(&q) {
            out.push(q);
        }
    }
    out
}

/// The wrong answer kind for a query: a bug in the store, reported as a store error.
fn mismatch(what: &str) -> StoreError {
    StoreError::Backend(format!("unexpected answer to a {what} read"))
}

impl Topic {
    /// The reads `req` still needs, given `answers`; empty when it can run.
    pub(crate) fn reads_for(
        &self,
        req: &TopicRequest,
        answers: &Answers,
        limits: &TopicLimits,
    ) -> Vec<ReadQuery> {
        let mut q = Vec::new();
        match req {
            TopicRequest::Join {
                hdr: ReqHead { req: r, .. },
                ..
            } => {
                // A new P2P subscription looks at both users.
                if let TopicKind::P2p(a, b) = self.kind {
                    if !self.members.get(&r.uid).is_some_and(|m| m.is_active()) {
                        q.push(ReadQuery::Users(vec![a, b]));
                    }
                }
            }
            TopicRequest::Get {
                hdr: ReqHead { req: r, .. },
                query,
                ..
            } => {
                if self.attached.contains_key(&r.sid) {
                    self.get_reads(r, query, answers, limits, &mut q);
                } else if what::parse(&query.what) == what::DESC {
                    self.desc_reads(r, &mut q);
                }
            }
            TopicRequest::Set { query, .. } => {
                // An invitation looks at the invited user.
                let target = query
                    .sub
                    .as_ref()
                    .and_then(|s| s.user.as_deref())
                    .and_then(UserId::parse_usr);
                if let Some(uid) = target {
                    if !self.members.get(&uid).is_some_and(|m| m.is_active()) {
                        q.push(ReadQuery::User(uid));
                    }
                }
            }
            TopicRequest::Del {
                what: DelWhat::Msg { ranges, hard: true },
                ..
            } if limits.msg_delete_age_ms > 0 => {
                if let Some(merged) = crate::topic::del::normalize_ranges(ranges, self.seq) {
                    q.extend(self.age_check_reads(&merged));
                }
            }
            TopicRequest::Refresh => q.extend(self.read_only_reads()),
            TopicRequest::Contact {
                topic,
                ev: ContactEvent::SubChanged | ContactEvent::NewContact,
            } => {
                if let TopicKind::Me(uid) = self.kind {
                    q.push(ReadQuery::Sub {
                        topic: topic.clone(),
                        user: uid,
                    });
                }
            }
            _ => {}
        }
        missing(q, answers)
    }

    /// The reads the `get` of a session attached (or about to be) needs, given `answers`.
    pub(crate) fn get_reads(
        &self,
        req: &Requester,
        query: &GetQuery,
        answers: &Answers,
        limits: &TopicLimits,
        q: &mut Vec<ReadQuery>,
    ) {
        let bits = what::parse(&query.what);
        if bits & what::DESC != 0 {
            self.desc_reads(req, q);
        }
        if bits & what::SUB != 0 {
            match self.kind {
                TopicKind::Me(uid) => {
                    let contacts = ReadQuery::Contacts(uid);
                    match answers.answer(&contacts) {
                        // Second round: the P2P peers of the contact list.
                        Ok(ReadAnswer::Contacts(rows)) => {
                            let peers = p2p_peers(uid, rows);
                            if !peers.is_empty() {
                                q.push(ReadQuery::Users(peers));
                            }
                        }
                        Ok(_) | Err(_) if answers.has(&contacts) => {}
                        _ => q.push(contacts),
                    }
                }
                TopicKind::Fnd(_) => {
                    if let Some(search) = self.search_read(req, limits) {
                        q.push(search);
                    }
                }
                TopicKind::Group | TopicKind::P2p(..) => {
                    let mut uids: Vec<UserId> = self.members.keys().copied().collect();
                    uids.sort();
                    if !uids.is_empty() {
                        q.push(ReadQuery::Users(uids));
                    }
                }
                TopicKind::Sys => {}
            }
        }
        if bits & what::DATA != 0 && self.kind.has_members() {
            q.push(self.history_read(req, query, limits));
        }
        if bits & what::DEL != 0 && self.kind.has_members() {
            let opts = query.del.clone().unwrap_or_default();
            q.push(ReadQuery::DelLog {
                topic: self.name.clone(),
                since: opts.since.filter(|s| *s > 0).unwrap_or(0) as u64,
                before: opts.before.filter(|b| *b > 0).map(|b| b as u64),
                limit: usize::MAX,
            });
        }
    }

    /// The users whose state makes the topic read-only (both P2P users, a group's owner).
    pub(crate) fn read_only_reads(&self) -> Option<ReadQuery> {
        let users: Vec<UserId> = match self.kind {
            TopicKind::P2p(a, b) => vec![a, b],
            TopicKind::Group => self.owner().into_iter().collect(),
            _ => Vec::new(),
        };
        (!users.is_empty()).then_some(ReadQuery::Users(users))
    }

    /// `desc` of a P2P topic shows the peer.
    fn desc_reads(&self, req: &Requester, q: &mut Vec<ReadQuery>) {
        if let TopicKind::P2p(a, b) = self.kind {
            q.push(ReadQuery::User(if req.uid == a { b } else { a }));
        }
    }

    /// One page of history as `{get data}` asks for it; the caller's soft deletions are
    /// excluded by the store.
    fn history_read(&self, req: &Requester, query: &GetQuery, limits: &TopicLimits) -> ReadQuery {
        let opts = query.data.clone().unwrap_or_default();
        let max = limits.max_history;
        let limit = match opts.limit {
            Some(l) if l > 0 => (l as usize).min(max),
            _ => max,
        };
        let ranges = opts
            .ranges
            .iter()
            .flatten()
            .filter(|r| r.low > 0)
            .map(|r| {
                let low = r.low as u64;
                (low, if r.hi > r.low { r.hi as u64 } else { low + 1 })
            })
            .collect();
        let soft = self.members.get(&req.uid).is_some_and(|m| m.sub.del_id > 0);
        ReadQuery::History {
            topic: self.name.clone(),
            query: MessageQuery {
                since: opts.since.filter(|s| *s > 0).map(|s| s as u64),
                before: opts.before.filter(|s| *s > 0).map(|s| s as u64),
                limit,
                exclude: Vec::new(),
            },
            ranges,
            soft_of: soft.then_some(req.uid),
        }
    }

    /// The search of a `fnd` session's current query.
    fn search_read(&self, req: &Requester, limits: &TopicLimits) -> Option<ReadQuery> {
        let q = crate::topic::tags::parse_query(&self.fnd_query(req.sid)?);
        if q.is_empty() {
            return None;
        }
        Some(ReadQuery::Search {
            tags: crate::topic::tags::query_tags(&q),
            limit: limits.max_results.saturating_mul(4),
        })
    }

    /// The messages a hard delete with an age limit must look at.
    fn age_check_reads(&self, merged: &[(u64, u64)]) -> Vec<ReadQuery> {
        merged
            .iter()
            .map(|&(low, hi)| ReadQuery::History {
                topic: self.name.clone(),
                query: MessageQuery {
                    since: Some(low),
                    before: Some(hi),
                    limit: (hi - low) as usize,
                    exclude: Vec::new(),
                },
                ranges: Vec::new(),
                soft_of: None,
            })
            .collect()
    }
}

/// The other user of every P2P conversation in a contact list.
fn p2p_peers(uid: UserId, rows: &[ContactRow]) -> Vec<UserId> {
    let mut peers: Vec<UserId> = rows
        .iter()
        .filter_map(|r| match TopicKind::of(&r.sub.topic) {
            Some(TopicKind::P2p(a, b)) => Some(if a == uid { b } else { a }),
            _ => None,
        })
        .collect();
    peers.sort();
    peers.dedup();
    peers
}

impl TopicCx<'_> {
    /// The fetched history pages (one for `{get data}`, one per range for a delete's age
    /// check), concatenated in the order asked.
    pub(crate) fn fetched_history(&self) -> Result<Vec<MessageRecord>, StoreError> {
        let mut out = Vec::new();
        let mut any = false;
        for (_, a) in self
            .fetched
            .matching(|q| matches!(q, ReadQuery::History { .. }))
        {
            any = true;
            match a? {
                ReadAnswer::Messages(m) => out.extend(m.iter().cloned()),
                _ => return Err(mismatch("history")),
            }
        }
        if !any {
            return Err(StoreError::Backend("history read not fetched".into()));
        }
        Ok(out)
    }

    /// The fetched delete log.
    pub(crate) fn fetched_del_log(&self) -> Result<Vec<DelRecord>, StoreError> {
        match self
            .fetched
            .matching(|q| matches!(q, ReadQuery::DelLog { .. }))
            .next()
        {
            Some((_, Ok(ReadAnswer::DelLog(d)))) => Ok(d.clone()),
            Some((_, Ok(_))) => Err(mismatch("delete log")),
            Some((_, Err(e))) => Err(e),
            None => Err(StoreError::Backend("delete log read not fetched".into())),
        }
    }

    /// The fetched contact list of `uid`.
    pub(crate) fn fetched_contacts(&self, uid: UserId) -> Result<Vec<ContactRow>, StoreError> {
        match self.fetched.answer(&ReadQuery::Contacts(uid))? {
            ReadAnswer::Contacts(rows) => Ok(rows.clone()),
            _ => Err(mismatch("contacts")),
        }
    }

    /// The fetched search results.
    pub(crate) fn fetched_search(&self) -> Result<Vec<Found>, StoreError> {
        match self
            .fetched
            .matching(|q| matches!(q, ReadQuery::Search { .. }))
            .next()
        {
            Some((_, Ok(ReadAnswer::Found(f)))) => Ok(f.clone()),
            Some((_, Ok(_))) => Err(mismatch("search")),
            Some((_, Err(e))) => Err(e),
            None => Err(StoreError::Backend("search read not fetched".into())),
        }
    }
}
