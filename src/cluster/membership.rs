//! Cluster membership in PostgreSQL: the statements on `cluster_node` and `cluster_meta` (made
//! by the store's schema migration 2) that let nodes join, renew their leases, declare expired
//! peers down, leave, and read who is up under which membership version.
//!
//! PostgreSQL decides; nothing here is a consensus protocol of its own. Every change of who is
//! up bumps the version in the same transaction (one statement with data-modifying CTEs), so
//! two nodes that read the same version see the same members and place topics alike. A peer
//! is declared down by one conditional `UPDATE` (`lease_until < clock_timestamp()`), which
//! PostgreSQL's row lock serialises against that peer's own renewal and against the fenced
//! commits of its writer (`store::pg::Fence`): exactly one outcome wins.
//!
//! Blocking (the `postgres` client): called only from the membership thread.

use std::str::FromStr;
use std::time::Duration;

use crate::store::StoreError;

/// A node's row state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// A member: it masters its share of the topics while its lease holds.
    Up,
    /// Declared down by a peer after its lease expired; it must re-join under a new epoch.
    Down,
    /// Left cleanly.
    Left,
}

/// One node row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRow {
    pub name: String,
    /// Its node-to-node address.
    pub addr: String,
    pub epoch: i64,
    pub state: NodeState,
    /// Whether its lease had not yet expired when the row was read.
    pub lease_live: bool,
}

/// Every node row and the membership version, read in one statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub version: i64,
    pub nodes: Vec<NodeRow>,
}

impl Snapshot {
    /// The nodes that are up (the ones the ring places topics on).
    pub fn up(&self) -> impl Iterator<Item = &NodeRow> {
        self.nodes.iter().filter(|n| n.state == NodeState::Up)
    }
}

/// The peers one call declared down (name, epoch) and the version it bumped to, if any.
pub type Declared = (Vec<(String, i64)>, Option<i64>);

/// A connection for the membership statements; reconnects on the next call after a failure.
pub struct Members {
    config: postgres::Config,
    target: String,
    client: Option<postgres::Client>,
}

fn backend(what: &str, e: postgres::Error) -> StoreError {
    StoreError::Backend(format!("cluster membership: {what}: {e}"))
}

impl Members {
    /// Prepares a connection to `url` (opened on first use).
    pub fn new(url: &str, connect_timeout: Duration) -> Result<Members, StoreError> {
        let mut config = postgres::Config::from_str(url)
            .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
        config.application_name("coretalk-cluster");
        if !connect_timeout.is_zero() {
            config.connect_timeout(connect_timeout);
        }
        let target = config
            .get_hosts()
            .iter()
            .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
            .map(|(h, p)| match h {
                postgres::config::Host::Tcp(h) => format!("{h}:{p}"),
                postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .next()
            .unwrap_or_default();
        Ok(Members {
            config,
            target,
            client: None,
        })
    }

    /// Runs `f` on the connection, opening it first if needed; a failed call drops it.
    fn with<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            let c = self.config.connect(postgres::NoTls).map_err(|e| {
                StoreError::Backend(format!("cannot reach PostgreSQL at {}: {e}", self.target))
            })?;
            self.client = Some(c);
        }
        let client = self.client.as_mut().expect("connected above");
        let r = f(client);
        if r.is_err() {
            self.client = None;
        }
        r.map_err(|e| backend(what, e))
    }

