#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| s4_codec_fuzz::object_checks::object_roundtrip(data));
