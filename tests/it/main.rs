//! Integration tests against the real `coretalk` binary over real sockets: accounts and their
//! credentials, cross-shard fan-out, durability across `kill -9`, resource cleanup, hostile
//! input and protocol reply sequences.

mod accounts;
mod bad_input;
mod cleanup;
mod cross_shard;
mod durability;
mod protocol;
mod support;
