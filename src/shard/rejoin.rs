//! Failover on the origin node: local sessions attached to topics another node masters stay
//! attached when that node dies. The origin keeps, per session, the remote topics it joined
//! (the master they went to, and the last data seq it delivered to the session: the settled
//! seq the master reported at attach time, then every broadcast). When a new view no longer
//! has that master up, the shard re-joins the session to the topic's new master itself (this
//! node included) under the session's snapshot, then fetches what the session missed
//! (`{get data since}` pages on its behalf) and delivers the gap in seq order; live `{data}`
//! for the topic are held meanwhile and merged, so nothing is shown twice or out of order.
//! The answers to these requests carry a marker id and never reach the client, nor does the
//! `Detached` a refusal brings while the re-join is under way. A master that refuses (it may
//! not have the new view yet: `{ctrl 502/503}`) or does not answer is retried for a while;
//! when the re-join fails for good, the session gets `{pres topic:"me" what:"term" src:…}`
//! (the reference's proxy form) and is detached, so the client re-subscribes.
//!
//! A `noecho` publisher is never shown its own messages by a backfill (the seqs its
//! acknowledgements carried are skipped).
//!
//! Only failover is handled here: a topic moved away from a live master (a node joined) is
//! relinquished there with `{pres term}`, as the reference does.

use std::collections::HashMap;

use serde::Deserialize;

use super::proxy_wire::Event;
use crate::ids::{SessionId, UnixMillis};
use crate::proto::client::{GetOptsData, GetQuery};
use crate::proto::server::Pres;
use crate::proto::{Frame, ServerMsg};
use crate::routing::{ReqHead, Requester, SessionEvent, TopicRequest};
use crate::session::SubState;
use crate::shard::{now, ShardCtx};

/// Where a remote attachment is.
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// Attached at `master`; broadcasts flow.
    Live,
    /// The re-join went out under the marker id.
    Joining(String),
    /// A page of history went out under the marker id; `got` data frames came back so far.
    Backfill { id: String, got: usize, low: u64 },
    /// Refused or unanswered: tried again at this time.
    Retry(UnixMillis),
}

/// One session's attachment to a topic mastered elsewhere.
#[derive(Debug)]
struct Sub {
    /// Routing name, and the name as the client knows it (`{data}` frames carry that one).
    topic: String,
    as_seen: String,
    master: String,
    /// The last data seq delivered to the session (`None`: not known yet).
    last: Option<u64>,
    phase: Phase,
    /// While re-joining: when to give up.
    until: UnixMillis,
    /// While re-joining: `{data}` for the topic, held to be delivered in order.
    held: Vec<(u64, Frame)>,
    /// Until the re-join is answered: the session's own requests for the topic, parked (the
    /// new master would refuse them, the session not being attached there yet).
    parked: Vec<TopicRequest>,
    /// Request ids of the session's `noecho` publishes not acknowledged yet (the newest
    /// [`NOECHO_TRACKED`]).
    noecho: Vec<String>,
    /// Seqs of the session's acknowledged `noecho` publishes above `last`: it never got them
    /// as `{data}`, and a backfill must not show them to it either.
    own: Vec<u64>,
}

/// The most unacknowledged `noecho` publishes tracked per attachment (a publisher whose acks
/// lag further behind may see its oldest ones in a backfill).
const NOECHO_TRACKED: usize = 256;

/// The remote attachments of one shard's sessions.
#[derive(Debug, Default)]
pub(super) struct Rejoins {
    subs: HashMap<SessionId, Vec<Sub>>,
    /// Marker ids of the requests in flight, with the attachment they are for.
    waiting: HashMap<String, (SessionId, String)>,
    /// Attachments not live: frames are inspected only while there are some.
    busy: usize,
    next: u64,
}

impl Rejoins {
    /// Whether some attachment is re-joining (events are looked at only then).
    pub(super) fn busy(&self) -> bool {
        self.busy > 0
    }

    fn get(&mut self, sid: SessionId, topic: &str) -> Option<&mut Sub> {
        self.subs
            .get_mut(&sid)?
            .iter_mut()
            .find(|s| s.topic == topic)
    }

    fn seen(&mut self, sid: SessionId, as_seen: &str) -> Option<&mut Sub> {
        self.subs
            .get_mut(&sid)?
            .iter_mut()
            .find(|s| s.as_seen == as_seen)
    }

