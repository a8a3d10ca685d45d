//! The connections of a [`PgStore`](super::PgStore): a pool capped at
//! [`PgOptions::max_connections`], opened lazily, each with its session settings and a cache
//! of prepared statements, and [`Lease`], one checked-out connection.
//!
//! It owns connecting (the connect timeout and TCP keepalives of [`PgOptions`] and this file
//! override the URL's; every failure names host:port), the per-connection settings
//! (`synchronous_commit = on`, `statement_timeout`, `application_name`, `jit = off`), and the
//! rule that a connection which failed, or was left inside a transaction, is dropped instead
//! of returned. A connection found closed (PostgreSQL restarted, or the backend was
//! terminated) also drops every idle one, so that the next call connects afresh. It knows no
//! table.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use postgres::config::Host;
use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Row, Statement};

use super::PgOptions;
use crate::store::StoreError;

/// How long a caller waits for a busy pool to return a connection before failing.
const CHECKOUT_WAIT: Duration = Duration::from_secs(60);

/// TCP keepalive: first probe after this much silence, then every interval, giving up after
/// the retries (about a minute in all).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;

/// Statement parameters, as the `postgres` client takes them.
pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A PostgreSQL error as one line: the client's summary and every cause (for a server error:
/// severity, SQLSTATE, message, detail).
pub(super) fn describe(e: &postgres::Error) -> String {
    let mut out = e.to_string();
    if let Some(db) = e.as_db_error() {
        out.push_str(&format!(
            ": {} {}: {}",
            db.severity(),
            db.code().code(),
            db.message()
        ));
        if let Some(detail) = db.detail() {
            out.push_str(&format!(" ({detail})"));
        }
        return out;
    }
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(&format!(": {c}"));
        cause = c.source();
    }
    out
}

/// One open connection with its prepared statements.
pub(super) struct Conn {
    client: Client,
    /// Statements prepared on this connection, by their SQL text.
    prepared: HashMap<&'static str, Statement>,
    /// Set by any failed call: the connection is not returned to the pool.
    broken: bool,
    /// Inside `BEGIN … COMMIT`: a connection dropped in this state is not returned either.
    in_txn: bool,
    sent: Arc<AtomicU64>,
}

impl Conn {
    fn fail(&mut self, what: &str, e: postgres::Error) -> StoreError {
        self.broken = true;
        StoreError::Backend(format!("postgres {what}: {}", describe(&e)))
    }

    fn statement(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        match self.client.prepare(sql) {
            Ok(s) => {
                self.prepared.insert(sql, s.clone());
                Ok(s)
            }
            Err(e) => Err(self.fail("prepare", e)),
        }
    }

    /// Runs a prepared (and cached) statement and returns its rows.
    pub(super) fn query(
        &mut self,
        sql: &'static str,
        params: Params,
    ) -> Result<Vec<Row>, StoreError> {
        let stmt = self.statement(sql)?;
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.client
            .query(&stmt, params)
            .map_err(|e| self.fail("query", e))
    }

    /// Runs a prepared (and cached) statement that returns at most one row.
    pub(super) fn query_opt(
        &mut self,
        sql: &'static str,
        params: Params,
    ) -> Result<Option<Row>, StoreError> {
        let mut rows = self.query(sql, params)?;
        if rows.len() > 1 {
            self.broken = true;
            return Err(StoreError::Backend(format!(
                "postgres: {} rows where at most one was expected",
                rows.len()
            )));
        }
        Ok(rows.pop())
    }

    /// Runs a prepared (and cached) statement and returns the number of rows it changed.
    pub(super) fn execute(&mut self, sql: &'static str, params: Params) -> Result<u64, StoreError> {
        let stmt = self.statement(sql)?;
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.client
            .execute(&stmt, params)
            .map_err(|e| self.fail("statement", e))
    }

    /// Runs SQL without parameters (simple protocol): session settings, migrations.
    pub(super) fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.client
            .batch_execute(sql)
            .map_err(|e| self.fail("statement", e))
    }

    /// `BEGIN`: the connection is inside a transaction until [`Conn::commit`] succeeds.
    pub(super) fn begin(&mut self) -> Result<(), StoreError> {
        self.in_txn = true;
        self.batch("BEGIN")
    }

    /// `COMMIT`. A failure here (the connection lost on the way) leaves the outcome unknown;
    /// the caller acknowledges nothing.
    pub(super) fn commit(&mut self) -> Result<(), StoreError> {
        self.batch("COMMIT")?;
        self.in_txn = false;
        Ok(())
    }

    /// `ROLLBACK` of the open transaction.
    pub(super) fn rollback(&mut self) -> Result<(), StoreError> {
        self.batch("ROLLBACK")?;
        self.in_txn = false;
        Ok(())
    }

    /// Whether the server side of this connection is gone.
    pub(super) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

struct Slots {
    idle: Vec<Conn>,
    /// Connections open, idle or leased.
    open: usize,
}

/// The pool of one store.
pub(super) struct Pool {
    config: Config,
    opts: PgOptions,
    target: String,
    slots: Mutex<Slots>,
    returned: Condvar,
    /// Statements sent by every connection of the pool.
    sent: Arc<AtomicU64>,
}

