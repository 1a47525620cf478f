#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| s4_codec_fuzz::checks::codec_roundtrip(data));
