//! Presence for users' `me` topics across cluster nodes. A user's `me` is loaded on the node of
//! each of the user's sessions (possibly several nodes at once), while the topics that tell
//! `me` about something (a group's `{pres msg}` for members not attached, `on`/`off`/`upd`
//! contact events, a P2P peer's `me` saying it is online) live on their master. So every such
//! per-user notification made here — a `UserPres` frame or a `Contact` request for a `me`
//! topic — is also queued for every other node that is up, and sent at the end of the shard's
//! step as one `NodeMsg::ToMe` per node (the notes of that step, in order). The receiving node
//! hands each to its local `me` of that user, which shows it only if loaded (a user whose
//! `me` is not loaded there has no session there) and never sends it on: notes cross once.
//!
//! Broadcasting instead of tracking where each user's `me` is loaded keeps no cross-node
//! state to go stale (sessions come and go on every node); the cost is one small link message
//! per node and step that made any, which nodes without the user's `me` read and drop.
//! A `UserPres` names the sessions attached to the source topic to skip; on the master those
//! of other nodes are stand-ins ([`SessionId::remote`]), and each node is sent its own
//! sessions' ids. The `{pres}` crosses with its protobuf bytes as well, since any node's `me`
//! may have gRPC sessions.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::proxy_wire::{from_raw, to_raw, Carried};
use crate::cluster::wire::NodeMsg;
use crate::ids::{SessionId, UserId};
use crate::proto::Frame;
use crate::routing::{home_shard, me_topic, ContactEvent, Envelope, TopicRequest};
use crate::shard::ShardCtx;

/// A notification for `me` made on this shard, waiting for the step's end.
#[derive(Debug)]
pub(super) enum MeOut {
    Pres {
        frame: Frame,
        targets: Vec<(UserId, Vec<SessionId>)>,
    },
    Contact {
        user: UserId,
        topic: String,
        ev: ContactEvent,
    },
}

/// One note as it crosses.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Note {
    /// A `{pres}` for the `me` of each user, but for the listed sessions (ids on the
    /// receiving node) of that user.
    Pres {
        frame: Carried,
        targets: Vec<(u64, Vec<u64>)>,
    },
    /// A contact event about `topic` for the `me` of `user`.
    Contact { user: u64, topic: String, ev: Ev },
}

/// `ContactEvent` as it crosses.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Ev {
    On {
        peer: Option<u64>,
        ua: String,
        reply: bool,
    },
    Off {
        ua: String,
    },
    Ua {
        ua: String,
    },
    Upd,
    SubChanged,
    NewContact,
    SubGone,
}

impl Ev {
    fn of(ev: ContactEvent) -> Ev {
        match ev {
            ContactEvent::On { peer, ua, reply } => Ev::On {
                peer: peer.map(|p| p.0),
                ua,
                reply,
            },
            ContactEvent::Off { ua } => Ev::Off { ua },
            ContactEvent::Ua { ua } => Ev::Ua { ua },
            ContactEvent::Upd => Ev::Upd,
            ContactEvent::SubChanged => Ev::SubChanged,
            ContactEvent::NewContact => Ev::NewContact,
            ContactEvent::SubGone => Ev::SubGone,
        }
    }

    fn into_event(self) -> ContactEvent {
        match self {
            Ev::On { peer, ua, reply } => ContactEvent::On {
                peer: peer.map(UserId),
                ua,
                reply,
            },
            Ev::Off { ua } => ContactEvent::Off { ua },
            Ev::Ua { ua } => ContactEvent::Ua { ua },
            Ev::Upd => ContactEvent::Upd,
            Ev::SubChanged => ContactEvent::SubChanged,
            Ev::NewContact => ContactEvent::NewContact,
            Ev::SubGone => ContactEvent::SubGone,
        }
    }
}

impl ShardCtx {
    /// The other nodes that are up (empty standalone or alone).
    fn other_nodes(&self) -> Vec<String> {
        let Some(view) = &self.view else {
            return Vec::new();
        };
        view.up
            .iter()
            .filter(|n| n.name != view.me)
            .map(|n| n.name.clone())
            .collect()
    }

    /// Queues a user-level `{pres}` for the other nodes' `me` topics.
    pub(super) fn me_cross_pres(&mut self, frame: &Frame, targets: &[(UserId, Vec<SessionId>)]) {
        if self.cluster.is_some() && !self.other_nodes().is_empty() {
            self.me_out.push(MeOut::Pres {
                frame: frame.clone(),
                targets: targets.to_vec(),
            });
        }
    }

