//! Integration tests against the real `coretalk` binary over real sockets: accounts and their
//! credentials, cross-shard fan-out, per-shard listeners, the raw echo endpoint, gRPC sessions,
//! long polling, one user on all three transports at once, the access-mode matrix on each
//! transport, durability across `kill -9` and chaos, a full disk, a stalled store sync, slow
//! consumers, the front door under abuse, the PostgreSQL store's faults, resource cleanup,
//! hostile input, security (smuggling, static traversal, token rotation), protocol reply
//! sequences, rate limits and quotas, the shard's WebSocket writer handing blocked writes to the
//! session, shutdown (signals, the deadline, the store closed in every case), operations (metrics, expvar keys, health, keygen, trusted proxies), and a
//! cluster of node processes on one PostgreSQL (placement, a crash, re-join, a stopped master
//! fenced, group topics proxied across nodes, `{set}`/`{del}`, gRPC sessions and `me` presence
//! across nodes, long polling through any node).

mod access;
mod accounts;
mod bad_input;
mod burst;
mod chaos;
mod cleanup;
mod clients;
mod cluster;
mod cluster_failover;
mod cluster_longpoll;
mod cluster_nodes;
mod cluster_ops;
mod cluster_proxy;
mod cross_shard;
mod disk_full;
mod durability;
mod echo;
mod frontdoor;
mod frontdoor_limits;
mod grpc;
mod join_race;
mod limits;
mod longpoll;
mod mixed;
mod names;
mod ops;
mod placement;
mod postgres;
mod process;
mod prom_text;
mod protocol;
mod record;
mod security;
mod shard_writer;
mod shutdown;
mod slow_consumers;
mod stores;
mod support;
mod writer_stall;
