//! The cluster: which nodes are members (PostgreSQL rows with leases and epochs,
//! `membership.rs`, kept by the `coretalk-cluster` thread in `heartbeat.rs`), which node
//! masters a topic (Tinode's consistent-hash ring over the members that are up, `ring.rs`),
//! and the node-to-node links (`wire.rs` the frames, `link.rs` one outbound link, `links.rs`
//! the listener and the set of links that follows the view), started together by `node.rs`.
//!
//! Membership is decided by PostgreSQL alone (conditional updates under its row locks); a
//! node's writes are fenced by its epoch (`store::pg::Fence`), so a master that was declared
//! down can never commit again. Requests for topics mastered elsewhere cross the links as
//! opaque JSON the shards make and read (`shard/proxy_wire.rs`).

pub mod heartbeat;
pub mod link;
#[cfg(test)]
mod link_tests;
pub mod links;
pub mod membership;
pub mod node;
pub mod ring;
#[cfg(test)]
mod tests;
pub mod wire;

pub use heartbeat::{Heartbeat, MemberConfig, Status, View};
pub use link::{LinkConfig, SendError};
pub use links::Links;
pub use membership::{Members, NodeRow, NodeState, Snapshot};
pub use node::{Node, NodeHandle};
pub use ring::Ring;