/// `host:port` of every host in `config`, for error messages (never the password).
fn target_of(config: &Config) -> String {
    let ports = config.get_ports();
    let port = |i: usize| ports.get(i).or(ports.first()).copied().unwrap_or(5432);
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| match h {
            Host::Tcp(name) => format!("{name}:{}", port(i)),
            Host::Unix(path) => format!("{}:{} (unix socket)", path.display(), port(i)),
        })
        .collect();
    if hosts.is_empty() {
        format!("localhost:{}", port(0))
    } else {
        hosts.join(",")
    }
}

impl Pool {
    /// A pool for `url`; connects nothing yet.
    pub(super) fn new(url: &str, opts: PgOptions) -> Result<Pool, StoreError> {
        let mut config = Config::from_str(url).map_err(|e| {
            StoreError::Backend(format!("invalid PostgreSQL URL: {}", describe(&e)))
        })?;
        if opts.connect_timeout_ms > 0 {
            config.connect_timeout(Duration::from_millis(opts.connect_timeout_ms));
        }
        // A server gone silent (host down, network cut) is noticed within about a minute
        // instead of the system's two hours, so that a writer waiting on COMMIT fails.
        config
            .application_name("coretalk")
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(KEEPALIVE_RETRIES);
        let target = target_of(&config);
        Ok(Pool {
            config,
            opts: PgOptions {
                max_connections: opts.max_connections.max(1),
                max_rows_per_statement: opts.max_rows_per_statement.max(1),
                ..opts
            },
            target,
            slots: Mutex::new(Slots {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
            sent: Arc::new(AtomicU64::new(0)),
        })
    }

    /// `host:port` of the server, for messages.
    pub(super) fn target(&self) -> &str {
        &self.target
    }

    pub(super) fn opts(&self) -> &PgOptions {
        &self.opts
    }

    pub(super) fn statements_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks a connection out: an idle one, else a new one while under the cap, else the
    /// first one returned.
    pub(super) fn get(&self) -> Result<Lease<'_>, StoreError> {
        let mut slots = self.slots();
        loop {
            if let Some(conn) = slots.idle.pop() {
                return Ok(Lease {
                    pool: self,
                    conn: Some(conn),
                    reused: true,
                });
            }
            if slots.open < self.opts.max_connections {
                slots.open += 1;
                drop(slots);
                return match self.connect() {
                    Ok(conn) => Ok(Lease {
                        pool: self,
                        conn: Some(conn),
                        reused: false,
                    }),
                    Err(e) => {
                        self.slots().open -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            let (next, timeout) = self
                .returned
                .wait_timeout(slots, CHECKOUT_WAIT)
                .unwrap_or_else(|p| p.into_inner());
            slots = next;
            if timeout.timed_out()
                && slots.idle.is_empty()
                && slots.open >= self.opts.max_connections
            {
                return Err(StoreError::Backend(format!(
                    "no PostgreSQL connection to {} came free within {} s ({} open)",
                    self.target,
                    CHECKOUT_WAIT.as_secs(),
                    slots.open
                )));
            }
        }
    }

    fn connect(&self) -> Result<Conn, StoreError> {
        let client = self.config.connect(NoTls).map_err(|e| {
            StoreError::Backend(format!(
                "cannot connect to PostgreSQL at {}: {}",
                self.target,
                describe(&e)
            ))
        })?;
        let mut conn = Conn {
            client,
            prepared: HashMap::new(),
            broken: false,
            in_txn: false,
            sent: Arc::clone(&self.sent),
        };
        // JIT compiling costs hundreds of milliseconds and pays off only on analytic queries;
        // a contact list of a thousand rows crosses its cost threshold.
        conn.batch(&format!(
            "SET synchronous_commit = on; SET statement_timeout = {}; \
             SET idle_in_transaction_session_timeout = {}; \
             SET application_name = 'coretalk'; SET jit = off",
            self.opts.statement_timeout_ms, self.opts.idle_in_transaction_timeout_ms
        ))
        .map_err(|e| {
            StoreError::Backend(format!(
                "cannot set up a PostgreSQL session at {}: {e}",
                self.target
            ))
        })?;
        Ok(conn)
    }

    fn give_back(&self, conn: Conn) {
        let healthy = !conn.broken && !conn.in_txn && !conn.is_closed();
        let mut dropped = Vec::new();
        let mut slots = self.slots();
        if healthy && !std::thread::panicking() {
            slots.idle.push(conn);
        } else {
            slots.open -= 1;
            if conn.is_closed() {
                // The server went away or ended our sessions: the idle ones are likely dead too.
                slots.open -= slots.idle.len();
                dropped.append(&mut slots.idle);
            }
            dropped.push(conn);
        }
        drop(slots);
        self.returned.notify_all();
        // Closed outside the lock: closing a connection talks to the server.
        drop(dropped);
    }
}

/// One checked-out connection, returned to its pool when dropped (or closed, if it failed).
pub(super) struct Lease<'p> {
    pool: &'p Pool,
    conn: Option<Conn>,
    /// Whether the connection was idle in the pool before (it may have died meanwhile) rather
    /// than opened for this lease.
    reused: bool,
}

impl Lease<'_> {
    /// Whether this lease failed on a connection that had been idle and is now found closed:
    /// the failure says nothing about the statement, which may be retried on a new connection.
    pub(super) fn died_idle(&self) -> bool {
        self.reused && self.conn.as_ref().is_some_and(Conn::is_closed)
    }
}

impl std::ops::Deref for Lease<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
            .as_ref()
            .expect("a lease holds its connection until dropped")
    }
}

impl std::ops::DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
    }
}
