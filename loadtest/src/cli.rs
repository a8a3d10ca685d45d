//! The command line: one clap subcommand per workload (W0–W6), the options every workload
//! shares, `compare`, `smoke`, and the hidden helper subcommands (`worker`, `http-sol`,
//! `ws-sol`).
//!
//! Nothing here does work; `main.rs` dispatches on the parsed value.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

#[derive(Parser, Debug)]
#[command(
    name = "coretalk-load",
    version,
    about = "Open-loop load harness for coretalk and its peers (workloads W0-W6 of shared/design/performance.md)",
    long_about = "Open-loop load harness for coretalk and its peers.\n\n\
Workloads:\n  \
W0  raw WebSocket echo (100 connections, 20 B / 1 KB)\n  \
W1  idle authenticated sessions ramp (hi, login, sub me); bytes per session\n  \
W2  connect + token login + sub me at open-loop arrival rates\n  \
W3  1:1 messages in many p2p topics (or 2-member groups), offered-load sweep\n  \
W4  one group topic, N subscribers, one publisher: deliveries/s\n  \
W5  long polling (POST /v0/channels/lp), against a plain HTTP speed-of-light peer\n  \
W6  cross-core: W4 with --shards 1 vs 2, mesh envelopes per message, efficiency;\n      \
or --placement local,remote,split: subscribers on the topic's shard or the other\n  \
soak   19,000 idle sessions for 30 min under a light group load: RSS slope, idle CPU\n  \
churn  abrupt disconnects at every point of a session's life: tables empty afterwards\n\n\
Each run writes loadtest/results/<timestamp>-<workload>-<target>/ (result.json, plots)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// W0: raw WebSocket echo.
    #[command(alias = "W0")]
    W0(W0Args),
    /// W1: idle authenticated sessions, ramped; server RSS per session.
    #[command(alias = "W1")]
    W1(W1Args),
    /// W2: session establishment (connect, hi, token login, sub me) at open-loop arrival rates.
    #[command(alias = "W2")]
    W2(W2Args),
    /// W3: 1:1 messages in many p2p topics, offered-load sweep.
    #[command(alias = "W3")]
    W3(W3Args),
    /// W4: one group topic with N subscribers and one publisher.
    #[command(alias = "W4")]
    W4(W4Args),
    /// W5: long polling deliveries (Tinode long polling, or the plain-HTTP speed of light).
    #[command(alias = "W5")]
    W5(W5Args),
    /// W6: cross-core fan-out: W4 with 1 vs 2 shards, envelopes per message, efficiency.
    #[command(alias = "W6")]
    W6(W6Args),
    /// W7: the cluster: W4 and W3 over 3 nodes on PostgreSQL vs one node (--pg URL).
    #[command(alias = "W7")]
    W7(W7Args),
    /// Soak: N idle authenticated sessions held for minutes under a light group load; server
    /// RSS and CPU over time, RSS slope, lost deliveries.
    Soak(SoakArgs),
    /// Churn: clients that drop abruptly at every point of a session's life; afterwards the
    /// server's session and topic tables must be empty and its RSS back near the baseline.
    Churn(ChurnArgs),
    /// Runs one workload against coretalk and then each peer; prints coretalk/peer ratios.
    Compare(CompareArgs),
    /// Runs every workload for ~2 s with tiny sizes against the given targets (a sanity check).
    Smoke(SmokeArgs),
    /// Internal: a client worker process driven over stdin/stdout JSON lines.
    #[command(hide = true)]
    Worker,
    /// Internal: a trivial HTTP/1.1 responder, the long-polling speed-of-light peer.
    #[command(hide = true, name = "http-sol")]
    HttpSol {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// Answer `Connection: close` and close after each response (one request per
        /// connection, as coretalk's long polling answers).
        #[arg(long)]
        close: bool,
    },
    /// Internal: a minimal epoll WebSocket server answering the harness's Tinode frames, the
    /// W1-W4 speed-of-light peer.
    #[command(hide = true, name = "ws-sol")]
    WsSol {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
}

