//! The one place where core errors become Python exceptions (FORMAT.md §10).

use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::error::Error;

create_exception!(
    s4_codec,
    S4Error,
    PyValueError,
    "Base class of S4 format errors."
);
create_exception!(
    s4_codec,
    S4CrcMismatchError,
    S4Error,
    "Decoded bytes fail the CRC32C check."
);
create_exception!(
    s4_codec,
    S4SizeMismatchError,
    S4Error,
    "Decoded output is shorter than the manifest claims."
);
create_exception!(
    s4_codec,
    S4CodecMismatchError,
    S4Error,
    "A manifest names another codec than the decoder's."
);
create_exception!(
    s4_codec,
    S4UnregisteredCodecError,
    S4Error,
    "The codec has no decoder in this build."
);
create_exception!(
    s4_codec,
    S4ManifestSizeExceedsLimitError,
    S4Error,
    "A manifest claims more than the size limit."
);
create_exception!(
    s4_codec,
    S4ManifestSizeMismatchError,
    S4Error,
    "A manifest's compressed size disagrees with the payload."
);
create_exception!(
    s4_codec,
    S4FrameError,
    S4Error,
    "An S4F2/S4P1 frame cannot be parsed."
);
create_exception!(
    s4_codec,
    S4IndexError,
    S4Error,
    "A .s4index sidecar cannot be parsed or written."
);
create_exception!(
    s4_codec,
    S4BackendError,
    PyRuntimeError,
    "The codec engine failed or refused an operation."
);
create_exception!(
    s4_codec,
    S4IoError,
    PyOSError,
    "The payload is not a valid stream for its codec."
);

/// The name of the Python class an error maps to (for doors that can only
/// pass text, such as the Polars plugin).
pub fn class_name(err: &Error) -> &'static str {
    match err {
        Error::CrcMismatch { .. } => "S4CrcMismatchError",
        Error::SizeMismatch { .. } => "S4SizeMismatchError",
        Error::CodecMismatch { .. } => "S4CodecMismatchError",
        Error::UnregisteredCodec(_) => "S4UnregisteredCodecError",
        Error::ManifestSizeExceedsLimit { .. } => "S4ManifestSizeExceedsLimitError",
        Error::ManifestSizeMismatch { .. } => "S4ManifestSizeMismatchError",
        Error::Io(_) => "S4IoError",
        Error::Backend(_) => "S4BackendError",
        Error::Frame(_) => "S4FrameError",
        Error::Index(_) => "S4IndexError",
        Error::OutOfMemory { .. } => "MemoryError",
        Error::At { source, .. } => class_name(source),
    }
}

/// Converts a core error into its Python exception; `context` (e.g.
/// "row 17") is put in front of the message.
pub fn to_py_err_at(err: Error, context: Option<&str>) -> PyErr {
    let msg = match context {
        Some(context) => format!("{context}: {err}"),
        None => err.to_string(),
    };
    new_err(&err, msg)
}

/// The exception of `err`'s class carrying `msg`.
fn new_err(err: &Error, msg: String) -> PyErr {
    match err {
        Error::CrcMismatch { .. } => S4CrcMismatchError::new_err(msg),
        Error::SizeMismatch { .. } => S4SizeMismatchError::new_err(msg),
        Error::CodecMismatch { .. } => S4CodecMismatchError::new_err(msg),
        Error::UnregisteredCodec(_) => S4UnregisteredCodecError::new_err(msg),
        Error::ManifestSizeExceedsLimit { .. } => S4ManifestSizeExceedsLimitError::new_err(msg),
        Error::ManifestSizeMismatch { .. } => S4ManifestSizeMismatchError::new_err(msg),
        Error::Io(_) => S4IoError::new_err(msg),
        Error::Backend(_) => S4BackendError::new_err(msg),
        Error::Frame(_) => S4FrameError::new_err(msg),
        Error::Index(_) => S4IndexError::new_err(msg),
        Error::OutOfMemory { .. } => pyo3::exceptions::PyMemoryError::new_err(msg),
        Error::At { source, .. } => new_err(source, msg),
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> Self {
        to_py_err_at(err, None)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("S4Error", py.get_type::<S4Error>())?;
    m.add("S4CrcMismatchError", py.get_type::<S4CrcMismatchError>())?;
    m.add("S4SizeMismatchError", py.get_type::<S4SizeMismatchError>())?;
    m.add(
        "S4CodecMismatchError",
        py.get_type::<S4CodecMismatchError>(),
    )?;
    m.add(
        "S4UnregisteredCodecError",
        py.get_type::<S4UnregisteredCodecError>(),
    )?;
    m.add(
        "S4ManifestSizeExceedsLimitError",
        py.get_type::<S4ManifestSizeExceedsLimitError>(),
    )?;
    m.add(
        "S4ManifestSizeMismatchError",
        py.get_type::<S4ManifestSizeMismatchError>(),
    )?;
    m.add("S4FrameError", py.get_type::<S4FrameError>())?;
    m.add("S4IndexError", py.get_type::<S4IndexError>())?;
    m.add("S4BackendError", py.get_type::<S4BackendError>())?;
    m.add("S4IoError", py.get_type::<S4IoError>())?;
    Ok(())
}
