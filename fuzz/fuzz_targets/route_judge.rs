//! `route_judge`: see `authgate_fuzzing::route_judge` for the input format and the properties.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| authgate_fuzzing::route_judge(data));
