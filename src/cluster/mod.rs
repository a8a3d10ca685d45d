//! The cluster's foundation: which nodes are members (PostgreSQL rows with leases and epochs,
//! `membership.rs`, kept by the `coretalk-cluster` thread in `heartbeat.rs`) and which node
//! masters a topic (Tinode's consistent-hash ring over the members that are up, `ring.rs`).
//!
//! Membership is decided by PostgreSQL alone (conditional updates under its row locks); a
//! node's writes are fenced by its epoch (`store::pg::Fence`), so a master that was declared
//! down can never commit again. Node-to-node links and proxy topics build on this.

pub mod heartbeat;
pub mod membership;
pub mod ring;
#[cfg(test)]
mod tests;

pub use heartbeat::{Heartbeat, MemberConfig, Status, View};
pub use membership::{Members, NodeRow, NodeState, Snapshot};
pub use ring::Ring;
