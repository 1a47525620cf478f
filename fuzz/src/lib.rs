//! Check functions shared by the fuzz targets and by the stable-toolchain
//! replay test (`tests/fuzz_replay.rs` includes these files by path), so the
//! checks exist once. `checks` also installs the counting global allocator.

pub mod checks;
pub mod object_checks;
