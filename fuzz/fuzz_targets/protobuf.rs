//! Fuzz target `protobuf`: arbitrary bytes into `coretalk::fuzzing::protobuf`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coretalk::fuzzing::protobuf(data));
