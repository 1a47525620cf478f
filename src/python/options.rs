//! Argument checks for doors that build work before running it (Polars
//! expressions, Spark UDFs, DuckDB macros, table helpers), so a mistake
//! fails where it is written. They run the same `spec` functions as the
//! kernels, so the checks and the work cannot disagree.

use pyo3::prelude::*;

use super::buffers::{dictionary_arg, ByteView};
use crate::error::Error;
use crate::spec::{self, CellFormat, Levels, OnError};

#[pyfunction]
#[pyo3(signature = (codec = "zstd", level = None, format = "s4", dictionary = None, threads = None))]
pub fn check_compress_args(
    codec: Option<&str>,
    level: Option<i32>,
    format: &str,
    dictionary: Option<ByteView<'_>>,
    threads: Option<usize>,
) -> PyResult<()> {
    let codec = codec.ok_or_else(|| spec::unknown_codec(None))?;
    spec::encoder(codec, level, dictionary_arg(dictionary)?, Levels::Refuse)?;
    format.parse::<CellFormat>()?;
    spec::threads(threads)?;
    Ok(())
}

#[pyfunction]
#[pyo3(signature = (codec = None, format = "s4", dictionary = None, max_output_size = None, on_error = "raise", threads = None))]
pub fn check_decompress_args(
    codec: Option<&str>,
    format: &str,
    dictionary: Option<ByteView<'_>>,
    max_output_size: Option<i64>,
    on_error: &str,
    threads: Option<usize>,
) -> PyResult<()> {
    spec::decoder(format.parse()?, codec, dictionary_arg(dictionary)?)?;
    if let Some(negative) = max_output_size.filter(|&m| m < 0) {
        let msg = format!("max_output_size must be at least 0, got {negative}");
        return Err(Error::Argument(msg).into());
    }
    on_error.parse::<OnError>()?;
    spec::threads(threads)?;
    Ok(())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(check_compress_args, m)?)?;
    m.add_function(wrap_pyfunction!(check_decompress_args, m)?)
}
