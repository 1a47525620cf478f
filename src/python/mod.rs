//! The compiled module `s4_codec._internal`. Doors only convert and dispatch.

pub(crate) mod buffers;
mod codecs;
pub(crate) mod errors;
mod objects;
mod options;
mod ranges;
mod scalar;

use pyo3::prelude::*;

/// Adds the scalar classes, object functions and exception classes.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    codecs::register(m)?;
    m.add_function(wrap_pyfunction!(scalar::crc32c, m)?)?;
    m.add_function(wrap_pyfunction!(scalar::crc32c_combine, m)?)?;
    m.add_function(wrap_pyfunction!(scalar::gpu_available, m)?)?;
    m.add_function(wrap_pyfunction!(scalar::decompress_raw, m)?)?;
    objects::register(m)?;
    options::register(m)?;
    ranges::register(m)?;
    Ok(())
}