    fn take(&mut self, sid: SessionId, topic: &str) -> Option<Sub> {
        let subs = self.subs.get_mut(&sid)?;
        let at = subs.iter().position(|s| s.topic == topic)?;
        let sub = subs.swap_remove(at);
        if subs.is_empty() {
            self.subs.remove(&sid);
        }
        self.recount();
        Some(sub)
    }

    fn recount(&mut self) {
        self.busy = self
            .subs
            .values()
            .flatten()
            .filter(|s| s.phase != Phase::Live)
            .count();
        if self.busy == 0 {
            self.waiting.clear();
        }
    }

    /// A marker id for a request made on a session's behalf (a client may send any id, so it
    /// is matched with the session and topic too).
    fn marker(&mut self, sid: SessionId, topic: &str) -> String {
        self.next += 1;
        let id = format!("\u{1}rejoin.{}.{}", sid.0, self.next);
        self.waiting.insert(id.clone(), (sid, topic.to_owned()));
        id
    }
}

/// The seq a `{ctrl 202}` acknowledging a publish carries (`params.seq`), from its JSON.
fn ack_seq(json: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct Ack {
        ctrl: AckCtrl,
    }
    #[derive(Deserialize)]
    struct AckCtrl {
        params: Option<AckParams>,
    }
    #[derive(Deserialize)]
    struct AckParams {
        seq: Option<u64>,
    }
    serde_json::from_str::<Ack>(json).ok()?.ctrl.params?.seq
}

/// The topic (as the client knows it) and seq of a `{data}` frame, local or carried.
fn data_head(frame: &Frame) -> Option<(String, u64)> {
    #[derive(Deserialize)]
    struct Head {
        data: DataHead,
    }
    #[derive(Deserialize)]
    struct DataHead {
        topic: String,
        seq: u64,
    }
    match frame.msg() {
        ServerMsg::Data(d) => Some((d.topic.clone(), d.seq)),
        ServerMsg::Info(_) => {
            let json = frame.json();
            if !json.starts_with(b"{\"data\":") {
                return None;
            }
            let h: Head = serde_json::from_slice(&json).ok()?;
            Some((h.data.topic, h.data.seq))
        }
        _ => None,
    }
}

impl ShardCtx {
    /// Origin, forwarding `req` for `topic` to `peer`: a join records the attachment (or
    /// moves it to `peer`), a leave or detach forgets it.
    pub(super) fn rejoin_note(&mut self, topic: &str, peer: &str, req: &TopicRequest) {
        match req {
            TopicRequest::Join { hdr, .. } => {
                let subs = self.rejoins.subs.entry(hdr.req.sid).or_default();
                match subs.iter_mut().find(|s| s.topic == topic) {
                    Some(s) => s.master = peer.to_owned(),
                    None => subs.push(Sub {
                        topic: topic.to_owned(),
                        as_seen: hdr.as_seen.clone(),
                        master: peer.to_owned(),
                        last: None,
                        phase: Phase::Live,
                        until: UnixMillis(0),
                        held: Vec::new(),
                        parked: Vec::new(),
                        noecho: Vec::new(),
                        own: Vec::new(),
                    }),
                }
            }
            TopicRequest::Publish {
                hdr, noecho: true, ..
            } => {
                let id = hdr.id.clone();
                if let (Some(s), Some(id)) = (self.rejoins.get(hdr.req.sid, topic), id) {
                    if s.noecho.len() >= NOECHO_TRACKED {
                        s.noecho.remove(0);
                    }
                    s.noecho.push(id);
                }
            }
            TopicRequest::Leave { hdr, .. } => {
                self.rejoins.take(hdr.req.sid, topic);
            }
            TopicRequest::Detach { sid } => {
                self.rejoins.take(*sid, topic);
            }
            _ => {}
        }
    }

    /// A request on its way to `topic`: parked when it is the session's own and the session
    /// is re-joining the topic (until the new master has attached it); back otherwise.
    pub(super) fn rejoin_park(&mut self, topic: &str, req: TopicRequest) -> Option<TopicRequest> {
        let Some(hdr) = req.hdr() else {
            return Some(req);
        };
        if (hdr.id.as_ref()).is_some_and(|id| self.rejoins.waiting.contains_key(id)) {
            return Some(req);
        }
        match self.rejoins.get(hdr.req.sid, topic) {
            Some(s) if matches!(s.phase, Phase::Joining(_) | Phase::Retry(_)) => {
                s.parked.push(req);
                None
            }
            _ => Some(req),
        }
    }

