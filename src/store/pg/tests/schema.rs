//! PostgreSQL only: schema migrations. They apply once, are idempotent, serialize when several
//! servers start together on an empty database, and refuse a database newer than the binary.

use std::sync::{Arc, Barrier};

use super::{fresh_store, sql};
use crate::store::pg::testing::fresh_url;
use crate::store::pg::{migrate, PgOptions, PgStore, SCHEMA_VERSION};
use crate::store::StoreError;

/// The versions recorded in `schema_migrations`, ascending.
fn versions(url: &str) -> Vec<i32> {
    sql(url)
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn all_versions() -> Vec<i32> {
    (1..=SCHEMA_VERSION as i32).collect()
}

#[test]
fn migrations_apply_once_and_are_idempotent() {
    let url = fresh_url();
    let opts = PgOptions::default();
    assert_eq!(migrate(&url, &opts).unwrap(), (0, SCHEMA_VERSION));
    assert_eq!(
        migrate(&url, &opts).unwrap(),
        (SCHEMA_VERSION, SCHEMA_VERSION)
    );
    drop(PgStore::open(&url, opts.clone()).unwrap());
    drop(PgStore::open(&url, opts.clone()).unwrap());
    assert_eq!(
        migrate(&url, &opts).unwrap(),
        (SCHEMA_VERSION, SCHEMA_VERSION)
    );
    assert_eq!(versions(&url), all_versions());
    let applied: bool = sql(&url)
        .query_one(
            "SELECT bool_and(applied_at <= now() AND description <> '') FROM schema_migrations",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(applied);
}

#[test]
fn servers_starting_together_on_an_empty_database_make_one_schema() {
    let url = fresh_url();
    let start = Arc::new(Barrier::new(4));
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let (url, start) = (url.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                PgStore::open(&url, PgOptions::default()).map(drop)
            })
        })
        .collect();
    for opener in openers {
        assert_eq!(opener.join().unwrap(), Ok(()));
    }
    assert_eq!(versions(&url), all_versions());
    let tables: i64 = sql(&url)
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'messages'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 1);
}

#[test]
fn a_database_newer_than_the_binary_is_refused() {
    let (store, url) = fresh_store();
    drop(store);
    let newer = SCHEMA_VERSION as i32 + 1;
    sql(&url)
        .execute(
            "INSERT INTO schema_migrations (version, description) VALUES ($1, 'from the future')",
            &[&newer],
        )
        .unwrap();
    for err in [
        PgStore::open(&url, PgOptions::default()).map(drop),
        migrate(&url, &PgOptions::default()).map(drop),
    ] {
        match err {
            Err(StoreError::Backend(msg)) => {
                assert!(msg.contains(&format!("version {newer}")), "{msg}");
                assert!(msg.contains("newer"), "{msg}");
            }
            other => panic!("a newer schema was not refused: {other:?}"),
        }
    }
    // Refused untouched.
    let mut want = all_versions();
    want.push(newer);
    assert_eq!(versions(&url), want);
}

/// Client JSON columns are `text`: no `jsonb` (it rewrites bytes) and no `json` anywhere.
#[test]
fn no_column_is_jsonb() {
    let (_store, url) = fresh_store();
    let json_columns: i64 = sql(&url)
        .query_one(
            "SELECT count(*) FROM information_schema.columns \
             WHERE table_schema = 'public' AND data_type IN ('json', 'jsonb')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(json_columns, 0);
}
