//! `fnd`: tag search. A session sets its query with `{set fnd desc:{public:"…"}}` (or the user
//! stores one with `{set fnd desc:{private:"…"}}`, used by sessions without their own) and reads
//! the results with `{get fnd sub}`: users and groups carrying the query's tags (AND of OR
//! groups, see [`crate::topic::tags::parse_query`]), with their public descriptions, most
//! matched tags first. Suspended and deleted users never appear (root sees them too).

use crate::access::{AccessMode, AuthLevel};
use crate::ids::SessionId;
use crate::proto::server::{raw, AccessOut, SubOut, Ts};
use crate::routing::Requester;
use crate::store::UserState;
use crate::topic::tags::{parse_query, satisfies};
use crate::topic::{Topic, TopicCx};

impl Topic {
    /// The query of `sid`: its own (`{set fnd desc:{public}}`, per session) has priority over
    /// the user's stored `private` (tinode-protocol.md §3.9), which counts only when it is a
    /// JSON string.
    pub(crate) fn fnd_query(&self, sid: SessionId) -> Option<String> {
        let fnd = self.fnd.as_deref()?;
        match fnd.queries.get(&sid) {
            Some(q) if !q.is_empty() => Some(q.clone()),
            _ => fnd
                .private
                .as_deref()
                .and_then(|p| serde_json::from_str::<String>(p).ok())
                .filter(|q| !q.is_empty()),
        }
    }

    /// The results of the session's current query as `{meta sub}` items, from the search
    /// fetched for this step (`Topic::get_reads`).
    pub(crate) fn fnd_results(&self, req: &Requester, cx: &mut TopicCx<'_>) -> Vec<SubOut> {
        let Some(q) = self.fnd_query(req.sid) else {
            return Vec::new();
        };
        let query = parse_query(&q);
        if query.is_empty() {
            return Vec::new();
        }
        let found = match cx.fetched_search() {
            Ok(f) => f,
            Err(e) => {
                log::error!("fnd: search failed: {e}");
                return Vec::new();
            }
        };
        let root = req.level == AuthLevel::Root;
        let mut out = Vec::new();
        for f in found {
            if out.len() >= cx.limits.max_results {
                break;
            }
            if !satisfies(&query, &f.tags) {
                continue;
            }
            if let Some(user) = f.user {
                if user.id == req.uid || (user.state != UserState::Ok && !root) {
                    continue;
                }
                let mode = match req.level {
                    AuthLevel::Anon => user.access.anon,
                    _ => user.access.auth,
                };
                out.push(SubOut {
                    user: Some(f.owner),
                    updated: Some(Ts(user.updated)),
                    acs: Some(mode_only(mode)),
                    public: user.public.as_deref().map(raw),
                    trusted: user.trusted.as_deref().map(raw),
                    ..SubOut::default()
                });
            } else if let (Some(rec), Some(body)) = (f.topic, f.owner.strip_prefix("grp")) {
                let (name, mode) = if rec.is_chan {
                    (format!("chn{body}"), AccessMode::CHAN_READER)
                } else {
                    let m = match req.level {
                        AuthLevel::Anon => rec.access.anon,
                        _ => rec.access.auth,
                    };
                    (f.owner.clone(), m)
                };
                out.push(SubOut {
                    topic: Some(name),
                    updated: Some(Ts(rec.updated)),
                    acs: Some(mode_only(mode)),
                    public: rec.public.as_deref().map(raw),
                    trusted: rec.trusted.as_deref().map(raw),
                    subcnt: f.members as u64,
                    ..SubOut::default()
                });
            }
        }
        out
    }
}

/// `acs` of a search result: the mode the caller would get.
fn mode_only(m: AccessMode) -> AccessOut {
    AccessOut {
        want: String::new(),
        given: String::new(),
        mode: m.to_string(),
    }
}
