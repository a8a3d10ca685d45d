//! PostgreSQL only: connecting. An unreachable server fails fast and names itself, a server
//! that ended the store's sessions (a restart) costs at most one failed call, and a statement
//! failing in the middle of a group fails every batch and commits nothing.

use std::time::{Duration, Instant};

use super::{fresh_store, sql};
use crate::ids::UserId;
use crate::store::conformance::fixtures::*;
use crate::store::pg::testing::{admin, free_port, LocalServer};
use crate::store::pg::{is_postgres_url, PgOptions, PgStore};
use crate::store::{Store, StoreError, WriteOp};

#[test]
fn an_unreachable_server_fails_fast_naming_host_and_port() {
    let port = free_port();
    let started = Instant::now();
    let err = PgStore::open(
        &format!("postgres://postgres@127.0.0.1:{port}/coretalk"),
        PgOptions::default(),
    )
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let StoreError::Backend(msg) = err else {
        panic!("{err:?}")
    };
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(msg.contains("cannot connect"), "{msg}");
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
}

#[test]
fn a_malformed_url_is_a_clear_error() {
    let err = PgStore::open(
        "postgres://postgres@127.0.0.1:notaport/x",
        PgOptions::default(),
    );
    match err {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("invalid PostgreSQL URL"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn postgres_urls_are_told_from_data_directories() {
    assert!(is_postgres_url("postgres://u@h/db"));
    assert!(is_postgres_url("postgresql://u@h:5433/db"));
    assert!(is_postgres_url("PostgreSQL://u@h/db"));
    assert!(!is_postgres_url("/var/lib/coretalk"));
    assert!(!is_postgres_url("data/postgres://"));
    assert!(!is_postgres_url("postgres:/x"));
    assert!(!is_postgres_url(""));
}

/// Ends every session of the store (as a PostgreSQL restart would) from another connection.
fn terminate_store_sessions(url: &str) -> i64 {
    sql(url)
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = 'coretalk' AND datname = current_database()",
            &[],
        )
        .unwrap()
        .get(0)
}

#[test]
fn the_store_reconnects_after_its_sessions_are_ended() {
    let (s, url) = fresh_store();
    apply_ok(&s, vec![WriteOp::CreateUser(user(1))]);
    assert!(s.user(UserId(1)).unwrap().is_some());

    // A write after the sessions ended: at most one failure, with a Backend error.
    assert!(terminate_store_sessions(&url) >= 1);
    std::thread::sleep(Duration::from_millis(100));
    let first = s.apply(&[vec![WriteOp::AppendMessage(msg("grpA", 1))]]);
    if let Err(e) = &first[0] {
        assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
    }
    apply_ok(&s, vec![WriteOp::AppendMessage(msg("grpA", 2))]);

    // A read after the sessions ended: the same.
    assert!(terminate_store_sessions(&url) >= 1);
    std::thread::sleep(Duration::from_millis(100));
    if let Err(e) = s.user(UserId(1)) {
        assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
    }
    assert!(s.user(UserId(1)).unwrap().is_some());
    assert_eq!(s.last_message("grpA").unwrap().map(|l| l.seq), Some(2));
}

/// A real restart, on a server of its own: while PostgreSQL is down calls fail with a Backend
/// error naming it; once it is back the store reconnects by itself, every idle connection of
/// the pool replaced, and the committed data is there.
#[test]
fn the_store_reconnects_after_postgresql_restarts() {
    let server = LocalServer::start();
    admin(&server.url())
        .batch_execute("CREATE DATABASE restarted")
        .unwrap();
    let s = PgStore::open(&format!("{}/restarted", server.url()), PgOptions::default()).unwrap();
    apply_ok(&s, vec![WriteOp::CreateUser(user(1))]);
    // Several connections idle in the pool.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..20 {
                    assert!(s.user(UserId(1)).unwrap().is_some());
                }
            });
        }
    });

    server.stop("fast");
    match s.user(UserId(1)) {
        Err(StoreError::Backend(msg)) => {
            assert!(
                msg.contains(server.url().trim_start_matches("postgres://postgres@")),
                "{msg}"
            )
        }
        other => panic!("{other:?}"),
    }
    let down = s.apply(&[vec![WriteOp::AppendMessage(msg("grpA", 1))]]);
    assert!(matches!(&down[0], Err(StoreError::Backend(_))), "{down:?}");

    server.resume();
    let mut failures = 0;
    for _ in 0..3 {
        match s.user(UserId(1)) {
            Ok(u) => assert!(u.is_some()),
            Err(StoreError::Backend(_)) => failures += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(failures <= 1, "{failures} failed reads after the restart");
    apply_ok(&s, vec![WriteOp::AppendMessage(msg("grpA", 1))]);
    assert_eq!(s.last_message("grpA").unwrap().map(|l| l.seq), Some(1));
}

/// A statement failing inside the transaction (here: a trigger an operator added) fails every
/// batch of the group with a Backend error, and none of them is committed.
#[test]
fn a_failure_inside_the_group_fails_every_batch_and_commits_nothing() {
    let (s, url) = fresh_store();
    sql(&url)
        .batch_execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused by test trigger'; END $$; \
             CREATE TRIGGER refuse BEFORE INSERT ON topics FOR EACH ROW \
             WHEN (NEW.name = 'grpRefused') EXECUTE FUNCTION refuse();",
        )
        .unwrap();
    let results = s.apply(&[
        vec![WriteOp::AppendMessage(msg("grpA", 1))],
        vec![WriteOp::CreateUser(user(1))],
        vec![WriteOp::CreateTopic(topic("grpRefused"))],
        vec![WriteOp::AppendMessage(msg("grpA", 2))],
    ]);
    assert_eq!(results.len(), 4);
    for r in &results {
        match r {
            Err(StoreError::Backend(msg)) => {
                assert!(msg.contains("refused by test trigger"), "{msg}")
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(s.last_message("grpA").unwrap(), None);
    assert_eq!(s.user(UserId(1)).unwrap(), None);
    // The store goes on.
    apply_ok(&s, vec![WriteOp::AppendMessage(msg("grpA", 1))]);
}

/// A session that sits inside a transaction past `idle_in_transaction_timeout_ms` is ended by
/// PostgreSQL (what frees a paused cluster master's lock on its membership row), and the pool
/// replaces the broken connection.
#[test]
fn a_transaction_left_idle_is_ended_by_postgresql() {
    let url = crate::store::pg::testing::fresh_url();
    let opts = PgOptions {
        idle_in_transaction_timeout_ms: 300,
        ..PgOptions::default()
    };
    let store = PgStore::open(&url, opts).expect("open");
    {
        let mut conn = store.pool.get().expect("a connection");
        conn.begin().expect("begin");
        conn.query("SELECT 1", &[])
            .expect("a statement inside the transaction");
        std::thread::sleep(Duration::from_millis(900));
        let err = conn
            .query("SELECT 1", &[])
            .expect_err("the session was ended while idle in its transaction");
        assert!(
            format!("{err}").contains("idle") || format!("{err}").contains("closed"),
            "{err}"
        );
    }
    // The store works on with a fresh connection.
    let mut conn = store.pool.get().expect("a connection");
    assert_eq!(conn.query("SELECT 1", &[]).expect("select").len(), 1);
}
