//! The one typed configuration tree: a struct per subsystem, each default with the reason for
//! its value. Every field is documented in `tuning/`.
//!
//! Loaded once at start-up from an optional TOML file plus a few command-line overrides, then
//! passed down by reference; never stored in a global. Unknown keys are errors, so a typo in a
//! config file is reported instead of silently ignored.

mod cluster;
mod door;
mod faults;
mod ops;
mod transport;

use std::path::PathBuf;

use serde::Deserialize;

pub use cluster::ClusterConfig;
pub use door::FrontDoorConfig;
pub use faults::StoreFaultsConfig;
pub use ops::{parse_cidrs, Cidr, LogConfig, LogFormat, MonitorConfig};
pub use transport::{LongPollConfig, WsConfig};

/// The whole configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: ListenConfig,
    pub frontdoor: FrontDoorConfig,
    pub runtime: RuntimeConfig,
    pub mesh: MeshConfig,
    pub session: SessionConfig,
    pub ws: WsConfig,
    pub longpoll: LongPollConfig,
    pub api: ApiConfig,
    pub auth: AuthConfig,
    pub store: StoreConfig,
    pub topic: TopicConfig,
    pub web: WebConfig,
    pub limits: LimitsConfig,
    pub monitor: MonitorConfig,
    pub log: LogConfig,
    pub cluster: ClusterConfig,
}

