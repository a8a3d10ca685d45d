//! Clients of the non-WebSocket transports, shared by the tests of each transport and by the
//! test that mixes all three (the WebSocket client lives in `support.rs`).

pub mod grpc;
pub mod lp;
