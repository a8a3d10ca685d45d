//! `fnd`: tag search. A session sets its query with `{set fnd desc:{public:"…"}}` and reads
//! the results with `{get fnd sub}`: users and groups carrying the query's tags (AND of OR
//! groups, see [`crate::topic::tags::parse_query`]), with their public descriptions, most
//! matched tags first. Suspended and deleted users never appear (root sees them too).

use crate::access::{AccessMode, AuthLevel};
use crate::ids::UserId;
use crate::proto::server::{raw, AccessOut, SubOut, Ts};
use crate::routing::Requester;
use crate::store::UserState;
use crate::topic::tags::{parse_query, query_tags, satisfies};
use crate::topic::{Topic, TopicCx};

impl Topic {
    /// The results of the session's current query as `{meta sub}` items.
    pub(crate) fn fnd_results(&self, req: &Requester, cx: &mut TopicCx<'_>) -> Vec<SubOut> {
        let Some(q) = self.queries.get(&req.sid) else {
            return Vec::new();
        };
        let query = parse_query(q);
        if query.is_empty() {
            return Vec::new();
        }
        let tags = query_tags(&query);
        let found = match cx
            .store
            .find_tags(&tags, cx.limits.max_results.saturating_mul(4))
        {
            Ok(f) => f,
            Err(e) => {
                log::error!("fnd: search failed: {e}");
                return Vec::new();
            }
        };
        let root = req.level == AuthLevel::Root;
        let mut out = Vec::new();
        for (owner, matched) in found {
            if out.len() >= cx.limits.max_results {
                break;
            }
            if !satisfies(&query, &matched) {
                continue;
            }
            if let Some(uid) = UserId::parse_usr(&owner) {
                if uid == req.uid {
                    continue;
                }
                let Ok(Some(user)) = cx.store.user(uid) else {
                    continue;
                };
                if user.state != UserState::Ok && !root {
                    continue;
                }
                let mode = match req.level {
                    AuthLevel::Anon => user.access.anon,
                    _ => user.access.auth,
                };
                out.push(SubOut {
                    user: Some(owner),
                    updated: Some(Ts(user.updated)),
                    acs: Some(mode_only(mode)),
                    public: user.public.as_deref().map(raw),
                    trusted: user.trusted.as_deref().map(raw),
                    ..SubOut::default()
                });
            } else if let Some(body) = owner.strip_prefix("grp").map(str::to_owned) {
                let Ok(Some(rec)) = cx.store.topic(&owner) else {
                    continue;
                };
                let subcnt = cx
                    .store
                    .subs_of_topic(&owner)
                    .map(|v| {
                        v.iter()
                            .filter(|s| {
                                s.deleted.is_none()
                                    && !(rec.is_chan && s.given == AccessMode::CHAN_READER)
                            })
                            .count()
                    })
                    .unwrap_or(0);
                let (name, mode) = if rec.is_chan {
                    (format!("chn{body}"), AccessMode::CHAN_READER)
                } else {
                    let m = match req.level {
                        AuthLevel::Anon => rec.access.anon,
                        _ => rec.access.auth,
                    };
                    (owner, m)
                };
                out.push(SubOut {
                    topic: Some(name),
                    updated: Some(Ts(rec.updated)),
                    acs: Some(mode_only(mode)),
                    public: rec.public.as_deref().map(raw),
                    trusted: rec.trusted.as_deref().map(raw),
                    subcnt: subcnt as u64,
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
