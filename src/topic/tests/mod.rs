//! Unit tests of the topic state machine, run through the simulator in `sim`, one file per feature.

mod access;
mod background;
mod fnd;
mod get;
mod join;
mod leave;
mod me;
mod members;
mod notes;
mod p2p;
mod presence;
mod publish;
mod reads;
mod sim;
mod tags;