/// Where clients connect.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    /// `HOST:PORT` of the HTTP/WebSocket listener. Port 6060 is the Tinode default the official
    /// clients assume; port 0 picks a free port (printed at start-up).
    pub addr: String,
    /// Accept backlog per shard. 1024 matches glommio's own default and absorbs connect bursts
    /// of a few thousand per second on top of `net.core.somaxconn`.
    pub backlog: i32,
    /// `HOST:PORT` of the gRPC listener (Tinode's `pbx.Node` service, one bidirectional stream
    /// per session), bound by every shard with SO_REUSEPORT like `addr`. 16060 is the port of
    /// the reference's sample config; empty turns gRPC off; port 0 picks a free port (printed
    /// at start-up). `--grpc-listen` overrides it.
    pub grpc_addr: String,
    /// Also give every shard a listener of its own (no SO_REUSEPORT), so a client chooses the
    /// shard that serves its connection: shard `i` listens on `shard_port_base + i` on the
    /// host of `addr` and prints `coretalk shard i listening on HOST:PORT`. Off: the kernel
    /// alone places connections, which is what a server wants; on is for benchmarks that place
    /// sessions (W6 local vs remote) and for operators who pin clients to shards.
    pub shard_ports: bool,
    /// First port of the per-shard listeners (`shard_ports`); 0 gives each shard a free port
    /// of its own (printed).
    pub shard_port_base: u16,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` headers are believed, as address
    /// blocks (`10.0.0.0/8`, `::1`). Empty: the TCP peer is the client, whatever the headers
    /// say (a client could forge them).
    pub trusted_proxies: Vec<String>,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            addr: "0.0.0.0:6060".into(),
            backlog: 1024,
            grpc_addr: "0.0.0.0:16060".into(),
            shard_ports: false,
            shard_port_base: 0,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Shards (pinned executors).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Number of shards; 0 means one per available core, the thread-per-core default.
    pub shards: usize,
    /// Pin shard `i` to core `first_core + i` (modulo the core count). Pinning keeps each shard's
    /// tables in one core's cache; turn off only when sharing a box with other pinned work.
    pub pin: bool,
    /// First core used for shards, so a load generator can own the others.
    pub first_core: usize,
    /// Microseconds an idle executor spins before parking. 0 saves CPU when idle; a small value
    /// (50–100) cuts cross-core latency on VMs where waking a parked vCPU costs ~25 µs.
    pub spin_before_park_us: u64,
    /// Keep one multishot io_uring poll armed per socket for its reads (glommio change 8 in
    /// vendor/glommio/CORETALK.md) instead of arming a one-shot poll after every short read.
    /// Off only for a kernel that misbehaves with them (they need Linux 5.13; older kernels
    /// are detected and fall back by themselves).
    pub multishot_read_polls: bool,
    /// io_uring registered buffer memory per shard, KiB. glommio's 10 MiB default is meant for
    /// DMA file I/O, which coretalk does not use; 1 MiB cuts resident memory per shard.
    pub io_memory_kib: usize,
    /// Entries of each io_uring ring of a shard. 4096 instead of glommio's 128: every armed
    /// socket read is an entry in the kernel's poll table, and a deeper ring cut W3's server
    /// CPU per message by a quarter at 4,000 sessions (tuning/shards-and-pinning.md).
    pub ring_depth: usize,
    /// Let the kernel back the heap with 2 MiB transparent huge pages. Off: mimalloc advises its
    /// arena for huge pages, so every 2 MiB of it that a shard touches at all became resident,
    /// which made an idle shard cost ~10 MB instead of ~4 MB (tuning/shards-and-pinning.md).
    pub transparent_huge_pages: bool,
    /// Longest graceful shutdown, ms, counted from the first SIGINT/SIGTERM; whatever has not
    /// stopped by then is abandoned and the store is closed. 5 s: a normal shutdown takes about
    /// a quarter of a second plus the writer's queue, and 5 s leaves the store's close inside
    /// the 10 s that `docker stop` (and 30 s that Kubernetes) allow before SIGKILL.
    pub shutdown_timeout_ms: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            shards: 0,
            pin: true,
            first_core: 0,
            spin_before_park_us: 0,
            multishot_read_polls: true,
            io_memory_kib: 1024,
            ring_depth: 4096,
            transparent_huge_pages: false,
            shutdown_timeout_ms: 5_000,
        }
    }
}

/// Cross-shard queues.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeshConfig {
    /// Capacity of each shard's inbox, in envelopes, shared by every shard that sends to it
    /// (one inbox per shard, allocated by the first envelope sent to that shard, so the mesh
    /// costs at most `shards × queue_capacity` slots, linear in the shard count, and nothing
    /// for a shard no other shard has sent to). A full inbox spills into the sender's local
    /// backlog and pauses reading from its sockets until it drains (back-pressure, never
    /// unbounded growth). 8192 envelopes absorb a burst of 8k fan-out batches.
    pub queue_capacity: usize,
    /// Local backlog (envelopes) above which a shard stops reading client frames.
    pub backlog_pause: usize,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            queue_capacity: 8192,
            backlog_pause: 4096,
        }
    }
}

/// Per-session limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Outbound queue limit in frames. Tinode allows 128 queued + 32 slack; 512 lets a history
    /// page of 100 plus live traffic fit, and the replies to a full `limits.msg_burst` of
    /// pipelined requests (an ack and an echo each) in half of it. Overflow ends the session
    /// (slow-consumer policy); memory is bounded by `outbound_max_bytes` either way.
    pub outbound_max_frames: usize,
    /// Outbound queue limit in bytes, so a few huge frames cannot pin memory either. 4 MiB =
    /// a 100-message history page of 32 KiB messages plus slack.
    pub outbound_max_bytes: usize,
    /// Largest accepted client message, bytes; also advertised as `maxMessageSize`. 128 KiB is
    /// the sample Tinode configuration the clients are tested with.
    pub max_message_size: usize,
    /// Most topics one session may attach to; protects topic tables from one abusive client.
    pub max_subscriptions: usize,
    /// A session with no transport attached (a long-poll session between requests) ends after
    /// this long, ms. 70 s = the reference's long-poll expiry (its 55 s idle timeout + 15 s).
    pub detached_idle_ms: u64,
    /// The kernel's send buffer of a WebSocket connection (SO_SNDBUF), bytes; 0 keeps the
    /// kernel's autotuning (up to `net.ipv4.tcp_wmem`'s max, 4 MiB here). With the outbound
    /// queue it bounds what one slow reader can hold (tuning/queues.md, slow consumers).
    pub socket_send_buffer: usize,
    /// A WebSocket session whose queued frames could not be written for this long (the client
    /// stopped reading) is cut, ms; 0 = never (only an overflowing queue cuts it).
    pub write_stall_ms: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            outbound_max_frames: 512,
            outbound_max_bytes: 4 << 20,
            max_message_size: 128 << 10,
            max_subscriptions: 1024,
            detached_idle_ms: 70_000,
            socket_send_buffer: 256 << 10,
            write_stall_ms: 15_000,
        }
    }
}

/// API key check on HTTP endpoints.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Standard base64 HMAC salt for API keys. The default is Tinode's sample salt, under which
    /// the demo key `AQEAAAABAAD_rAp4DJh05a1HAwFT3A6K` of every official client validates, so
    /// the clients work out of the box. Production deployments set their own and issue keys.
    pub key_salt: String,
}

/// Tinode's public sample salt (`api.key_salt`'s default): anyone can mint keys under it.
pub const SAMPLE_KEY_SALT: &str = "T713/rYYgW7g4m3vG6zGRh7+FM1t0T8j13koXScOAj4=";

impl ApiConfig {
    /// Whether the salt is the public sample one.
    pub fn sample_salt(&self) -> bool {
        self.key_salt.trim() == SAMPLE_KEY_SALT
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            key_salt: SAMPLE_KEY_SALT.into(),
        }
    }
}

/// Authentication.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Token lifetime, seconds. 14 days, as the sample Tinode configuration.
    pub token_lifetime_secs: u64,
    /// Token serial number; changing it invalidates every token issued before.
    pub token_serial: u16,
    /// Standard base64 HMAC key for tokens (≥ 32 bytes). Empty: a random key is created once in
    /// the data directory (`token.key`), so tokens survive restarts without configuration.
    pub token_key: String,
    /// Token keys replaced by `token_key` (standard base64, ≥ 32 bytes each): tokens they
    /// signed are still accepted until `token_rotated_at` + `token_rotation_grace_secs`, then
    /// refused. Empty: only the current key.
    pub token_retired_keys: Vec<String>,
    /// When the current key replaced the retired ones, Unix seconds (required with
    /// `token_retired_keys`).
    pub token_rotated_at: u64,
    /// How long after `token_rotated_at` tokens of retired keys are accepted, seconds.
    pub token_rotation_grace_secs: u64,
    /// bcrypt cost for passwords. 10 (~50 ms) is Tinode's; lower only for tests.
    pub bcrypt_cost: u32,
    /// Threads hashing passwords, off the executors so a login never stalls other sessions.
    pub hash_threads: usize,
    /// Run the `coretalk-hash-N` threads, which share cores with the pinned shards, under
    /// Linux's `SCHED_IDLE`: a shard that wakes with messages preempts a running bcrypt hash
    /// at once, and hashing still gets every idle cycle. False: `hash_nice` applies instead.
    pub hash_sched_idle: bool,
    /// Nice value of the hash threads when `hash_sched_idle` is false: 19 (the lowest) makes a
    /// bcrypt hash (tens of ms at the default cost) yield the core to a shard sooner (W3's p99
    /// with 50 logins/s: +0.7–1.4 ms at 19, +2.9 ms at 10, +4.4 ms at 0). 0 = the shards'
    /// priority.
    pub hash_nice: i32,
    /// Queued hash jobs before logins are refused with 503 (bounds memory under a login flood).
    pub hash_queue: usize,
    /// Shortest accepted login name, characters.
    pub min_login_len: usize,
    /// Shortest accepted password, characters.
    pub min_password_len: usize,
    /// Basic logins that authenticate at the `root` level (administrators: account
    /// suspension, `sys`, `trusted` fields). Empty: nobody is root.
    pub root_users: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token_lifetime_secs: 14 * 24 * 3600,
            token_serial: 1,
            token_key: String::new(),
            token_retired_keys: Vec::new(),
            token_rotated_at: 0,
            token_rotation_grace_secs: 24 * 3600,
            bcrypt_cost: 10,
            hash_threads: 1,
            hash_sched_idle: true,
            hash_nice: 19,
            hash_queue: 4096,
            min_login_len: 2,
            min_password_len: 3,
            root_users: Vec::new(),
        }
    }
}

/// Where data is kept: the embedded store (default) or PostgreSQL (`url`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Empty: the embedded store in `data_dir`. `postgres://USER@HOST:PORT/DB`: PostgreSQL
    /// (`--store` overrides it; tuning/postgres.md). With PostgreSQL every write is
    /// acknowledged after its COMMIT returns, so `durable`, `journal`, `journal_segment_kib`
    /// and `behind_pause` apply to the embedded store only.
    pub url: String,
    /// PostgreSQL connections, reader threads and timeouts (used when `url` is set).
    pub postgres: PostgresConfig,
    /// Directory of the embedded database and the token key (the token key lives here with
    /// PostgreSQL too, unless `auth.token_key` is set).
    pub data_dir: PathBuf,
    /// fsync every group commit before acknowledging it. `false` is for benchmarks only: redb
    /// then makes no commit durable until a clean shutdown, so any crash (even `kill -9`)
    /// loses every write since the last clean close (logged as a warning at start).
    pub durable: bool,
    /// Most operations in one group commit (one fsync).
    pub max_batch_ops: usize,
    /// Queued write batches before writers get 503 (bounds memory when the disk stalls).
    pub queue_capacity: usize,
    /// How long the store thread may wait to gather more writes that were acknowledged before
    /// being applied (journaled appends, or any append with `durable = false`), µs; 0 commits
    /// each group at once. Nobody waits on those commits, so the window costs no latency and
    /// shares one transaction among many messages. See `tuning/store.md`.
    pub group_window_us: u64,
    /// Ops such a group should hold: at higher rates the thread rests less than the window so
    /// each apply burst stays this short (0: always the whole window). See `tuning/store.md`.
    pub group_target_ops: usize,
    /// With `durable`: acknowledge a topic's appends once they are synced in the accepting
    /// shard's own journal (`data_dir/journal`), and let the store thread apply them behind
    /// in volatile groups. `false`: every write waits for a durable store commit.
    pub journal: bool,
    /// Size of a journal segment, KiB; a full segment is removed once the store has made its
    /// content durable. Each segment ends in a checkpoint (a durable store commit) whose
    /// write-out stalls the journal's syncs for as long as it lasts, so the size bounds that
    /// stall (4 MiB: about 20-30 ms here; `tuning/store.md`).
    pub journal_segment_kib: u64,
    /// Write the journal with direct I/O into segments zero-filled when they are created
    /// (cheaper syncs: no page-cache write-back); `false`, or a filesystem that refuses direct
    /// I/O (logged once per shard), writes through the page cache. See `tuning/store.md`.
    pub journal_direct_io: bool,
    /// Writes acknowledged but not yet applied by the store thread above which the shards stop
    /// reading client sockets until it catches up (back-pressure instead of refused writes
    /// once `queue_capacity` fills). See `tuning/store.md`.
    pub behind_pause: u64,
    /// The embedded store's page cache, MiB (redb's own default: 1024). The server's memory
    /// grows with stored data until this cache is full; lower it to bound the process's
    /// memory on a host with a large store and little RAM. See `tuning/store.md`.
    pub cache_mib: usize,
    /// A durable sync (a store commit, a journal sync) lasting this long, ms, is a stall:
    /// counted in the metrics and logged when it begins and ends. 0: not counted.
    pub stall_warn_ms: u64,
    /// Fault injection for tests; all zero in production (tuning/store.md).
    pub faults: StoreFaultsConfig,
}

