//! Fuzz target `journal`: arbitrary bytes into `coretalk::fuzzing::journal`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coretalk::fuzzing::journal(data));