    /// Sends what was parked for a re-join that was answered.
    fn rejoin_release(&mut self, parked: Vec<TopicRequest>, topic: &str) {
        for req in parked {
            self.route(topic.to_owned(), req);
        }
    }

    /// Origin: the master `peer` attached `sid` to `topic` at `seq` (settled then). Whether
    /// to apply an event from `peer` about `topic`: a `Detached` from a node that no longer
    /// masters it for this session (a fenced master waking up) is dropped.
    pub(super) fn rejoin_from(
        &mut self,
        peer: &str,
        sid: SessionId,
        attached: Option<(&str, Option<u64>)>,
        detached: Option<&str>,
    ) -> bool {
        if let Some((topic, seq)) = attached {
            if let Some(s) = self.rejoins.get(sid, topic) {
                if s.last.is_none() {
                    s.last = seq;
                }
            }
        }
        if let Some(topic) = detached {
            if let Some(s) = self.rejoins.get(sid, topic) {
                return s.master == peer;
            }
        }
        true
    }

    /// Origin: answers from a master for session `sid`; the acknowledgement of a `noecho`
    /// publish notes its seq, which the session must not be shown in a backfill.
    pub(super) fn rejoin_acks(&mut self, sid: SessionId, ev: &Event) {
        let Event::Frames(frames) = ev else {
            return;
        };
        let Some(subs) = self.rejoins.subs.get_mut(&sid) else {
            return;
        };
        for c in frames.iter().filter(|c| c.code == 202) {
            let Some(id) = c.id.as_deref() else {
                continue;
            };
            let Some(s) = subs.iter_mut().find(|s| s.noecho.iter().any(|n| n == id)) else {
                continue;
            };
            s.noecho.retain(|n| n != id);
            if let Some(seq) = ack_seq(c.json.get()) {
                if s.last.is_none_or(|l| seq > l) {
                    s.own.push(seq);
                }
            }
        }
    }

    /// Origin: a broadcast from another node is about to reach `sids`; their last seq moves.
    pub(super) fn rejoin_track(&mut self, frame: &Frame, sids: &[SessionId]) {
        if self.rejoins.subs.is_empty() {
            return;
        }
        let Some((topic, seq)) = data_head(frame) else {
            return;
        };
        for sid in sids {
            if let Some(s) = self.rejoins.seen(*sid, &topic) {
                if s.phase == Phase::Live && s.last.is_none_or(|l| l < seq) {
                    s.last = Some(seq);
                    s.own.retain(|o| *o > seq);
                }
            }
        }
    }

    /// A broadcast for local sessions while some are re-joining: the `{data}` for a topic a
    /// session is re-joining is held; the sessions left to deliver to, when some were held.
    pub(super) fn rejoin_hold(
        &mut self,
        frame: &Frame,
        sids: &[SessionId],
    ) -> Option<Vec<SessionId>> {
        let (topic, seq) = data_head(frame)?;
        let mut rest = Vec::new();
        let mut held = false;
        for sid in sids {
            match self.rejoins.seen(*sid, &topic) {
                Some(s) if s.phase != Phase::Live => {
                    s.held.push((seq, frame.clone()));
                    held = true;
                }
                _ => rest.push(*sid),
            }
        }
        held.then_some(rest)
    }