/// What is being measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// coretalk from this workspace (Tinode JSON over WebSocket).
    Coretalk,
    /// The tokio + tokio-tungstenite baseline (benches/baseline, same Tinode subset).
    Baseline,
    /// nats-server with a WebSocket listener (NATS text protocol).
    Nats,
    /// mosquitto with a WebSocket listener (MQTT 3.1.1).
    Mosquitto,
    /// A trivial HTTP responder inside this harness (W5 speed of light).
    HttpSol,
    /// A minimal WebSocket server inside this harness answering the harness's Tinode frames
    /// (W1-W4 speed of light).
    WsSol,
}

impl TargetKind {
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Coretalk => "coretalk",
            TargetKind::Baseline => "baseline",
            TargetKind::Nats => "nats",
            TargetKind::Mosquitto => "mosquitto",
            TargetKind::HttpSol => "http-sol",
            TargetKind::WsSol => "ws-sol",
        }
    }
    pub fn parse(s: &str) -> Option<TargetKind> {
        <TargetKind as ValueEnum>::from_str(s.trim(), true).ok()
    }
    /// Speaks the Tinode JSON subset.
    pub fn is_tinode(self) -> bool {
        matches!(
            self,
            TargetKind::Coretalk | TargetKind::Baseline | TargetKind::WsSol
        )
    }
    /// A speed-of-light peer of the harness's own: ratios over it are coretalk's cost over
    /// the speed of light, not a comparison with another server.
    pub fn is_sol(self) -> bool {
        matches!(self, TargetKind::HttpSol | TargetKind::WsSol)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// WebSocket.
    Ws,
    /// HTTP long polling (W5 only).
    Lp,
    /// gRPC, one `pbx.Node/MessageLoop` stream per session (coretalk; W3 and W4).
    Grpc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopicKind {
    /// One p2p topic per pair (`sub usr<peer>`).
    P2p,
    /// One 2-member group per pair (works before p2p lands in the server).
    Grp,
}

/// Where W6 puts the group's subscribers (`--placement`), the group being homed on shard 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Every subscriber on shard 0, the topic's home: deliveries stay on the shard.
    Local,
    /// Every subscriber on shard 1: every delivery crosses the mesh.
    Remote,
    /// Subscribers alternate between shard 0 and shard 1.
    Split,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::Local => "local",
            Placement::Remote => "remote",
            Placement::Split => "split",
        }
    }

    /// The shard subscriber `i` connects to.
    pub fn shard_of(self, i: usize) -> usize {
        match self {
            Placement::Local => 0,
            Placement::Remote => 1,
            Placement::Split => i % 2,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreMode {
    /// `store.durable = false`: group commits without fsync (benchmarks only).
    Memory,
    /// `store.durable = true`: one fsync per group commit.
    Durable,
}

/// Options every workload takes.
#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct Common {
    /// Target kind: coretalk, baseline, nats, mosquitto, http-sol (W5), ws-sol (W1-W4).
    #[arg(long, value_enum, default_value = "coretalk")]
    pub target: TargetKind,
    /// Attach to a running server at HOST:PORT instead of starting one.
    #[arg(long, value_name = "HOST:PORT")]
    pub attach: Option<String>,
    /// With --attach: the server's pid, for CPU and RSS sampling (found from the port if omitted).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// coretalk binary (default: target/release/coretalk of this workspace, else next to this binary).
    #[arg(long, value_name = "PATH")]
    pub server_bin: Option<PathBuf>,
    /// coretalk-baseline binary (default: like --server-bin).
    #[arg(long, value_name = "PATH")]
    pub baseline_bin: Option<PathBuf>,
    /// Shards passed to coretalk when the harness starts it.
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// Cores the server is pinned to (taskset -c list).
    #[arg(long, default_value = "0")]
    pub server_cores: String,
    /// Cores the client worker processes are pinned to (taskset -c list).
    #[arg(long, default_value = "1")]
    pub client_cores: String,
    /// Client worker processes (default: enough for <= 15,000 connections each).
    #[arg(long)]
    pub clients: Option<usize>,
    /// Measurement time per point, seconds.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// Warm-up before each measurement, seconds (load is offered, nothing is recorded).
    #[arg(long, default_value_t = 5.0)]
    pub warmup: f64,
    /// Transport: ws (W0-W4, W6), lp (W5) or grpc (W3, W4 on coretalk).
    #[arg(long, value_enum)]
    pub transport: Option<Transport>,
    /// With --attach and --transport grpc: the server's gRPC HOST:PORT (default: the
    /// attached host, port 16060).
    #[arg(long, value_name = "HOST:PORT")]
    pub attach_grpc: Option<String>,
    /// coretalk store mode when the harness starts it.
    #[arg(long, value_enum, default_value = "memory")]
    pub store: StoreMode,
    /// Extra coretalk configuration (TOML) when the harness starts it: merged over the
    /// harness's own settings, section by section, so a tuning page's knob can be set for a run.
    #[arg(long, value_name = "FILE")]
    pub server_config: Option<PathBuf>,
    /// Where result directories go (default: loadtest/results of this workspace).
    #[arg(long, value_name = "DIR")]
    pub results_dir: Option<PathBuf>,
    /// Do not write a results directory.
    #[arg(long)]
    pub no_results: bool,
    /// Busy-wait (yielding) for the last millisecond before each scheduled send; off = 1 ms
    /// timer granularity (bursty sends; latency still counts from the scheduled time).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub spin: bool,
    /// Seconds receivers keep draining after the last scheduled send.
    #[arg(long, default_value_t = 3.0)]
    pub drain: f64,
    /// Tiny sizes, ~2 s per point (what `smoke` uses).
    #[arg(long)]
    pub smoke: bool,
    /// `compare` only: the targets to run, in order (coretalk first).
    #[arg(long, default_value = "coretalk,baseline,nats,mosquitto")]
    pub peers: String,
}

#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct W0Args {
    #[command(flatten)]
    pub common: Common,
    /// Connections.
    #[arg(long, default_value_t = 100)]
    pub connections: usize,
    /// Offered load, echoes per second over all connections (comma list = sweep).
    #[arg(long, default_value = "20000", value_delimiter = ',')]
    pub rate: Vec<f64>,
    /// Payload bytes per message (comma list: one run per size).
    #[arg(long, default_value = "20,1024", value_delimiter = ',')]
    pub payload: Vec<usize>,
    /// Echo path on Tinode-speaking targets.
    #[arg(long, default_value = "/echo")]
    pub echo_path: String,
}

