//! The front door's bounds (`[frontdoor]`): how many connections may sit before their
//! upgrade (reading the request head, answering the handshake) per remote address and in
//! all, and how close to the process's open-file limit the server lets itself get before it
//! sheds its oldest unauthenticated connections. Documented in tuning/frontdoor.md.

use serde::Deserialize;

/// `[frontdoor]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FrontDoorConfig {
    /// Connections not yet upgraded (request head being read, handshake being answered), in
    /// all; each shard holds its share (`max_pending / shards`, rounded up). Past it the
    /// oldest pending connection on the shard is cut to make room: a slow head is the likelier
    /// attacker, a new one the likelier real client. 4096: a legitimate head arrives in one
    /// round trip, so even 10,000 connects a second keep only a few hundred pending, while an
    /// idle flood is held to ~4096 × (task + head buffer) ≈ 40 MB. 0: unbounded.
    pub max_pending: usize,
    /// Connections not yet upgraded from one remote address (the TCP peer; trusted proxies
    /// are exempt), per process as above. Past it a new connection from that address is
    /// answered 503 and closed. 256: one address's real clients (a NAT gateway, an office)
    /// finish their handshakes within a round trip and rarely hold more than a few at once;
    /// the load harness's connect bursts stay below it. 0: unbounded.
    pub max_pending_per_addr: usize,
    /// Address blocks exempt from `max_pending_per_addr` (as well as `listen.trusted_proxies`).
    /// Loopback by default: a reverse proxy or a load generator on the same host funnels many
    /// clients through one address, and whoever can connect from the host itself is past any
    /// front door. `[]` applies the limit to loopback too.
    pub exempt: Vec<String>,
    /// Descriptors kept free for the store, PostgreSQL connections, log files and the like:
    /// once client connections reach the open-file limit (`RLIMIT_NOFILE`, re-read every
    /// second) minus the descriptors open at start-up minus this reserve, every new
    /// connection sheds the oldest unauthenticated one on its shard (pending connections and
    /// WebSocket sessions that have not logged in), so real clients still get in while an
    /// idle flood holds the rest. An `accept` that fails for want of descriptors sheds a batch
    /// at once. 64.
    pub fd_reserve: usize,
}

impl Default for FrontDoorConfig {
    fn default() -> Self {
        FrontDoorConfig {
            max_pending: 4096,
            max_pending_per_addr: 256,
            exempt: vec!["127.0.0.0/8".into(), "::1".into()],
            fd_reserve: 64,
        }
    }
}
