//! Fuzz target `ws_frames`: arbitrary bytes into `coretalk::fuzzing::ws_frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coretalk::fuzzing::ws_frames(data));