    /// Joins (or re-joins) as `name` at `addr` with a lease of `lease`: the row is up with the
    /// next epoch, and the version is bumped. Returns (epoch, version).
    pub fn register(
        &mut self,
        name: &str,
        addr: &str,
        lease: Duration,
    ) -> Result<(i64, i64), StoreError> {
        let ms = lease.as_millis() as i64;
        self.with("join", |c| {
            let row = c.query_one(
                "WITH n AS (
                     INSERT INTO cluster_node (name, addr, epoch, state, lease_until)
                     VALUES ($1, $2, 1, 'up', clock_timestamp() + $3::bigint * interval '1 millisecond')
                     ON CONFLICT (name) DO UPDATE SET addr = EXCLUDED.addr,
                         epoch = cluster_node.epoch + 1, state = 'up',
                         lease_until = EXCLUDED.lease_until, changed = clock_timestamp()
                     RETURNING epoch),
                 v AS (UPDATE cluster_meta SET version = version + 1 WHERE id = 1 RETURNING version)
                 SELECT n.epoch, v.version FROM n, v",
                &[&name, &addr, &ms],
            )?;
            Ok((row.get(0), row.get(1)))
        })
    }

    /// Extends the lease of `name` under `epoch`. `false`: the row is no longer up with that
    /// epoch (a peer declared it down, or a newer incarnation joined): this node is fenced.
    pub fn renew(&mut self, name: &str, epoch: i64, lease: Duration) -> Result<bool, StoreError> {
        let ms = lease.as_millis() as i64;
        self.with("renew", |c| {
            let n = c.execute(
                "UPDATE cluster_node
                 SET lease_until = clock_timestamp() + $3::bigint * interval '1 millisecond'
                 WHERE name = $1 AND epoch = $2 AND state = 'up'",
                &[&name, &epoch, &ms],
            )?;
            Ok(n == 1)
        })
    }

    /// Declares down every peer (all but `me`) whose lease has expired, in one conditional
    /// update that also bumps the version when it changed anything. Returns the nodes it
    /// declared down (name, epoch) and the new version.
    pub fn declare_expired_down(&mut self, me: &str) -> Result<Declared, StoreError> {
        self.with("declare down", |c| {
            let rows = c.query(
                "WITH d AS (
                     UPDATE cluster_node SET state = 'down', changed = clock_timestamp()
                     WHERE state = 'up' AND lease_until < clock_timestamp() AND name <> $1
                     RETURNING name, epoch),
                 v AS (UPDATE cluster_meta SET version = version + 1
                       WHERE id = 1 AND EXISTS (SELECT 1 FROM d) RETURNING version)
                 SELECT d.name, d.epoch, (SELECT version FROM v) FROM d",
                &[&me],
            )?;
            let version = rows.first().map(|r| r.get::<_, i64>(2));
            Ok((rows.iter().map(|r| (r.get(0), r.get(1))).collect(), version))
        })
    }

    /// Leaves cleanly: the row becomes `left` (if it is still up with `epoch`) and the version
    /// is bumped. Returns whether it was still a member.
    pub fn leave(&mut self, name: &str, epoch: i64) -> Result<bool, StoreError> {
        self.with("leave", |c| {
            let row = c.query_one(
                "WITH l AS (
                     UPDATE cluster_node SET state = 'left', changed = clock_timestamp()
                     WHERE name = $1 AND epoch = $2 AND state = 'up' RETURNING 1),
                 v AS (UPDATE cluster_meta SET version = version + 1
                       WHERE id = 1 AND EXISTS (SELECT 1 FROM l) RETURNING version)
                 SELECT count(*) FROM l",
                &[&name, &epoch],
            )?;
            Ok(row.get::<_, i64>(0) == 1)
        })
    }

    /// Every node and the version, in one statement (one snapshot).
    pub fn snapshot(&mut self) -> Result<Snapshot, StoreError> {
        self.with("read members", |c| {
            let rows = c.query(
                "SELECT m.version, n.name, n.addr, n.epoch, n.state,
                        n.lease_until > clock_timestamp()
                 FROM cluster_meta m LEFT JOIN cluster_node n ON true
                 WHERE m.id = 1 ORDER BY n.name",
                &[],
            )?;
            let version = rows.first().map(|r| r.get::<_, i64>(0)).unwrap_or(0);
            let nodes = rows
                .iter()
                .filter_map(|r| {
                    let name: Option<String> = r.get(1);
                    let state: Option<String> = r.get(4);
                    Some(NodeRow {
                        name: name?,
                        addr: r.get(2),
                        epoch: r.get(3),
                        state: match state?.as_str() {
                            "up" => NodeState::Up,
                            "down" => NodeState::Down,
                            _ => NodeState::Left,
                        },
                        lease_live: r.get(5),
                    })
                })
                .collect();
            Ok(Snapshot { version, nodes })
        })
    }
}