    /// An event for session `sid` while some are re-joining: the answers to requests made on
    /// its behalf are taken out (and acted on), and so are `{data}` for a topic it is
    /// re-joining (held) and a `Detached` from it; what is left for the session, if anything.
    pub(super) fn rejoin_intercept(
        &mut self,
        sid: SessionId,
        ev: SessionEvent,
    ) -> Option<SessionEvent> {
        let frames = match ev {
            SessionEvent::Detached { topic } => {
                let rejoining = self
                    .rejoins
                    .get(sid, &topic)
                    .is_some_and(|s| s.phase != Phase::Live);
                return (!rejoining).then_some(SessionEvent::Detached { topic });
            }
            SessionEvent::Frames(frames) => frames,
            other => return Some(other),
        };
        let mut keep = Vec::with_capacity(frames.len());
        let mut answers = Vec::new();
        for f in frames {
            if let ServerMsg::Ctrl(c) = f.msg() {
                let ours = c.id.as_ref().and_then(|id| {
                    let (s, t) = self.rejoins.waiting.get(id)?;
                    (*s == sid).then(|| (id.clone(), t.clone()))
                });
                if let Some((id, topic)) = ours {
                    self.rejoins.waiting.remove(&id);
                    answers.push((id, topic, c.code));
                    continue;
                }
            }
            if let Some((topic, seq)) = data_head(&f) {
                if let Some(s) = self.rejoins.seen(sid, &topic) {
                    if let Phase::Backfill { got, low, .. } = &mut s.phase {
                        *got += 1;
                        *low = (*low).min(seq);
                    }
                    if s.phase != Phase::Live {
                        s.held.push((seq, f));
                        continue;
                    }
                }
            }
            keep.push(f);
        }
        if !keep.is_empty() {
            self.session_event_now(sid, SessionEvent::Frames(keep));
        }
        for (id, topic, code) in answers {
            self.rejoin_answered(sid, &id, &topic, code);
        }
        None
    }

    /// A new view: the attachments whose master is no longer up are re-joined; those whose
    /// session is gone or no longer attached are forgotten.
    pub(super) fn rejoin_view(&mut self) {
        let Some(view) = self.view.clone() else {
            return;
        };
        let mut start = Vec::new();
        let mut gone = Vec::new();
        for (sid, subs) in &self.rejoins.subs {
            let attached = self.sessions.get(sid).map(|s| &s.session.subs);
            for s in subs.iter().filter(|s| s.phase == Phase::Live) {
                if !attached.is_some_and(|m| m.get(s.topic.as_str()) == Some(&SubState::Attached)) {
                    gone.push((*sid, s.topic.clone()));
                } else if !view.up.iter().any(|n| n.name == s.master) {
                    start.push((*sid, s.topic.clone()));
                }
            }
        }
        for (sid, topic) in gone {
            self.rejoins.take(sid, &topic);
        }
        let until = UnixMillis(now().0 + 2 * self.cfg.cluster.lease_ms + 5_000);
        for (sid, topic) in start {
            tracing::info!(session = %sid, topic = %topic, "its master is down: re-joining it to the new master");
            if let Some(s) = self.rejoins.get(sid, &topic) {
                s.until = until;
            }
            self.rejoin_join(sid, &topic);
        }
        self.rejoins.recount();
    }

    /// Housekeeping: re-joins due for another try; those of sessions that ended are
    /// forgotten, and one still unanswered well past its deadline fails (a safety net: every
    /// request made for it is answered, by its master or by `proxy_expire`).
    pub(super) fn rejoin_tick(&mut self, now: UnixMillis) {
        if self.rejoins.busy == 0 {
            return;
        }
        let (mut due, mut gone, mut late) = (Vec::new(), Vec::new(), Vec::new());
        for (sid, subs) in &self.rejoins.subs {
            let alive = self.sessions.contains_key(sid);
            for s in subs.iter().filter(|s| s.phase != Phase::Live) {
                let key = (*sid, s.topic.clone());
                if !alive {
                    gone.push(key);
                } else if matches!(s.phase, Phase::Retry(at) if at <= now) {
                    due.push(key);
                } else if now.0 > s.until.0 + self.cfg.cluster.link_timeout_ms + 10_000 {
                    late.push(key);
                }
            }
        }
        for (sid, topic) in gone {
            self.rejoins.take(sid, &topic);
        }
        for (sid, topic) in due {
            self.rejoin_join(sid, &topic);
        }
        for (sid, topic) in late {
            log::warn!("cluster: re-join of {topic} for session {sid} never answered");
            self.rejoin_fail(sid, &topic);
        }
        self.run_work();
        self.flush();
    }

