//! s4-codec: zstd, gzip and CRC32C in the byte format of the S4 storage
//! gateway. The layers, lowest first (each uses only the ones above it in
//! this list; see ARCHITECTURE.md):
//!
//! - `error`, `threads`, `memory`: the one error type and its class table;
//!   the one thread pool; large output buffers.
//! - `codec`: the engines over byte slices (zstd, gzip, dictionaries, CRC32C).
//! - `spec`: codec names, aliases, levels and formats as the doors accept them.
//! - `s4`: the S4 wire format (S4F2/S4P1 frames, `.s4index` sidecars, objects
//!   and the gateway's GET decision).
//! - `batch`: the column kernels over Arrow-layout byte columns.
//! - doors (feature `python`): `python` (pyo3 classes and functions),
//!   `arrow_ffi` (Arrow C data), `expressions` (the Polars plugin).

pub mod batch;
pub mod codec;
pub mod error;
pub mod memory;
pub mod s4;
pub mod spec;
pub mod threads;

#[cfg(feature = "python")]
mod arrow_ffi;
#[cfg(feature = "python")]
mod expressions;
#[cfg(feature = "python")]
mod python;

/// The compiled module `s4_codec._internal`: each door adds its part.
#[cfg(feature = "python")]
#[pyo3::pymodule]
#[pyo3(name = "_internal")]
fn internal(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    python::register(m)?;
    arrow_ffi::register(m)
}

pub use codec::crc::crc32c;
pub use codec::{Codec, CodecKind, MAX_DECOMPRESSED_BYTES};
pub use error::{Error, Result};
