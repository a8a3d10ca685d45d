//! What the parent and its worker processes say to each other, one JSON object per line: the
//! spec a worker starts from (first line on its stdin), commands (stdin) and events (stdout).

use serde::{Deserialize, Serialize};

use crate::cli::{TargetKind, TopicKind};

/// Where and what the target is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetSpec {
    pub kind: TargetKind,
    /// HOST:PORT of the WebSocket / HTTP listener.
    pub addr: String,
    /// Prefix for NATS subjects / MQTT topics, unique per run.
    pub run_id: String,
    /// Tinode targets: HOST:PORT of the gRPC listener when the sessions use gRPC
    /// (`--transport grpc`); `None` = WebSocket.
    #[serde(default)]
    pub grpc_addr: Option<String>,
}

/// A user the harness logs in as. For NATS and MQTT only `login` is used (it names the
/// personal subject / topic and the client id).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Account {
    pub login: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub token: String,
}

/// A worker's part of the work.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    /// W0: `conns` echo connections.
    Echo { conns: usize, echo_path: String },
    /// W1: idle sessions over these accounts (cycled).
    Idle {
        accounts: Vec<Account>,
        concurrency: usize,
    },
    /// W2: arrivals logging in as these accounts (round robin).
    Arrivals {
        accounts: Vec<Account>,
        /// Log in with the account's password (`basic`: a bcrypt check on the server) instead
        /// of its token.
        #[serde(default)]
        basic: bool,
    },
    /// W3: both members of these pairs; `first_sender` numbers their senders globally.
    Pairs {
        pairs: Vec<(Account, Account)>,
        kind: TopicKind,
        first_sender: u32,
        /// W7 placement: the HOST:PORT each pair's two sides connect to, by pair (empty: the
        /// target's).
        #[serde(default)]
        side_addrs: Vec<(String, String)>,
    },
    /// W4/W6: subscribers of the groups in `topics`, and the publisher if this worker has it.
    Fanout {
        /// The groups; subscriber i of the run (`first` + its index here) joins group i mod
        /// their count, the publisher joins them all and publishes to them in turn.
        topics: Vec<String>,
        /// The run-wide index of this worker's first subscriber.
        #[serde(default)]
        first: usize,
        publisher: Option<Account>,
        subscribers: Vec<Account>,
        /// W6 placement: the HOST:PORT subscriber `i` connects to (empty: the target's).
        #[serde(default)]
        sub_addrs: Vec<String>,
        /// W6 placement: the publisher's HOST:PORT (`None`: the target's).
        #[serde(default)]
        pub_addr: Option<String>,
    },
    /// W5: long-polling sessions subscribed to `topic` (Tinode) or plain HTTP requesters
    /// (http-sol), and the WebSocket publisher if this worker has it.
    LongPoll {
        topic: String,
        publisher: Option<Account>,
        sessions: Vec<Account>,
    },
    /// Soak: idle sessions, each with the group it joins (if any), and this worker's
    /// publishers (account, group, global sender id).
    Soak {
        members: Vec<(Account, Option<String>)>,
        publishers: Vec<(Account, String, u32)>,
        concurrency: usize,
    },
    /// Churn: clients cycling through the stages of a session's life, dropping abruptly.
    Churn {
        accounts: Vec<Account>,
        groups: Vec<String>,
        concurrency: usize,
        hold_ms: u64,
        lp: bool,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerSpec {
    pub index: usize,
    pub workers: usize,
    pub target: TargetSpec,
    pub src_ips: Vec<String>,
    pub payload: usize,
    pub spin: bool,
    pub role: Role,
}

/// One measurement point.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunCmd {
    /// This worker's share of the offered rate (sends or arrivals per second).
    pub rate: f64,
    /// First scheduled send (warm-up starts here).
    pub start_ns: u64,
    /// Measurement window: sends scheduled in [from_ns, to_ns) count.
    pub from_ns: u64,
    pub to_ns: u64,
    /// Longest time to keep receiving after `to_ns`.
    pub drain_ms: u64,
    /// Offset of this worker's schedule within the global one (spreads workers' sends).
    pub phase_ns: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Cmd {
    /// Open sessions until this worker holds `sessions` (W1).
    Grow {
        sessions: usize,
    },
    Run(RunCmd),
    Stop,
}

/// Counters and histograms of one worker for one point.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkerStats {
    /// Sends (or arrivals) scheduled inside the window that went out.
    pub sent: u64,
    pub sent_total: u64,
    /// Deliveries (or established sessions) whose scheduled time is inside the window.
    pub recv: u64,
    pub recv_total: u64,
    /// `{ctrl 202}` acks inside the window.
    pub acks: u64,
    pub errors: u64,
    pub dups: u64,
    /// Missing sequence numbers seen by receivers (a message after a hole).
    pub gaps: u64,
    pub disconnects: u64,
    pub reconnects: u64,
    /// Latency histogram (ns), HdrHistogram V2 + base64.
    pub lat: String,
    pub ack_lat: String,
    pub error_samples: Vec<String>,
    /// In-window deliveries per 250 ms tick of receipt time, from `from_ns`.
    pub ticks: Vec<u64>,
    /// Sessions this worker holds.
    pub held: usize,
    /// Workload-specific counters (churn: cycles per stage).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub extra: serde_json::Value,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Ev {
    Progress {
        phase: String,
        done: u64,
        total: u64,
        sent: u64,
        recv: u64,
        errors: u64,
    },
    /// Set-up (or a Grow) finished.
    Ready(WorkerStats),
    Done(WorkerStats),
    /// The target does not offer what this workload needs.
    Unsupported {
        msg: String,
    },
    Fatal {
        msg: String,
    },
}