#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct W1Args {
    #[command(flatten)]
    pub common: Common,
    /// Session counts of the ramp steps.
    #[arg(long, default_value = "1000,5000,10000,19000", value_delimiter = ',')]
    pub steps: Vec<usize>,
    /// Seconds to wait at each step before sampling RSS.
    #[arg(long, default_value_t = 3.0)]
    pub settle: f64,
    /// Accounts to create (sessions cycle over them; default one per session).
    #[arg(long)]
    pub accounts: Option<usize>,
    /// Concurrent session set-ups per worker.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
}

#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct W2Args {
    #[command(flatten)]
    pub common: Common,
    /// Arrival rates, new sessions per second (comma list = sweep).
    #[arg(long, default_value = "1000,2000,5000", value_delimiter = ',')]
    pub rate: Vec<f64>,
    /// Accounts the arrivals log in as (round robin).
    #[arg(long, default_value_t = 1000)]
    pub accounts: usize,
    /// How arrivals log in: `token` (an HMAC check) or `basic` (login and password: a bcrypt
    /// check at the server's `auth.bcrypt_cost`, which the accounts were created with;
    /// Tinode targets only).
    #[arg(long, value_enum, default_value = "token")]
    pub login: LoginScheme,
}

/// `--login` of W2.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoginScheme {
    Token,
    Basic,
}

