//! Fuzz target `http_head`: arbitrary bytes into `coretalk::fuzzing::http_head`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coretalk::fuzzing::http_head(data));