impl StoreConfig {
    /// Whether the embedded store is used (no PostgreSQL `url`).
    pub fn embedded(&self) -> bool {
        self.url.trim().is_empty()
    }
}

/// The PostgreSQL store (`store.url`); see tuning/postgres.md.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// Threads that answer reads off the executors, each on its own connection while busy.
    /// 0: one per shard plus one. Reads block a thread for a network round trip, so a few
    /// threads per core keep the database busy without queueing behind a slow query.
    pub readers: usize,
    /// Reads waiting for a reader thread before new ones are refused (answered 503).
    pub read_queue: usize,
    /// Most connections the process opens (the readers, the writer and migrations share
    /// them). 0: `readers + 2`. PostgreSQL's `max_connections` must cover every node's value.
    pub max_connections: usize,
    /// How long to wait for a connection to open, ms; start-up fails after it.
    pub connect_timeout_ms: u64,
    /// `statement_timeout` of every connection, ms (0 = none): a stuck query fails with a
    /// clear error instead of holding a thread.
    pub statement_timeout_ms: u64,
    /// Rows per multi-row statement of a group commit (larger groups use several).
    pub max_rows_per_statement: usize,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            readers: 0,
            read_queue: 65536,
            max_connections: 0,
            connect_timeout_ms: 5000,
            statement_timeout_ms: 30_000,
            max_rows_per_statement: 1000,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: String::new(),
            postgres: PostgresConfig::default(),
            data_dir: "./data".into(),
            durable: true,
            max_batch_ops: 4096,
            queue_capacity: 65536,
            group_window_us: 10_000,
            group_target_ops: 128,
            journal: true,
            journal_segment_kib: 4096,
            journal_direct_io: true,
            behind_pause: 16384,
            cache_mib: 1024,
            stall_warn_ms: 1000,
            faults: StoreFaultsConfig::default(),
        }
    }
}