#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct W3Args {
    #[command(flatten)]
    pub common: Common,
    /// Pairs of sessions (topics).
    #[arg(long, default_value_t = 5000)]
    pub pairs: usize,
    /// Offered load, messages per second over all senders (comma list = sweep).
    #[arg(long, default_value = "5000,10000,20000,40000", value_delimiter = ',')]
    pub rate: Vec<f64>,
    /// Payload bytes (content).
    #[arg(long, default_value_t = 100)]
    pub payload: usize,
    /// Topic per pair: p2p, or a 2-member group.
    #[arg(long, value_enum, default_value = "p2p")]
    pub topic_kind: TopicKind,
}

#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct W4Args {
    #[command(flatten)]
    pub common: Common,
    /// Subscribers of the group topic.
    #[arg(long, default_value_t = 128)]
    pub subscribers: usize,
    /// Offered load, publishes per second (comma list = sweep); deliveries = rate x subscribers
    /// / groups.
    #[arg(long, default_value = "1000", value_delimiter = ',')]
    pub rate: Vec<f64>,
    /// Payload bytes (content).
    #[arg(long, default_value_t = 100)]
    pub payload: usize,
    /// Groups the subscribers are spread over (subscriber i joins group i mod G); the
    /// publisher sends to them in turn, so each gets rate / G. A divisor of --subscribers.
    #[arg(long, default_value_t = 1)]
    #[serde(default = "one")]
    pub groups: usize,
}

fn one() -> usize {
    1
}

#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct W5Args {
    #[command(flatten)]
    pub common: Common,
    /// Long-polling sessions (each keeps one poll parked).
    #[arg(long, default_value_t = 100)]
    pub sessions: usize,
    /// Offered load: publishes per second into the sessions' group (Tinode targets) or
    /// requests per second (http-sol), comma list = sweep.
    #[arg(long, default_value = "1000", value_delimiter = ',')]
    pub rate: Vec<f64>,
    /// Payload bytes (content).
    #[arg(long, default_value_t = 100)]
    pub payload: usize,
    /// http-sol only: one request per connection (`Connection: close` after each response,
    /// the client connects again), the connection pattern of coretalk's long polling; without
    /// it http-sol keeps connections alive (wrk's pattern).
    #[arg(long)]
    pub http_close: bool,
}

#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct W6Args {
    #[command(flatten)]
    pub common: Common,
    /// Subscribers of the group topic.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// Offered load, publishes per second (comma list = sweep).
    #[arg(long, default_value = "100", value_delimiter = ',')]
    pub rate: Vec<f64>,
    /// Payload bytes (content).
    #[arg(long, default_value_t = 100)]
    pub payload: usize,
    /// Shard counts to compare (each a separate server run).
    #[arg(long, default_value = "1,2", value_delimiter = ',')]
    pub shards_list: Vec<usize>,
    /// Instead of the shard-count sweep: one 2-shard run per placement (`local`, `remote`,
    /// `split`), each on a fresh coretalk with a listener per shard (`listen.shard_ports`); the
    /// group is homed on shard 0 and the publisher connects there. The summary gives server CPU
    /// per delivery for each and remote / local.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub placement: Vec<Placement>,
}

/// Where W7 puts its sessions over the cluster's nodes (each layout a fresh run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterLayout {
    /// One standalone server on PostgreSQL, every session on it (the baseline).
    Single,
    /// A cluster, every session on node 0, which masters the topics: nothing crosses.
    Local,
    /// A cluster, topic owners on node 0 and their peers (W4's subscribers, W3's second
    /// sides) on the other nodes: every delivery crosses a node link.
    Remote,
    /// A cluster, sessions round-robin over the nodes (a load balancer's placement).
    Spread,
}

