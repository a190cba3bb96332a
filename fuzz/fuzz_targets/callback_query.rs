//! `callback_query`: see `authgate_fuzzing::callback_query` for the input format and the properties.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| authgate_fuzzing::callback_query(data));
