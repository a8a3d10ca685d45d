//! The wire protocol: client and server message types, the JSON codec, the protobuf encoding
//! for gRPC clients, the ctrl outcome table and timestamp formatting. Pure data and conversions,
//! no I/O.
//!
//! This is the only module that derives serde traits for wire types; store records and
//! internal state convert to and from these types explicitly.

pub mod client;
pub mod codec;
pub mod ctrl;
pub mod frame;
pub mod pb;
pub mod server;
pub mod time;

pub use client::ClientMsg;
pub use codec::{decode, encode, DecodeError, Decoded};
pub use ctrl::Outcome;
pub use frame::{Encoding, EncodingSet, Frame};
pub use server::ServerMsg;
