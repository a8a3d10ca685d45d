//! The `[cluster]` section: whether this server is a node of a cluster (`node`, its name;
//! empty: standalone), where peers reach it (`listen`, `advertise`), the membership lease and
//! heartbeat, and the node links' queue, ping and reconnect settings. Documented in
//! tuning/cluster.md; checked by [`ClusterConfig::validate`].

use serde::Deserialize;

/// Cluster membership and node links.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's name, unique in the cluster (letters, digits, `-`, `_`, `.`; at most 64).
    /// Empty (the default): a standalone server, no membership, no links. `--node` sets it.
    /// Needs a PostgreSQL store: membership lives in its `cluster_node` table.
    pub node: String,
    /// `HOST:PORT` of the node-to-node listener; port 0 picks a free port. `--node-listen`
    /// sets it. Peers dial what `advertise` says (this address when `advertise` is empty).
    pub listen: String,
    /// `HOST:PORT` peers should dial, written into this node's row; empty: the bound `listen`
    /// address, which must then not be a wildcard (`0.0.0.0`, `::`).
    pub advertise: String,
    /// How long a renewal keeps this node a member, ms. A peer declares the node down once its
    /// lease has expired, so a crash is noticed within `lease_ms + heartbeat_ms`; a node that
    /// could not renew for a whole lease fences itself first. 5 s rides out a PostgreSQL
    /// failover or a long GC-like pause without flapping.
    pub lease_ms: u64,
    /// How often the membership thread renews the lease, declares expired peers down and
    /// reads the members, ms. 1 s: five chances to renew per lease, and a new member is seen
    /// within a second; at most a fifth of `lease_ms`.
    pub heartbeat_ms: u64,
    /// How long the membership connection waits to reach PostgreSQL, ms.
    pub connect_timeout_ms: u64,
    /// Frames each outbound node link may hold queued before a send is refused (the sender
    /// gets an error at once, never a silent drop). 1024: the reference's 64-per-node queue
    /// is sized for one forwarded request per slot with a 20 ms wait; links here are FIFO
    /// pipes that a burst of forwarded requests and broadcasts fills before the socket drains.
    pub link_queue: usize,
    /// Interval of the ping each link sends to measure round-trip time (and to notice a dead
    /// peer on an idle link), ms.
    pub link_ping_ms: u64,
    /// An inbound link silent for this long is closed (its peer pings every `link_ping_ms`),
    /// ms; also the timeout of one connect attempt.
    pub link_timeout_ms: u64,
    /// Longest wait between reconnect attempts of a link, ms; the wait starts at 100 ms (the
    /// reference reconnects every 200 ms) and doubles up to this.
    pub link_backoff_max_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node: String::new(),
            listen: String::new(),
            advertise: String::new(),
            lease_ms: 5_000,
            heartbeat_ms: 1_000,
            connect_timeout_ms: 5_000,
            link_queue: 1024,
            link_ping_ms: 1_000,
            link_timeout_ms: 3_000,
            link_backoff_max_ms: 2_000,
        }
    }
}

impl ClusterConfig {
    /// Whether this server is a cluster node.
    pub fn enabled(&self) -> bool {
        !self.node.trim().is_empty()
    }

    /// Cross-field checks; `embedded` is whether the store is the embedded one.
    pub fn validate(&self, embedded: bool) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        let name = self.node.trim();
        if name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "cluster.node {name:?}: use at most 64 letters, digits, '-', '_' or '.'"
            ));
        }
        if embedded {
            return Err(
                "cluster.node (--node) needs a PostgreSQL store: membership and the data \
                 live in the shared database (--store postgres://USER@HOST:PORT/DB or store.url)"
                    .into(),
            );
        }
        if self.listen.trim().is_empty() {
            return Err(
                "cluster.node needs cluster.listen (--node-listen HOST:PORT), the \
                 node-to-node address"
                    .into(),
            );
        }
        if self.lease_ms == 0 || self.heartbeat_ms == 0 || self.heartbeat_ms * 5 > self.lease_ms {
            return Err(
                "cluster.heartbeat_ms must be > 0 and at most a fifth of cluster.lease_ms".into(),
            );
        }
        if self.link_queue == 0
            || self.link_ping_ms == 0
            || self.link_timeout_ms <= self.link_ping_ms
            || self.link_backoff_max_ms < 100
        {
            return Err(
                "cluster.link_queue and link_ping_ms must be > 0, link_timeout_ms must \
                 exceed link_ping_ms, link_backoff_max_ms must be at least 100"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_needs_postgres_a_listen_address_and_a_sane_lease() {
        let mut c = ClusterConfig::default();
        assert!(c.validate(true).is_ok(), "standalone by default");
        c.node = "n1".into();
        assert!(c.validate(true).unwrap_err().contains("PostgreSQL"));
        assert!(c.validate(false).unwrap_err().contains("cluster.listen"));
        c.listen = "127.0.0.1:0".into();
        assert!(c.validate(false).is_ok());
        c.heartbeat_ms = 2_000;
        assert!(c.validate(false).is_err());
        c.heartbeat_ms = 1_000;
        c.node = "bad name".into();
        assert!(c.validate(false).is_err());
    }
}
