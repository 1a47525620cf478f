//! One payload at a time: the compress and decompress calls behind the codec
//! classes, `crc32c` and `decompress_raw`. Each converts its arguments and
//! runs the core with the GIL released.

use std::cell::RefCell;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::buffers::{bytes_from, detached, sized, try_new_bytes_filled, ByteView};
use crate::codec::{Codec, RESULT_RESERVE_MAX};

pub(crate) type Compressed<'py> = (Bound<'py, PyBytes>, u64, u32);

/// Inputs up to this size compress into a reused per-thread buffer, which
/// saves an allocation per call where that cost is visible.
const SCRATCH_MAX_INPUT: usize = 64 << 10;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

pub(crate) fn compress_with<'py>(
    py: Python<'py>,
    codec: &Codec,
    data: &ByteView<'py>,
) -> PyResult<Compressed<'py>> {
    let src = data.as_slice();
    if src.len() <= SCRATCH_MAX_INPUT {
        // The work runs on this same OS thread (detached or not), so it
        // fills this thread's scratch buffer and the copy below reads it back.
        let crc = sized(py, src.len(), || {
            SCRATCH.with_borrow_mut(|buf| {
                buf.clear();
                codec.compress_append(src, buf)?;
                Ok(crate::codec::crc::crc32c(src))
            })
        })?;
        let payload = SCRATCH.with_borrow(|buf| PyBytes::new(py, buf));
        return Ok((payload, src.len() as u64, crc));
    }
    let threads = crate::threads::max_threads();
    let (payload, original_size, crc) = detached(py, || codec.compress(src, threads))?;
    Ok((bytes_from(py, &payload)?, original_size, crc))
}

pub(crate) fn decompress_with<'py>(
    py: Python<'py>,
    codec: &Codec,
    data: &ByteView<'py>,
    original_size: u64,
    crc32c: u32,
) -> PyResult<Bound<'py, PyBytes>> {
    let src = data.as_slice();
    let cap = codec.output_capacity(src.len(), original_size)?;
    if cap as u64 == original_size && cap <= RESULT_RESERVE_MAX {
        // Decode straight into the result.
        let fill = |dst: &mut [_]| codec.decompress_into(src, original_size, crc32c, dst);
        if let Some(bytes) = try_new_bytes_filled(py, cap, fill)? {
            return Ok(bytes);
        }
    }
    // A claim the payload cannot back, or too large to reserve before any
    // output exists: the output grows as it decodes, then is copied once.
    let out = detached(py, || codec.decompress(src, original_size, crc32c))?;
    bytes_from(py, &out)
}

/// CRC32C (Castagnoli) of a bytes-like object.
#[pyfunction]
pub fn crc32c(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<u32> {
    // `bytes` is read in place: on 100-byte inputs the reference counting of
    // a `ByteView` is a visible part of the call (0.93-0.97x the `crc32c`
    // package with this, 0.89-0.94x without).
    let view;
    let src = match data.cast::<PyBytes>() {
        Ok(bytes) => bytes.as_bytes(),
        Err(_) => {
            view = ByteView::extract(data.as_borrowed())?;
            view.as_slice()
        }
    };
    // Every pool thread, for inputs large enough to split.
    sized(py, src.len(), || {
        Ok(crate::codec::crc::crc32c_on(src, usize::MAX))
    })
}

/// CRC32C of `a + b` from `crc32c(a)`, `crc32c(b)` and `len(b)`.
#[pyfunction]
pub fn crc32c_combine(crc1: u32, crc2: u32, len2: u64) -> u32 {
    crate::codec::crc::combine(crc1, crc2, len2)
}

/// Decodes a bare zstd frame or gzip member whose size nobody states
/// (what the CLI and `format="raw"` users hold), up to `max_output_size`.
#[pyfunction]
#[pyo3(signature = (data, codec, max_output_size = crate::MAX_DECOMPRESSED_BYTES))]
pub fn decompress_raw<'py>(
    py: Python<'py>,
    data: ByteView<'py>,
    codec: &str,
    max_output_size: u64,
) -> PyResult<Bound<'py, PyBytes>> {
    let codec = crate::spec::decoder(crate::spec::CellFormat::Raw, Some(codec), None)?;
    let src = data.as_slice();
    let out = detached(py, || {
        let mut out = Vec::new();
        codec.decompress_unsized_append(src, max_output_size, &mut out)?;
        Ok(out)
    })?;
    bytes_from(py, &out)
}

/// Whether a CUDA device is reachable (always False without `nvcomp-gpu`).
#[pyfunction]
pub fn gpu_available(py: Python<'_>) -> bool {
    py.detach(crate::codec::gpu::available)
}
