//! Fuzz target `json`: arbitrary bytes into `coretalk::fuzzing::json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coretalk::fuzzing::json(data));
