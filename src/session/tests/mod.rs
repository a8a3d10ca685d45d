//! Unit tests of the session state machine: gates, validation, topic-name expansion and routing,
//! driven through `Session::handle` with a fixed clock and no sockets; one file per feature, the
//! shared harness in `harness`.

mod accounts;
mod gates;
mod harness;
mod lifecycle;
mod limits;
mod routing;
mod sub;
