//! Zero-copy byte input from any C-contiguous buffer, uninitialised `bytes`
//! output, and running core work with the GIL released.

use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::errors::new_err;
use crate::error::ErrorClass;

/// Borrowed view of a bytes-like object: `bytes` directly, anything else
/// through the buffer protocol (bytearray, memoryview, numpy, mmap, ...).
pub enum ByteView<'py> {
    Bytes(Bound<'py, PyBytes>),
    Buffer(Box<ffi::Py_buffer>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for ByteView<'py> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(bytes) = obj.cast::<PyBytes>() {
            return Ok(ByteView::Bytes(bytes.to_owned()));
        }
        let mut view = Box::new(ffi::Py_buffer::new());
        // SAFETY: `view` is a valid, writable Py_buffer; PyBUF_SIMPLE asks for
        // one contiguous run of bytes and fails for strided exporters.
        let rc = unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), &mut *view, ffi::PyBUF_SIMPLE) };
        if rc != 0 {
            return Err(PyErr::fetch(obj.py()));
        }
        Ok(ByteView::Buffer(view))
    }
}

impl ByteView<'_> {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            ByteView::Bytes(bytes) => bytes.as_bytes(),
            ByteView::Buffer(view) if view.len == 0 => &[],
            // SAFETY: the exporter keeps `buf` valid for `len` bytes until the
            // view is released in `drop`.
            ByteView::Buffer(view) => unsafe {
                std::slice::from_raw_parts(view.buf.cast::<u8>(), view.len as usize)
            },
        }
    }
}

impl Drop for ByteView<'_> {
    fn drop(&mut self) {
        if let ByteView::Buffer(view) = self {
            // SAFETY: the view was filled by PyObject_GetBuffer; a ByteView
            // only lives while the GIL is held, so releasing here is allowed.
            unsafe { ffi::PyBuffer_Release(&mut **view) };
        }
    }
}

/// Runs core work with the GIL released; core errors become exceptions.
pub fn detached<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> crate::Result<T> + Send,
) -> PyResult<T> {
    detached_with(py, work)?.map_err(PyErr::from)
}

/// Runs `work` with the GIL released. A panic inside becomes
/// `S4BackendError` instead of unwinding into the interpreter.
pub fn detached_with<T: Send>(py: Python<'_>, work: impl FnOnce() -> T + Send) -> PyResult<T> {
    panic_to_err(py.detach(|| catch_unwind(AssertUnwindSafe(work))))
}

/// Below this many bytes of work a call keeps the GIL: the work takes less
/// time than handing the GIL over and back (the `crc32c` package draws the
/// same line).
pub const DETACH_MIN_BYTES: usize = 32 << 10;

/// Runs core work over `bytes` bytes: with the GIL released from
/// `DETACH_MIN_BYTES` on, in place below. Either way a panic becomes
/// `S4BackendError` and core errors become exceptions.
pub fn sized<T: Send>(
    py: Python<'_>,
    bytes: usize,
    work: impl FnOnce() -> crate::Result<T> + Send,
) -> PyResult<T> {
    if bytes >= DETACH_MIN_BYTES {
        return detached(py, work);
    }
    panic_to_err(catch_unwind(AssertUnwindSafe(work)))?.map_err(PyErr::from)
}

fn panic_to_err<T>(result: std::thread::Result<T>) -> PyResult<T> {
    result.map_err(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        new_err(ErrorClass::Backend, format!("internal error: {what}"))
    })
}

/// Output memory handed to detached work; only that work touches it.
struct OutPtr(*mut MaybeUninit<u8>);
// SAFETY: the pointer refers to a fresh `bytes` object no other code can
// see until the work returns.
unsafe impl Send for OutPtr {}

/// Allocates a `bytes` object of `len` bytes and lets `fill` write all of
/// them, with the GIL released unless `len` is small (see [`sized`]).
/// Skips the zero-fill of `PyBytes::new_with`.
pub fn new_bytes_filled<'py>(
    py: Python<'py>,
    len: usize,
    fill: impl FnOnce(&mut [MaybeUninit<u8>]) -> crate::Result<()> + Send,
) -> PyResult<Bound<'py, PyBytes>> {
    try_new_bytes_filled(py, len, fill)?.ok_or_else(|| {
        pyo3::exceptions::PyMemoryError::new_err(format!("cannot allocate {len} bytes"))
    })
}

/// Like [`new_bytes_filled`], but `None` when the memory is not there, so
/// a caller that reserved on the strength of a claim can fall back to
/// growing its output instead of failing.
pub fn try_new_bytes_filled<'py>(
    py: Python<'py>,
    len: usize,
    fill: impl FnOnce(&mut [MaybeUninit<u8>]) -> crate::Result<()> + Send,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let Ok(size) = ffi::Py_ssize_t::try_from(len) else {
        return Ok(None);
    };
    // SAFETY: a null source asks CPython for an uninitialised buffer of `size`.
    let raw = unsafe { ffi::PyBytes_FromStringAndSize(std::ptr::null(), size) };
    if raw.is_null() {
        // Only a MemoryError can fail this call; it is dropped here.
        drop(PyErr::take(py));
        return Ok(None);
    }
    // SAFETY: a new, owned reference to a bytes object.
    let bytes = unsafe { Bound::from_owned_ptr(py, raw).cast_into_unchecked::<PyBytes>() };
    // SAFETY: PyBytes_AsString on a bytes object returns its data pointer.
    let out = OutPtr(unsafe { ffi::PyBytes_AsString(bytes.as_ptr()) }.cast());
    sized(py, len, move || {
        let out = out;
        // SAFETY: the buffer is `len` bytes long and exclusively ours.
        let dst = unsafe { std::slice::from_raw_parts_mut(out.0, len) };
        fill(dst)
    })?;
    Ok(Some(bytes))
}

/// Outputs at least this long are copied into their `bytes` with the GIL
/// released.
const DETACHED_COPY_MIN_BYTES: usize = 1 << 20;

/// A `bytes` holding `data`; large copies run with the GIL released.
pub fn bytes_from<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    if data.len() < DETACHED_COPY_MIN_BYTES {
        return Ok(PyBytes::new(py, data));
    }
    new_bytes_filled(py, data.len(), |dst| {
        // SAFETY: `dst` is exactly `data.len()` bytes and a fresh allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), dst.as_mut_ptr().cast(), data.len())
        };
        Ok(())
    })
}

/// A `dictionary=` argument, loaded (and checked) once for the call.
pub fn dictionary_arg(
    data: Option<ByteView<'_>>,
) -> PyResult<Option<std::sync::Arc<crate::codec::dict::ZstdDictionary>>> {
    data.map(|d| {
        Ok(std::sync::Arc::new(
            crate::codec::dict::ZstdDictionary::new(d.as_slice().to_vec())?,
        ))
    })
    .transpose()
}
