//! Fuzz target `longpoll`: arbitrary bytes into `coretalk::fuzzing::longpoll`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coretalk::fuzzing::longpoll(data));