    /// Sends the join of `sid` to `topic` under a marker id, where the view places it.
    fn rejoin_join(&mut self, sid: SessionId, topic: &str) {
        let Some(slot) = self.sessions.get(&sid) else {
            self.rejoins.take(sid, topic);
            return;
        };
        let Some((uid, level)) = slot.session.user() else {
            self.rejoins.take(sid, topic);
            return;
        };
        let (ua, bkg, enc) = (
            slot.session.user_agent().to_owned(),
            slot.session.is_background(),
            slot.encoding,
        );
        let master = (self.view.as_ref())
            .and_then(|v| v.master(topic))
            .unwrap_or_default()
            .to_owned();
        let id = self.rejoins.marker(sid, topic);
        let Some(s) = self.rejoins.get(sid, topic) else {
            return;
        };
        s.phase = Phase::Joining(id.clone());
        s.master = master;
        let as_seen = s.as_seen.clone();
        self.rejoins.recount();
        let hdr = ReqHead {
            req: Requester {
                sid,
                uid,
                level,
                enc,
            },
            id: Some(id),
            as_seen,
        };
        let req = TopicRequest::Join {
            hdr,
            create: None,
            set: None,
            get: None,
            ua,
            bkg,
        };
        self.route(topic.to_owned(), req);
    }

    /// Asks for the page of history below `before` (all since the last seq delivered).
    fn rejoin_page(&mut self, sid: SessionId, topic: &str, before: Option<u64>) {
        let limit = self.cfg.topic.max_history;
        let Some(slot) = self.sessions.get(&sid) else {
            self.rejoins.take(sid, topic);
            return;
        };
        let (Some((uid, level)), enc) = (slot.session.user(), slot.encoding) else {
            self.rejoins.take(sid, topic);
            return;
        };
        let id = self.rejoins.marker(sid, topic);
        let Some(s) = self.rejoins.get(sid, topic) else {
            return;
        };
        let since = s.last.unwrap_or(0) + 1;
        s.phase = Phase::Backfill {
            id: id.clone(),
            got: 0,
            low: u64::MAX,
        };
        let hdr = ReqHead {
            req: Requester {
                sid,
                uid,
                level,
                enc,
            },
            id: Some(id),
            as_seen: s.as_seen.clone(),
        };
        let data = GetOptsData {
            since: Some(since as i64),
            before: before.map(|b| b as i64),
            limit: Some(limit as i64),
            ..GetOptsData::default()
        };
        let query = Box::new(GetQuery {
            what: "data".into(),
            data: Some(data),
            ..GetQuery::default()
        });
        self.route(topic.to_owned(), TopicRequest::Get { hdr, query });
    }

    /// The answer (`code`) to a request made on `sid`'s behalf.
    fn rejoin_answered(&mut self, sid: SessionId, id: &str, topic: &str, code: u16) {
        enum Next {
            Page(Option<u64>),
            Done,
            Retry,
            Fail,
        }
        let limit = self.cfg.topic.max_history;
        let t = now();
        let Some(s) = self.rejoins.get(sid, topic) else {
            return;
        };
        let retry = matches!(code, 502..=504) && t < s.until;
        let next = match &s.phase {
            Phase::Joining(m) if m == id => {
                if code < 300 || code == 304 {
                    if s.last.is_some() {
                        Next::Page(None)
                    } else {
                        Next::Done
                    }
                } else if retry {
                    Next::Retry
                } else {
                    Next::Fail
                }
            }
            Phase::Backfill { id: m, got, low } if m == id => {
                if code == 208 && *got >= limit && *low > 1 {
                    Next::Page(Some(*low))
                } else if code == 208 || code == 204 {
                    Next::Done
                } else if retry {
                    Next::Retry
                } else {
                    Next::Fail
                }
            }
            _ => return,
        };
        let parked = match next {
            Next::Page(_) | Next::Done => std::mem::take(&mut s.parked),
            _ => Vec::new(),
        };
        match next {
            Next::Page(before) => self.rejoin_page(sid, topic, before),
            Next::Done => self.rejoin_done(sid, topic),
            Next::Retry => {
                log::debug!("cluster: re-join of {topic} refused ({code}): retrying");
                s.phase = Phase::Retry(UnixMillis(t.0 + 300));
            }
            Next::Fail => {
                log::warn!("cluster: re-join of {topic} for session {sid} failed ({code})");
                self.rejoin_fail(sid, topic);
            }
        }
        self.rejoin_release(parked, topic);
        self.rejoins.recount();
    }

    /// Delivers what was held for a re-joining attachment, in seq order, each seq once and
    /// none the session had already.
    fn rejoin_flush(
        &mut self,
        sid: SessionId,
        last: Option<u64>,
        mut held: Vec<(u64, Frame)>,
        own: &[u64],
    ) -> Option<u64> {
        held.sort_by_key(|(seq, _)| *seq);
        let mut last = last;
        for (seq, f) in held {
            if last.is_some_and(|l| seq <= l) {
                continue;
            }
            last = Some(seq);
            // The session's own `noecho` messages: past them, but not shown.
            if !own.contains(&seq) {
                self.push_frame(sid, f);
            }
        }
        last
    }