/// Topics.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicConfig {
    /// Unload a topic this long after its last session detached, ms (reference: 4 s), so that
    /// a quick reconnect does not reload it.
    pub idle_unload_ms: u64,
    /// Most subscribers of a group (reference sample: 128).
    pub max_subscriber_count: usize,
    /// Most messages per `{get data}` page (reference: 100).
    pub max_history: usize,
    /// Most tags per user or topic (reference: 16).
    pub max_tag_count: usize,
    /// Hard-delete age limit advertised as `msgDelAge`, seconds: older messages cannot be
    /// deleted for everyone (0: no limit).
    pub msg_delete_age_secs: u64,
    /// Tag namespaces only the server sets (credentials, logins): users cannot add or remove
    /// `namespace:value` tags in these.
    pub restricted_tags: Vec<String>,
    /// Most items in a list answer (`fnd` results, subscriber lists), as the reference's
    /// `max_results`.
    pub max_results: usize,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            idle_unload_ms: 4_000,
            max_subscriber_count: 128,
            max_history: 100,
            max_tag_count: 16,
            msg_delete_age_secs: 600,
            restricted_tags: vec!["basic".into(), "email".into(), "tel".into()],
            max_results: 1024,
        }
    }
}

/// Static files served over plain HTTP (the official web app, for instance).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Directory whose files are served; empty (the default) disables static serving, so a
    /// server that only speaks the protocol exposes no file system at all.
    pub static_dir: PathBuf,
    /// URL prefix the directory is served under. `/` (the default) is where the web app
    /// expects to be: it then talks to the server on the page's own host and port.
    pub static_mount: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            static_dir: PathBuf::new(),
            static_mount: "/".into(),
        }
    }
}

