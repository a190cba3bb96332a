//! `forward_auth`: see `authgate_fuzzing::forward_auth` for the input format and the properties.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| authgate_fuzzing::forward_auth(data));
