//! Authentication primitives: API keys, Tinode-compatible tokens, the `basic` (login:password)
//! scheme, the off-executor bcrypt pool and the persistent token key.
//!
//! This module owns only credential *checking and minting*; it does not look up users or auth
//! records in the store, choose `{ctrl}` codes, or track sessions — the protocol layer combines
//! these pieces and maps [`AuthError`] onto the wire.

pub mod apikey;
pub mod basic;
pub mod hasher;
pub mod keys;
pub mod token;

/// Why an authentication step was refused.
///
/// Each variant documents the `{ctrl}` reply the protocol layer is expected to produce; the
/// mapping itself lives there, not here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The secret or token cannot be parsed (→ ctrl 400 "malformed").
    #[error("malformed")]
    Malformed,
    /// Wrong credentials, bad signature, wrong serial or expired token (→ ctrl 401 "authentication failed").
    #[error("authentication failed")]
    Failed,
    /// The requested scheme is not known to this server (→ ctrl 401 "unknown authentication scheme").
    #[error("unknown authentication scheme")]
    UnknownScheme,
    /// A login or password breaks the configured rules; the string says which (→ ctrl 422 "policy violation").
    #[error("policy violation: {0}")]
    Policy(String),
    /// The password-hash pool's queue is full; the client may retry later (→ ctrl 503).
    #[error("authentication busy, try again later")]
    Busy,
}