impl ClusterLayout {
    pub fn name(self) -> &'static str {
        match self {
            ClusterLayout::Single => "single",
            ClusterLayout::Local => "local",
            ClusterLayout::Remote => "remote",
            ClusterLayout::Spread => "spread",
        }
    }
}

#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct W7Args {
    #[command(flatten)]
    pub common: Common,
    /// The PostgreSQL server, `postgres://USER@HOST:PORT` (default: $CORETALK_TEST_PG; a
    /// database is created per layout and dropped after it).
    #[arg(long, value_name = "URL")]
    pub pg: Option<String>,
    /// Cluster nodes (one shard each) for the cluster layouts.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Layouts to run, each on fresh processes and a fresh database.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "single,local,remote,spread"
    )]
    pub layouts: Vec<ClusterLayout>,
    /// W4 part: subscribers of the group (0 = skip the part).
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// W4 part: publishes per second (comma list = sweep).
    #[arg(long, default_value = "50", value_delimiter = ',')]
    pub fanout_rate: Vec<f64>,
    /// W3 part: pairs, each a 2-member group (0 = skip the part).
    #[arg(long, default_value_t = 2000)]
    pub pairs: usize,
    /// W3 part: messages per second over all senders (comma list = sweep).
    #[arg(long, default_value = "2500", value_delimiter = ',')]
    pub pair_rate: Vec<f64>,
    /// Payload bytes (content).
    #[arg(long, default_value_t = 100)]
    pub payload: usize,
}

#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct SoakArgs {
    #[command(flatten)]
    pub common: Common,
    /// Sessions held (hi, token login, sub me), publishers included.
    #[arg(long, default_value_t = 19_000)]
    pub sessions: usize,
    /// Minutes the sessions are held under the light load (after `--warmup` seconds).
    #[arg(long, default_value_t = 30.0)]
    pub minutes: f64,
    /// Group topics; each has one publishing session of its own.
    #[arg(long, default_value_t = 20)]
    pub groups: usize,
    /// Every this many other sessions, one also joins a group (groups are kept equal in size).
    #[arg(long, default_value_t = 10)]
    pub group_every: usize,
    /// Publishes per second over all groups (open loop, `noecho`).
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
    /// Payload bytes (content).
    #[arg(long, default_value_t = 100)]
    pub payload: usize,
    /// Seconds between rows of the time series (`series.csv`: RSS, CPU, tables).
    #[arg(long, default_value_t = 5.0)]
    pub sample_every: f64,
    /// Seconds at the start of the hold left out of the RSS slope and the idle CPU (at most
    /// half the hold).
    #[arg(long, default_value_t = 120.0)]
    pub steady_after: f64,
    /// Concurrent session set-ups per worker.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
}

#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct ChurnArgs {
    #[command(flatten)]
    pub common: Common,
    /// Minutes of churn.
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,
    /// Client cycles started per second over all workers (each connects, goes as far as its
    /// stage, holds up to `--hold-ms` and drops).
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Most cycles in flight per worker.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Longest random hold at the stage before the drop, ms.
    #[arg(long, default_value_t = 1000)]
    pub hold_ms: u64,
    /// Accounts the clients log in as (at random).
    #[arg(long, default_value_t = 500)]
    pub accounts: usize,
    /// Group topics the clients join and publish into.
    #[arg(long, default_value_t = 4)]
    pub groups: usize,
    /// Leave out the long-polling stages.
    #[arg(long)]
    pub no_lp: bool,
    /// The server's `session.detached_idle_ms` (how long an abandoned long-poll session
    /// lives); default: the server's own (70 s).
    #[arg(long)]
    pub lp_expiry_ms: Option<u64>,
    /// Longest wait after the churn for the tables to empty, seconds.
    #[arg(long, default_value_t = 150.0)]
    pub settle_max: f64,
    /// RSS after the settle may exceed the pre-churn baseline by this much, MiB (reported;
    /// with `--fail-on-rss` a larger excess fails the run).
    #[arg(long, default_value_t = 16.0)]
    pub rss_margin_mib: f64,
    /// Fail the run when RSS does not come back within `--rss-margin-mib`.
    #[arg(long)]
    pub fail_on_rss: bool,
}

