//! Fuzz target `api_key`: arbitrary bytes into `coretalk::fuzzing::api_key`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coretalk::fuzzing::api_key(data));
