//! Which store the integration tests run against: the embedded store by default, or a new
//! PostgreSQL database per server when `CORETALK_TEST_STORE=postgres` (tests/run-all.sh's second
//! run, on the throw-away instance tests/pg.sh starts).

use std::process::Command;

/// The PostgreSQL server to test against, when this run tests the PostgreSQL store
/// (`CORETALK_TEST_STORE=postgres`, with `CORETALK_TEST_PG=postgres://USER@HOST:PORT` naming a
/// throw-away instance, as `tests/pg.sh` starts): every [`Server`] then gets a new database
/// of its own. Otherwise the embedded store is tested.
pub fn postgres_base() -> Option<String> {
    match std::env::var("CORETALK_TEST_STORE").as_deref() {
        Ok("postgres") => Some(std::env::var("CORETALK_TEST_PG").expect(
            "CORETALK_TEST_STORE=postgres needs CORETALK_TEST_PG (start one with tests/pg.sh)",
        )),
        Ok("") | Ok("embedded") | Err(_) => None,
        Ok(other) => panic!("CORETALK_TEST_STORE={other}: expected postgres or embedded"),
    }
}

/// Whether this run tests the embedded store (tests of its files check this first).
pub fn embedded_store() -> bool {
    postgres_base().is_none()
}

/// Creates a new, empty database on the test PostgreSQL and returns its URL.
pub fn create_database(base: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "it_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let psql = std::env::var("PGBIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    let out = Command::new(format!("{psql}/psql"))
        .arg(format!("{base}/postgres"))
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "CREATE DATABASE {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("{base}/{name}")
}
