//! Fuzz target `store_record`: arbitrary bytes into `coretalk::fuzzing::store_record`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coretalk::fuzzing::store_record(data));