/// Rate limits and quotas against abusive or broken clients (`tuning/limits.md`). Each refusal
/// is a `{ctrl}` (429 for rates, 422 for quotas); none of them ends a session. A rate of 0
/// turns that limit off.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Client messages per second a session may sustain (token bucket refill). 50/s is ten
    /// times what a fast typist with receipts and typing notices sends; bots that need more
    /// raise it.
    pub msg_per_sec: u32,
    /// Messages a session may send at once above the sustained rate (bucket size). 128 covers
    /// a client start-up (hi, login, sub me, a few topics with their gets) and pipelined batches
    /// of 100 `{pub}`; at most a quarter of `session.outbound_max_frames`, so the replies to
    /// everything admitted at once (an ack and an echo each) fit in half the outbox and a
    /// pipelining client is refused before its outbox could overflow.
    pub msg_burst: u32,
    /// `{login}` (basic) and `{acc}` (new account) attempts per minute per session. 6/min
    /// (one per 10 s) after the burst slows password guessing on one connection.
    pub auth_per_min: u32,
    /// Attempts a session may make at once before `auth_per_min` applies. 5 covers a user
    /// mistyping a password a few times.
    pub auth_burst: u32,
    /// Attempts per minute per remote address (IPv6: per /64), counted on each shard. 60/min
    /// lets an office behind one NAT log in at the start of the day and still slows guessing
    /// from one host by orders of magnitude.
    pub addr_auth_per_min: u32,
    /// Attempts one address may make at once (per shard) before `addr_auth_per_min` applies.
    pub addr_auth_burst: u32,
    /// Most addresses a shard tracks; full buckets (idle addresses) are evicted, and when the
    /// table is full of active ones the rest share one bucket. 16384 × ~64 B ≈ 1 MiB per shard.
    pub addr_table_max: usize,
    /// Most concurrent authenticated sessions of one user, counted by the shard that is home
    /// to the user's `me` topic (0: unlimited). 128: far above anyone's devices and tabs,
    /// and it bounds how many copies of each message one account can make the server send.
    pub max_sessions_per_user: usize,
    /// Largest client message on WebSocket, bytes; 0: `session.max_message_size`.
    pub max_message_size_ws: usize,
    /// Largest client message on long polling (a POST body), bytes; 0: `session.max_message_size`.
    pub max_message_size_lp: usize,
    /// Largest client message on gRPC, bytes; 0: `session.max_message_size`.
    pub max_message_size_grpc: usize,
    /// A `{hi bkg:true}` session announces presence only after this long, ms (reference:
    /// `deferredNotificationsTimeout`, 5 s); it announces nothing if it ends first. Checked by
    /// the shard's once-a-second housekeeping, so the delay is up to a second longer.
    pub background_delay_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            msg_per_sec: 50,
            msg_burst: 128,
            auth_per_min: 6,
            auth_burst: 5,
            addr_auth_per_min: 60,
            addr_auth_burst: 60,
            addr_table_max: 16_384,
            max_sessions_per_user: 128,
            max_message_size_ws: 0,
            max_message_size_lp: 0,
            max_message_size_grpc: 0,
            background_delay_ms: 5_000,
        }
    }
}

