//! Shared in-memory state: accounts by login, and topics with their attached connections.
//!
//! The ordinary tokio layout: a `Mutex<HashMap>` per table, one `Mutex` per topic. A
//! connection holds an `Arc<Topic>` for every topic it is attached to, so publishing locks only
//! that topic; the topic table is locked only to find or create a topic.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::proto::DataOut;

/// The sending side of one connection, shared by every topic it is attached to.
pub struct Conn {
    pub id: u64,
    /// Frames for the connection's task to write; bounded, see [`Conn::push`].
    tx: mpsc::Sender<Message>,
    /// Notified when the connection overflowed and must end.
    pub kill: Notify,
}

impl Conn {
    /// Queues a frame. A full queue ends the connection (coretalk's slow-consumer policy: the
    /// client reconnects instead of holding memory or slowing the topic).
    pub fn push(&self, frame: Utf8Bytes) {
        match self.tx.try_send(Message::Text(frame)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.kill.notify_one(),
            // The connection is ending; it detaches itself.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// A topic's kind decides how readers see its name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Group,
    /// Two users (sorted); each sees the topic under the other's `usr…` name.
    P2p(u64, u64),
}

struct Reader {
    uid: u64,
    conn: Arc<Conn>,
}

struct TopicState {
    seq: u64,
    readers: HashMap<u64, Reader>,
}

pub struct Topic {
    pub kind: Kind,
    /// The name readers of a group see.
    name: String,
    state: Mutex<TopicState>,
}

impl Topic {
    fn new(kind: Kind, name: String) -> Self {
        Topic {
            kind,
            name,
            state: Mutex::new(TopicState {
                seq: 0,
                readers: HashMap::new(),
            }),
        }
    }

    /// The group name (for p2p, the internal key).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> MutexGuard<'_, TopicState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn attach(&self, uid: u64, conn: &Arc<Conn>) {
        self.lock().readers.insert(
            conn.id,
            Reader {
                uid,
                conn: conn.clone(),
            },
        );
    }

    pub fn detach(&self, conn_id: u64) {
        self.lock().readers.remove(&conn_id);
    }

    /// Assigns the next seq, encodes the `{data}` once per distinct view (one for a group, one
    /// per side for p2p) and queues it on every attached reader, except `skip`. Returns the seq.
    pub fn publish(&self, mut msg: DataOut<'_>, skip: Option<u64>) -> u64 {
        let mut st = self.lock();
        st.seq += 1;
        msg.seq = st.seq;
        match self.kind {
            Kind::Group => {
                let frame = Utf8Bytes::from(msg.encode(&self.name));
                for (id, r) in &st.readers {
                    if Some(*id) != skip {
                        r.conn.push(frame.clone());
                    }
                }
            }
            Kind::P2p(a, b) => {
                // A reader who is `a` sees the topic as `b`, and the other way round.
                let mut as_b = None;
                let mut as_a = None;
                for (id, r) in &st.readers {
                    if Some(*id) == skip {
                        continue;
                    }
                    let (slot, other) = if r.uid == a {
                        (&mut as_b, b)
                    } else {
                        (&mut as_a, a)
                    };
                    let frame = slot.get_or_insert_with(|| {
                        Utf8Bytes::from(msg.encode(&crate::proto::user_name(other)))
                    });
                    r.conn.push(frame.clone());
                }
            }
        }
        st.seq
    }
}

/// Everything shared between connections.
pub struct Hub {
    next_conn: AtomicU64,
    outbound_frames: usize,
    logins: Mutex<HashMap<String, u64>>,
    /// By internal name: `grp…` for groups, `p2p` + both ids for p2p.
    topics: Mutex<HashMap<String, Arc<Topic>>>,
}

impl Hub {
    pub fn new(outbound_frames: usize) -> Self {
        Hub {
            next_conn: AtomicU64::new(1),
            outbound_frames,
            logins: Mutex::new(HashMap::new()),
            topics: Mutex::new(HashMap::new()),
        }
    }

    /// A new connection's sending side and the receiver its task drains.
    pub fn connect(&self) -> (Arc<Conn>, mpsc::Receiver<Message>) {
        let (tx, rx) = mpsc::channel(self.outbound_frames);
        let conn = Conn {
            id: self.next_conn.fetch_add(1, Ordering::Relaxed),
            tx,
            kill: Notify::new(),
        };
        (Arc::new(conn), rx)
    }

    /// Registers a new account under `login`; `None` if the login is taken.
    pub fn create_account(&self, login: Option<String>) -> Option<u64> {
        let uid = loop {
            let uid = rand::random::<u64>();
            if uid != 0 {
                break uid;
            }
        };
        if let Some(login) = login {
            let mut logins = self.logins.lock().unwrap_or_else(|e| e.into_inner());
            if logins.contains_key(&login) {
                return None;
            }
            logins.insert(login, uid);
        }
        Some(uid)
    }

    /// The account of a `basic` login. Passwords are not checked, and an unknown login gets a
    /// new account, so a harness can log in without creating accounts first.
    pub fn login(&self, login: String) -> u64 {
        let mut logins = self.logins.lock().unwrap_or_else(|e| e.into_inner());
        *logins.entry(login).or_insert_with(|| loop {
            let uid = rand::random::<u64>();
            if uid != 0 {
                break uid;
            }
        })
    }

    fn topics(&self) -> MutexGuard<'_, HashMap<String, Arc<Topic>>> {
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a group with a fresh name.
    pub fn create_group(&self) -> Arc<Topic> {
        let mut topics = self.topics();
        loop {
            let name = crate::proto::group_name();
            if let Entry::Vacant(slot) = topics.entry(name) {
                let t = Arc::new(Topic::new(Kind::Group, slot.key().clone()));
                slot.insert(t.clone());
                return t;
            }
        }
    }

    /// An existing group.
    pub fn group(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics().get(name).cloned()
    }

    /// The p2p topic of two users, created on first use.
    pub fn p2p(&self, x: u64, y: u64) -> Arc<Topic> {
        let (a, b) = if x <= y { (x, y) } else { (y, x) };
        let key = format!("p2p{a:016x}{b:016x}");
        self.topics()
            .entry(key)
            .or_insert_with_key(|k| Arc::new(Topic::new(Kind::P2p(a, b), k.clone())))
            .clone()
    }
}
