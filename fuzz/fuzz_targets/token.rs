//! Fuzz target `token`: arbitrary bytes into `coretalk::fuzzing::token`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coretalk::fuzzing::token(data));
