//! Integration tests against the real `coretalk` binary over real sockets: accounts and their
//! credentials, cross-shard fan-out, durability across `kill -9`, long polling, resource cleanup,
//! hostile input, protocol reply sequences and shutdown (signals, the deadline, the store closed in
//! every case).

mod accounts;
mod bad_input;
mod cleanup;
mod cross_shard;
mod durability;
mod longpoll;
mod protocol;
mod shutdown;
mod support;
