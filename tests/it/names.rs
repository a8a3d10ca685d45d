//! Names and encodings the tests share: unique login names, standard base64 for secrets, and
//! a topic's home shard (the server's FNV-1a rule), re-exported by `support`.

use base64::Engine as _;

/// Standard base64 (with padding), as `{login}`/`{acc}` secrets are encoded.
pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A login name unique within this test run.
pub fn unique_login(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id() % 10_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// FNV-1a 64 of the name modulo the shard count: a topic's home shard.
pub fn home_shard(topic: &str, n: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % n as u64) as usize
}
