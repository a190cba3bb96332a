//! `session_cookie`: see `authgate_fuzzing::session_cookie` for the input format and the properties.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| authgate_fuzzing::session_cookie(data));