#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    #[command(subcommand)]
    pub workload: Workload,
}

/// The workload subcommands again, for `compare`.
#[derive(Subcommand, Debug, Clone)]
pub enum Workload {
    #[command(alias = "W0")]
    W0(W0Args),
    #[command(alias = "W1")]
    W1(W1Args),
    #[command(alias = "W2")]
    W2(W2Args),
    #[command(alias = "W3")]
    W3(W3Args),
    #[command(alias = "W4")]
    W4(W4Args),
    #[command(alias = "W5")]
    W5(W5Args),
    #[command(alias = "W6")]
    W6(W6Args),
    /// W7: the cluster: W4 and W3 over 3 nodes on PostgreSQL vs one node (--pg URL).
    #[command(alias = "W7")]
    W7(W7Args),
    Soak(SoakArgs),
    Churn(ChurnArgs),
}

impl Workload {
    pub fn common_mut(&mut self) -> &mut Common {
        match self {
            Workload::W0(a) => &mut a.common,
            Workload::W1(a) => &mut a.common,
            Workload::W2(a) => &mut a.common,
            Workload::W3(a) => &mut a.common,
            Workload::W4(a) => &mut a.common,
            Workload::W5(a) => &mut a.common,
            Workload::W6(a) => &mut a.common,
            Workload::W7(a) => &mut a.common,
            Workload::Soak(a) => &mut a.common,
            Workload::Churn(a) => &mut a.common,
        }
    }
    pub fn common(&self) -> &Common {
        match self {
            Workload::W0(a) => &a.common,
            Workload::W1(a) => &a.common,
            Workload::W2(a) => &a.common,
            Workload::W3(a) => &a.common,
            Workload::W4(a) => &a.common,
            Workload::W5(a) => &a.common,
            Workload::W6(a) => &a.common,
            Workload::W7(a) => &a.common,
            Workload::Soak(a) => &a.common,
            Workload::Churn(a) => &a.common,
        }
    }
    pub fn id(&self) -> &'static str {
        match self {
            Workload::W0(_) => "w0",
            Workload::W1(_) => "w1",
            Workload::W2(_) => "w2",
            Workload::W3(_) => "w3",
            Workload::W4(_) => "w4",
            Workload::W5(_) => "w5",
            Workload::W6(_) => "w6",
            Workload::W7(_) => "w7",
            Workload::Soak(_) => "soak",
            Workload::Churn(_) => "churn",
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct SmokeArgs {
    /// Targets to smoke, in order (missing peers are skipped with a note).
    #[arg(
        long,
        default_value = "coretalk,baseline,nats,mosquitto",
        value_delimiter = ','
    )]
    pub targets: Vec<String>,
    /// Workloads to run (default all).
    #[arg(long, default_value = "w0,w1,w2,w3,w4,w5,w6", value_delimiter = ',')]
    pub workloads: Vec<String>,
    /// coretalk binary.
    #[arg(long, value_name = "PATH")]
    pub server_bin: Option<PathBuf>,
    /// coretalk-baseline binary.
    #[arg(long, value_name = "PATH")]
    pub baseline_bin: Option<PathBuf>,
    /// Server cores (taskset list).
    #[arg(long, default_value = "0")]
    pub server_cores: String,
    /// Client cores (taskset list).
    #[arg(long, default_value = "1")]
    pub client_cores: String,
    /// Keep the smoke results directories (default: a temporary directory, removed).
    #[arg(long, value_name = "DIR")]
    pub results_dir: Option<PathBuf>,
}
