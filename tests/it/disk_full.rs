//! The disk filling up under the embedded store: the data directory is a small tmpfs (mounted
//! by the test, which needs root; elsewhere it says so and does nothing). While it is full,
//! every publish is answered, 202 or `{ctrl 5xx}`; once space returns the service is back
//! without a restart; after a restart everything acknowledged is there and the store opens.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{code, data, embedded_store, unique_login, Client, Server};

/// A tmpfs mounted on a directory, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| Tmpfs(at.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system of `dir` with one file; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0u8; 64 << 10];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    path
}

async fn publish_answered(c: &mut Client, grp: &str, n: u64) -> Value {
    let pad = "p".repeat(200);
    let id = c
        .publish_nowait(grp, json!({"n": n, "pad": pad}), true)
        .await;
    c.ctrl_for(&id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_requests_clearly_and_the_service_comes_back() {
    if !embedded_store() {
        return; // the embedded store's disk; PostgreSQL's is the database server's
    }
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: cannot mount a tmpfs, the disk-full test is not run");
        return;
    }
    let mut mount = None;
    // Small journal segments: a direct-I/O journal writes each segment full of zeroes when it
    // creates it (and prepares the next one ahead), so the disk being full only shows once the
    // messages have used up the two segments it holds.
    let config = "[limits]\nmsg_per_sec = 0\n[store]\njournal_segment_kib = 64\n";
    let mut server = Server::start_prepared(1, config, None, |data| {
        mount = Tmpfs::mount(data, "24m");
    });
    let Some(_mount) = mount else {
        eprintln!("mount -t tmpfs failed: the disk-full test is not run");
        return;
    };
    let mut a = Client::connect(&server, "full").await;
    a.hi().await;
    let (_, token) = a.sign_up(&unique_login("full")).await;
    let grp = a.create_group().await;
    let mut acked: BTreeMap<u64, u64> = BTreeMap::new();
    let mut n = 0;
    for _ in 0..20 {
        let c = publish_answered(&mut a, &grp, n).await;
        assert_eq!(c["code"], 202, "{c}");
        acked.insert(c["params"]["seq"].as_u64().unwrap(), n);
        n += 1;
    }

    // The disk fills up: every request is still answered, some with a server error.
    let filler = fill(&server.data_dir());
    let mut failed = 0;
    for _ in 0..2000 {
        let c = publish_answered(&mut a, &grp, n).await;
        match c["code"].as_u64() {
            Some(202) => {
                acked.insert(c["params"]["seq"].as_u64().unwrap(), n);
            }
            Some(500..=599) => failed += 1,
            _ => panic!("unexpected answer on a full disk: {c}"),
        }
        n += 1;
        if failed >= 5 {
            break;
        }
    }
    assert!(
        failed >= 5,
        "a full disk failed no publish ({} acked)",
        acked.len()
    );

    // Space returns: publishing works again without a restart.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut back = 0;
    while back < 20 {
        assert!(Instant::now() < deadline, "the service did not come back");
        let c = publish_answered(&mut a, &grp, n).await;
        if c["code"] == 202 {
            acked.insert(c["params"]["seq"].as_u64().unwrap(), n);
            back += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        n += 1;
    }
    drop(a);

    // A restart opens the store; every acknowledged message is there.
    server.restart();
    let mut b = Client::login(&server, "full-after", &token).await;
    let mut stored: BTreeMap<u64, u64> = BTreeMap::new();
    let mut page = b.sub_get(&grp, Some("data"), None).await;
    loop {
        let seqs: Vec<u64> = page
            .iter()
            .filter_map(data)
            .map(|d| {
                let seq = d["seq"].as_u64().unwrap();
                stored.insert(seq, d["content"]["n"].as_u64().unwrap());
                seq
            })
            .collect();
        let Some(&oldest) = seqs.iter().min() else {
            assert_eq!(code(page.last().unwrap()), Some(204));
            break;
        };
        page = b.get(&grp, "data", Some(json!({"before": oldest}))).await;
    }
    for (seq, n) in &acked {
        assert_eq!(stored.get(seq), Some(n), "acknowledged seq {seq} lost");
    }
    eprintln!(
        "disk full: {} acknowledged, {failed} refused while full",
        acked.len()
    );
}