    /// The re-join and its backfill are complete: the attachment is live again (and
    /// forgotten when this node masters the topic now).
    fn rejoin_done(&mut self, sid: SessionId, topic: &str) {
        let me = self.view.as_ref().map(|v| v.me.clone());
        let Some(s) = self.rejoins.get(sid, topic) else {
            return;
        };
        let (held, last, own) = (std::mem::take(&mut s.held), s.last, s.own.clone());
        let last = self.rejoin_flush(sid, last, held, &own);
        let Some(s) = self.rejoins.get(sid, topic) else {
            return;
        };
        s.last = last;
        s.phase = Phase::Live;
        tracing::info!(session = %sid, topic = %topic, master = %s.master, "re-joined");
        if me.as_deref() == Some(s.master.as_str()) {
            self.rejoins.take(sid, topic);
        }
        self.rejoins.recount();
    }

    /// The re-join failed for good: what was held is delivered, the session is told the topic
    /// is gone (`{pres term}`) and detached (here and at the master, in case it attached).
    fn rejoin_fail(&mut self, sid: SessionId, topic: &str) {
        let Some(s) = self.rejoins.take(sid, topic) else {
            return;
        };
        self.rejoin_flush(sid, s.last, s.held, &s.own);
        let term = Frame::new(ServerMsg::Pres(Pres {
            topic: "me".into(),
            src: Some(s.as_seen),
            what: "term",
            ..Pres::default()
        }));
        self.push_frame(sid, term);
        let topic = topic.to_owned();
        self.session_event(
            sid,
            SessionEvent::Detached {
                topic: topic.clone(),
            },
        );
        self.route(topic.clone(), TopicRequest::Detach { sid });
        self.rejoin_release(s.parked, &topic);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::server::{Data, Ts};
    use crate::shard::proxy_wire::{from_raw, to_raw, Carried};

    fn data(topic: &str, seq: u64) -> Frame {
        let content = "{\"data\":{\"topic\":\"x\",\"seq\":999}}".to_owned();
        Frame::new(ServerMsg::Data(Data {
            topic: topic.into(),
            from: Some("usrAAA".into()),
            ts: Ts(UnixMillis(1)),
            seq,
            head: None,
            content: serde_json::value::RawValue::from_string(content).unwrap(),
        }))
    }

    #[test]
    fn the_topic_and_seq_of_data_are_read_from_local_and_carried_frames() {
        let local = data("grpX", 7);
        assert_eq!(data_head(&local), Some(("grpX".to_owned(), 7)));
        // Across a link the frame is its JSON under a stand-in message.
        let carried: Carried = from_raw(&to_raw(&Carried::of(&local, false))).unwrap();
        let carried = carried.into_frame();
        assert!(matches!(carried.msg(), ServerMsg::Info(_)));
        assert_eq!(data_head(&carried), Some(("grpX".to_owned(), 7)));
        // Other frames are not data, whatever their content says.
        let pres = Frame::new(ServerMsg::Pres(Pres {
            topic: "grpX".into(),
            what: "on",
            ..Pres::default()
        }));
        assert_eq!(data_head(&pres), None);
        let ctrl = Frame::new(
            crate::proto::Outcome::Accepted
                .ctrl(Some("1"), Some("grpX"), UnixMillis(1))
                .msg(),
        );
        let carried: Carried = from_raw(&to_raw(&Carried::of(&ctrl, false))).unwrap();
        assert_eq!(data_head(&carried.into_frame()), None);
    }

    #[test]
    fn the_seq_of_a_publish_acknowledgement_is_read_from_its_json() {
        let ack = r#"{"ctrl":{"id":"7","topic":"grpX","params":{"seq":42},"code":202,"text":"accepted","ts":"2026-12-02T00:00:00Z"}}"#;
        assert_eq!(super::ack_seq(ack), Some(42));
        assert_eq!(super::ack_seq(r#"{"ctrl":{"id":"7","code":202}}"#), None);
        assert_eq!(super::ack_seq(r#"{"data":{"seq":3}}"#), None);
    }
}
