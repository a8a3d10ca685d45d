//! Integration tests against the real `coretalk` binary over real sockets: accounts and their
//! credentials, cross-shard fan-out, per-shard listeners, the raw echo endpoint, gRPC sessions,
//! long polling, one user on all three transports at once, durability across `kill -9`,
//! resource cleanup, hostile input, protocol reply sequences, rate limits and quotas, and
//! shutdown (signals, the deadline, the store closed in every case), and operations (metrics,
//! expvar keys, health, keygen, trusted proxies).

mod accounts;
mod bad_input;
mod cleanup;
mod clients;
mod cross_shard;
mod durability;
mod echo;
mod grpc;
mod limits;
mod longpoll;
mod mixed;
mod ops;
mod placement;
mod postgres;
mod prom_text;
mod protocol;
mod shutdown;
mod stores;
mod support;
