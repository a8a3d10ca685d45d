//! Unit tests of the topic state machine.
