//! `config`: see `authgate_fuzzing::config` for the input format and the properties.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| authgate_fuzzing::config(data));
