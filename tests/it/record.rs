//! Recording what the suite sends, to seed the fuzz corpora (`fuzz/`): with
//! `CORETALK_RECORD_DIR` set, every WebSocket text frame, raw HTTP and long-poll request and
//! gRPC message a test sends is written to `$CORETALK_RECORD_DIR/<kind>/<hash>` (one file per
//! distinct input). Unset (always, in normal runs), nothing is written.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

/// Saves `bytes` under `kind` (`json`, `http`, `lp`, `pb`) when recording is on.
pub fn save(kind: &str, bytes: &[u8]) {
    let Some(dir) = std::env::var_os("CORETALK_RECORD_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir).join(kind);
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{:016x}", h.finish())), bytes);
}