    /// Queues `req` for `topic` for the other nodes when it is a contact event for a `me`.
    pub(super) fn me_cross_request(&mut self, topic: &str, req: &TopicRequest) {
        let TopicRequest::Contact { topic: about, ev } = req else {
            return;
        };
        let Some(user) = UserId::parse_usr(topic) else {
            return;
        };
        if self.cluster.is_some() && !self.other_nodes().is_empty() {
            self.me_out.push(MeOut::Contact {
                user,
                topic: about.clone(),
                ev: ev.clone(),
            });
        }
    }

    /// Sends the queued notes: one message per other node that is up.
    pub(super) fn me_flush(&mut self) {
        if self.me_out.is_empty() {
            return;
        }
        let out = std::mem::take(&mut self.me_out);
        let Some(node) = self.cluster.clone() else {
            return;
        };
        // Each frame crosses as the same JSON and protobuf bytes to every node.
        let carried: Vec<Option<Carried>> = out
            .iter()
            .map(|o| match o {
                MeOut::Pres { frame, .. } => Some(Carried::of(frame, true)),
                MeOut::Contact { .. } => None,
            })
            .collect();
        for peer in self.other_nodes() {
            let slot = node.slot(&peer);
            // A stand-in of one of `peer`'s sessions, as that session's own id there.
            let theirs = |sid: &SessionId| {
                sid.remote_parts()
                    .filter(|(s, _)| Some(*s) == slot)
                    .map(|(_, o)| o.0)
            };
            let notes: Vec<Note> = out
                .iter()
                .zip(&carried)
                .filter_map(|(o, c)| match o {
                    MeOut::Pres { targets, .. } => Some(Note::Pres {
                        frame: c.clone()?,
                        targets: targets
                            .iter()
                            .map(|(uid, skip)| (uid.0, skip.iter().filter_map(theirs).collect()))
                            .collect(),
                    }),
                    MeOut::Contact { user, topic, ev } => Some(Note::Contact {
                        user: user.0,
                        topic: topic.clone(),
                        ev: Ev::of(ev.clone()),
                    }),
                })
                .collect();
            let msg = NodeMsg::ToMe {
                notes: to_raw(&notes),
            };
            if let Err(e) = node.links().send(&peer, msg) {
                log::debug!("cluster: cannot send presence for `me` to node {peer}: {e:?}");
            }
        }
    }

    /// Notes for `me` topics from node `peer`: each to the local `me` of its user (shown
    /// only where loaded), never sent on.
    pub(super) fn me_notes_from(&mut self, peer: &str, notes: &RawValue) {
        let Some(notes) = from_raw::<Vec<Note>>(notes) else {
            log::warn!("cluster: unreadable presence for `me` from {peer}");
            return;
        };
        for note in notes {
            match note {
                Note::Pres { frame, targets } => {
                    let targets = targets
                        .into_iter()
                        .map(|(u, skip)| (UserId(u), skip.into_iter().map(SessionId).collect()))
                        .collect();
                    self.user_pres_here(frame.into_frame(), targets);
                }
                Note::Contact { user, topic, ev } => {
                    let me = me_topic(UserId(user));
                    let home = home_shard(&me, self.n_shards);
                    let req = TopicRequest::Contact {
                        topic,
                        ev: ev.into_event(),
                    };
                    self.send(home, Envelope::Topic { topic: me, req });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::server::Pres;
    use crate::proto::{Encoding, ServerMsg};

    #[test]
    fn notes_cross_with_their_events_and_both_encodings() {
        let frame = Frame::new(ServerMsg::Pres(Pres {
            topic: "me".into(),
            src: Some("grpX".into()),
            what: "msg",
            seq: 3,
            ..Pres::default()
        }));
        let notes = vec![
            Note::Pres {
                frame: Carried::of(&frame, true),
                targets: vec![(7, vec![11])],
            },
            Note::Contact {
                user: 7,
                topic: "grpX".into(),
                ev: Ev::of(ContactEvent::On {
                    peer: Some(UserId(9)),
                    ua: "ua".into(),
                    reply: true,
                }),
            },
        ];
        let back: Vec<Note> = from_raw(&to_raw(&notes)).unwrap();
        let [Note::Pres { frame: c, targets }, Note::Contact { user, topic, ev }] = &back[..]
        else {
            panic!("not the notes sent: {back:?}")
        };
        assert_eq!(targets, &[(7, vec![11])]);
        let f = c.clone().into_frame();
        assert_eq!(f.json(), frame.json());
        assert_eq!(
            f.encoded_if_done(Encoding::Protobuf),
            Some(frame.encoded(Encoding::Protobuf))
        );
        assert_eq!((*user, topic.as_str()), (7, "grpX"));
        let Ev::On { peer, ua, reply } = ev else {
            panic!("not on: {ev:?}")
        };
        assert_eq!((*peer, ua.as_str(), *reply), (Some(9), "ua", true));
    }
}
