//! s4-codec: zstd, gzip and CRC32C in the byte format of the S4 storage
//! gateway. The core (everything outside `python`) is plain Rust over byte
//! slices; the Python extension is a thin door over it.

pub mod batch;
pub mod codec;
pub mod crc;
pub mod dict;
pub mod error;
pub mod frame;
pub mod gpu;
pub mod gzip;
pub mod index;
pub mod object;
pub mod threads;
pub mod zstd;

#[cfg(feature = "python")]
mod arrow_ffi;
#[cfg(feature = "python")]
mod expressions;
#[cfg(feature = "python")]
mod python;

pub use codec::{Codec, CodecKind, MAX_DECOMPRESSED_BYTES};
pub use crc::crc32c;
pub use error::{Error, Result};