/// A transport, for the limits that differ by transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    WebSocket,
    LongPoll,
    Grpc,
}

impl Config {
    /// The largest client message accepted on `transport`, bytes: its `limits.max_message_size_*`
    /// or, when that is 0, `session.max_message_size`.
    pub fn max_message_size(&self, transport: Transport) -> usize {
        let own = match transport {
            Transport::WebSocket => self.limits.max_message_size_ws,
            Transport::LongPoll => self.limits.max_message_size_lp,
            Transport::Grpc => self.limits.max_message_size_grpc,
        };
        if own == 0 {
            self.session.max_message_size
        } else {
            own
        }
    }
}

/// The monitoring endpoints' fixed paths (`[monitor]`).
pub const MONITOR_PATHS: [&str; 4] = ["/metrics", "/debug/vars", "/healthz", "/readyz"];

/// Errors while loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid setting: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads a TOML file; missing keys take their defaults.
    pub fn from_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source,
        })
    }

    /// Checks cross-field constraints.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |s: &str| Err(ConfigError::Invalid(s.into()));
        if self.session.outbound_max_frames == 0 || self.session.outbound_max_bytes == 0 {
            return bad("session.outbound_max_frames and outbound_max_bytes must be > 0");
        }
        // An outbox keeps its limits in 32 bits (W1).
        if self.session.outbound_max_frames > u32::MAX as usize
            || self.session.outbound_max_bytes > u32::MAX as usize
        {
            return bad("session.outbound_max_frames and outbound_max_bytes must be below 4 Gi");
        }
        if self.session.max_message_size < 256 {
            return bad("session.max_message_size must be at least 256 bytes");
        }
        for t in [Transport::WebSocket, Transport::LongPoll, Transport::Grpc] {
            if self.max_message_size(t) < 256 {
                return bad("limits.max_message_size_* must be 0 or at least 256 bytes");
            }
            // A WebSocket reader keeps its limit in 32 bits (W1), and nothing larger is sane.
            if self.max_message_size(t) > u32::MAX as usize {
                return bad(
                    "session.max_message_size and limits.max_message_size_* must be below 4 GiB",
                );
            }
        }
        if self.limits.msg_per_sec > 0
            && (self.limits.msg_burst == 0
                || self.limits.msg_burst as usize * 4 > self.session.outbound_max_frames)
        {
            return bad(
                "limits.msg_burst must be > 0 and at most a quarter of session.outbound_max_frames",
            );
        }
        if (self.limits.auth_per_min > 0 && self.limits.auth_burst == 0)
            || (self.limits.addr_auth_per_min > 0 && self.limits.addr_auth_burst == 0)
        {
            return bad("limits.auth_burst and limits.addr_auth_burst must be > 0");
        }
        if self.ws.read_buffer < 256 {
            return bad("ws.read_buffer must be at least 256 bytes");
        }
        if self.ws.send_batch > 4096 {
            return bad("ws.send_batch must be at most 4096 sends");
        }
        if self.ws.ping_interval_ms == 0 || self.ws.pong_timeout_ms <= self.ws.ping_interval_ms {
            return bad("ws.pong_timeout_ms must exceed ws.ping_interval_ms > 0");
        }
        let echo = &self.ws.echo_path;
        if !echo.is_empty()
            && (!echo.starts_with('/')
                || echo.contains(['?', '#'])
                || echo.starts_with("/v0/channels")
                || MONITOR_PATHS.contains(&echo.as_str()))
        {
            return bad("ws.echo_path must be empty or a path starting with '/' that no protocol endpoint uses");
        }
        if let Err(e) = parse_cidrs(&self.frontdoor.exempt) {
            return Err(ConfigError::Invalid(format!("frontdoor.exempt: {e}")));
        }
        if let Err(e) = parse_cidrs(&self.listen.trusted_proxies) {
            return Err(ConfigError::Invalid(format!("listen.trusted_proxies: {e}")));
        }
        if self.log.buffer_lines == 0 {
            return bad("log.buffer_lines must be > 0");
        }
        let url = self.store.url.trim();
        if !url.is_empty() && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return bad("store.url must be empty (embedded store) or a postgres:// URL");
        }
        if !self.store.embedded() && self.store.postgres.read_queue == 0 {
            return bad("store.postgres.read_queue must be > 0");
        }
        if let Err(e) = self.cluster.validate(self.store.embedded()) {
            return Err(ConfigError::Invalid(e));
        }
        if self.longpoll.hold_ms == 0 || self.longpoll.body_timeout_ms == 0 {
            return bad("longpoll.hold_ms and longpoll.body_timeout_ms must be > 0");
        }
        if !self.auth.token_retired_keys.is_empty() && self.auth.token_rotated_at == 0 {
            return bad("auth.token_retired_keys needs auth.token_rotated_at (Unix seconds)");
        }
        if !(4..=31).contains(&self.auth.bcrypt_cost) {
            return bad("auth.bcrypt_cost must be within 4..=31");
        }
        if self.auth.hash_threads == 0 || self.mesh.queue_capacity == 0 {
            return bad("auth.hash_threads and mesh.queue_capacity must be > 0");
        }
        if self.topic.max_history == 0 {
            return bad("topic.max_history must be > 0");
        }
        if !(16..=32768).contains(&self.runtime.ring_depth) {
            return bad("runtime.ring_depth must be within 16..=32768");
        }
        let mount = &self.web.static_mount;
        if !mount.starts_with('/') || mount.contains(['?', '#', '%', '\\']) || mount.contains("//")
        {
            return bad("web.static_mount must be a URL path starting with '/'");
        }
        if mount.split('/').any(|s| s == "." || s == "..") {
            return bad("web.static_mount must not contain '.' or '..' segments");
        }
        if !self.web.static_dir.as_os_str().is_empty() && !self.web.static_dir.is_dir() {
            return Err(ConfigError::Invalid(format!(
                "web.static_dir is not a directory: {}",
                self.web.static_dir.display()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `toml_text` as a configuration and validates it.
    fn with(toml_text: &str) -> Result<(), ConfigError> {
        toml::from_str::<Config>(toml_text).unwrap().validate()
    }

    #[test]
    fn defaults_validate_and_files_override_them() {
        Config::default().validate().unwrap();
        let c: Config = toml::from_str("[session]\nmax_message_size = 4096\n").unwrap();
        assert_eq!(c.session.max_message_size, 4096);
        assert_eq!(c.ws.read_buffer, 4096);
        assert!(toml::from_str::<Config>("[session]\nmax_mesage_size = 1\n").is_err());
    }

    #[test]
    fn message_sizes_are_bounded_both_ways() {
        assert!(with("[session]\nmax_message_size = 255\n").is_err());
        assert!(with("[session]\nmax_message_size = 4294967295\n").is_ok());
        assert!(with("[session]\nmax_message_size = 4294967296\n").is_err());
        assert!(with("[limits]\nmax_message_size_ws = 4294967296\n").is_err());
        assert!(with("[limits]\nmax_message_size_lp = 100\n").is_err());
        assert!(with("[session]\noutbound_max_bytes = 4294967296\n").is_err());
        assert!(with("[session]\noutbound_max_frames = 4294967296\n").is_err());
        assert!(with("[session]\noutbound_max_bytes = 4294967295\n").is_ok());
    }

    #[test]
    fn echo_path_is_off_by_default_and_checked() {
        assert!(Config::default().ws.echo_path.is_empty());
        assert!(with("[ws]\necho_path = \"/echo\"\n").is_ok());
        assert!(with("[ws]\necho_path = \"echo\"\n").is_err());
        assert!(with("[ws]\necho_path = \"/v0/channels\"\n").is_err());
        assert!(with("[ws]\necho_path = \"/debug/vars\"\n").is_err());
        assert_eq!(Config::default().ws.send_batch, 64);
        assert!(with("[ws]\nsend_batch = 0\n").is_ok());
        assert!(with("[ws]\nsend_batch = 4097\n").is_err());
    }

    #[test]
    fn static_mount_and_dir_are_checked() {
        assert!(with("[web]\nstatic_mount = \"/app\"\n").is_ok());
        assert!(with("[web]\nstatic_mount = \"/app/\"\n").is_ok());
        assert!(with("[web]\nstatic_mount = \"app\"\n").is_err());
        assert!(with("[web]\nstatic_mount = \"/a/../b\"\n").is_err());
        assert!(with("[web]\nstatic_mount = \"/a?b\"\n").is_err());
        assert!(with("[web]\nstatic_dir = \"/nonexistent/coretalk/web\"\n").is_err());
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[web]\nstatic_dir = {:?}\n",
            dir.path().display().to_string()
        );
        assert!(with(&text).is_ok());
    }
}
