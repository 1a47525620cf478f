//! The Arrow door: any `__arrow_c_array__` / `__arrow_c_stream__` object in
//! (zero-copy, through pyo3-arrow), the batch kernels, pyarrow arrays out.

use std::sync::Arc;

use arrow_array::builder::GenericByteViewBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::BinaryViewType;
use arrow_array::{
    Array, ArrayRef, GenericBinaryArray, GenericStringArray, OffsetSizeTrait, StructArray,
    UInt32Array, UInt64Array,
};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3_arrow::input::AnyArray;
use pyo3_arrow::{PyArray, PyChunkedArray};

use crate::batch::{
    self, lines, BinaryOutput, ByteColumn, CellFormat, Decode, OnError, RowError, Values,
};
use crate::codec::dict;
use crate::codec::{CodecKind, MAX_DECOMPRESSED_BYTES};
use crate::error::Error;
use crate::python::buffers::{detached, detached_with};
use crate::python::buffers::{dictionary_arg, ByteView};
use crate::spec::{self, Levels};
use pyo3::types::PyBytes;

/// An Arrow array of bytes or strings, seen as a [`ByteColumn`].
enum Cells<'a> {
    Binary(&'a GenericBinaryArray<i32>),
    LargeBinary(&'a GenericBinaryArray<i64>),
    BinaryView(&'a arrow_array::BinaryViewArray),
    Utf8(&'a GenericStringArray<i32>),
    LargeUtf8(&'a GenericStringArray<i64>),
    Utf8View(&'a arrow_array::StringViewArray),
}

/// The physical layout results keep: offset width, or views.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Small,
    Large,
    View,
}

impl<'a> Cells<'a> {
    /// Refuses anything but the six binary and string types.
    fn check_type(data_type: &DataType) -> PyResult<()> {
        match data_type {
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View => Ok(()),
            other => Err(PyTypeError::new_err(format!(
                "expected a binary or string array (binary, large_binary, binary_view, \
                 string, large_string, string_view), got {other}"
            ))),
        }
    }

    fn new(array: &'a dyn Array) -> PyResult<Self> {
        Self::check_type(array.data_type())?;
        Ok(match array.data_type() {
            DataType::Binary => Cells::Binary(array.as_binary()),
            DataType::LargeBinary => Cells::LargeBinary(array.as_binary()),
            DataType::BinaryView => Cells::BinaryView(array.as_binary_view()),
            DataType::Utf8 => Cells::Utf8(array.as_string()),
            DataType::LargeUtf8 => Cells::LargeUtf8(array.as_string()),
            _ => Cells::Utf8View(array.as_string_view()),
        })
    }

    fn layout(&self) -> Layout {
        match self {
            Cells::Binary(_) | Cells::Utf8(_) => Layout::Small,
            Cells::LargeBinary(_) | Cells::LargeUtf8(_) => Layout::Large,
            Cells::BinaryView(_) | Cells::Utf8View(_) => Layout::View,
        }
    }
}

impl ByteColumn for Cells<'_> {
    fn len(&self) -> usize {
        match self {
            Cells::Binary(a) => a.len(),
            Cells::LargeBinary(a) => a.len(),
            Cells::BinaryView(a) => a.len(),
            Cells::Utf8(a) => a.len(),
            Cells::LargeUtf8(a) => a.len(),
            Cells::Utf8View(a) => a.len(),
        }
    }

    fn value(&self, row: usize) -> Option<&[u8]> {
        match self {
            Cells::Binary(a) => a.is_valid(row).then(|| a.value(row)),
            Cells::LargeBinary(a) => a.is_valid(row).then(|| a.value(row)),
            Cells::BinaryView(a) => a.is_valid(row).then(|| a.value(row)),
            Cells::Utf8(a) => a.is_valid(row).then(|| a.value(row).as_bytes()),
            Cells::LargeUtf8(a) => a.is_valid(row).then(|| a.value(row).as_bytes()),
            Cells::Utf8View(a) => a.is_valid(row).then(|| a.value(row).as_bytes()),
        }
    }
}

/// Why a kernel over one array failed.
enum KernelError {
    Py(PyErr),
    Row(RowError),
}

impl From<PyErr> for KernelError {
    fn from(err: PyErr) -> Self {
        KernelError::Py(err)
    }
}

impl From<RowError> for KernelError {
    fn from(err: RowError) -> Self {
        KernelError::Row(err)
    }
}

impl KernelError {
    /// The Python exception, with rows counted from the start of the input.
    fn into_py(self, first_row: usize) -> PyErr {
        match self {
            KernelError::Py(err) => err,
            KernelError::Row(err) => err.located(first_row).into(),
        }
    }
}

/// Checks every valid row is UTF-8: an error for the first bad row, or the
/// row turned null. A nulled row's bytes are blanked (NUL is UTF-8), since
/// a string array's whole values buffer must be valid UTF-8.
fn validate_utf8(out: &mut BinaryOutput, on_error: OnError) -> Result<(), KernelError> {
    let mut row = 0;
    for chunk in &mut out.chunks {
        let mut start = 0;
        for (&end, valid) in chunk.ends.iter().zip(chunk.valid.iter_mut()) {
            let value = &mut chunk.values[start..end];
            if *valid && std::str::from_utf8(value).is_err() {
                if on_error == OnError::Raise {
                    // An argument error: a ValueError, located like any other row's.
                    let error =
                        Error::argument("decompressed value is not valid UTF-8 (as_string=True)");
                    return Err(KernelError::Row(RowError { row, error }));
                }
                value.fill(0);
                *valid = false;
            }
            start = end;
            row += 1;
        }
    }
    Ok(())
}

fn offsets_array<O: OffsetSizeTrait>(
    out: BinaryOutput,
    utf8: bool,
    threads: usize,
) -> PyResult<ArrayRef> {
    let joined = out.concat(threads).map_err(PyErr::from)?;
    let offsets = joined
        .offsets
        .iter()
        .map(|&o| O::from_usize(o as usize))
        .collect::<Option<Vec<O>>>()
        .ok_or_else(|| {
            PyValueError::new_err(
                "result exceeds 2 GiB, the limit of binary/string arrays: pass large_binary \
                 (or large_string) input",
            )
        })?;
    let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
    let values = arrow_buffer(joined.values);
    let nulls = joined.validity.map(NullBuffer::from);
    Ok(if utf8 {
        // SAFETY: offsets are monotonic and within `values`; every valid row
        // was checked to be UTF-8 by `validate_utf8`.
        Arc::new(unsafe { GenericStringArray::<O>::new_unchecked(offsets, values, nulls) })
    } else {
        Arc::new(GenericBinaryArray::<O>::try_new(offsets, values, nulls).map_err(arrow_err)?)
    })
}

/// Builds a view array over the chunks' buffers, without joining them.
fn view_array(out: BinaryOutput, utf8: bool) -> PyResult<ArrayRef> {
    let mut builder = GenericByteViewBuilder::<BinaryViewType>::with_capacity(out.len());
    for chunk in out.chunks {
        let mut start = 0usize;
        let block =
            (!chunk.values.is_empty()).then(|| builder.append_block(arrow_buffer(chunk.values)));
        for (&end, &valid) in chunk.ends.iter().zip(&chunk.valid) {
            if !valid {
                builder.append_null();
            } else if let Some(block) = block {
                let (offset, len) = (u32::try_from(start), u32::try_from(end - start));
                let (Ok(offset), Ok(len)) = (offset, len) else {
                    return Err(PyValueError::new_err("a binary_view buffer exceeds 4 GiB"));
                };
                builder
                    .try_append_view(block, offset, len)
                    .map_err(arrow_err)?;
            } else {
                builder.append_value([]);
            }
            start = end;
        }
    }
    let binary = builder.finish();
    Ok(if utf8 {
        // SAFETY: every valid row was checked to be UTF-8 by `validate_utf8`.
        Arc::new(unsafe { binary.to_string_view_unchecked() })
    } else {
        Arc::new(binary)
    })
}

/// An Arrow buffer owning `values` (a pooled block goes back to the pool
/// when Arrow frees it, from whatever thread).
fn arrow_buffer(values: Values) -> Buffer {
    match values {
        Values::Heap(heap) => Buffer::from_vec(heap),
        Values::Block(block) => {
            let (ptr, len) = (block.as_ptr(), block.len());
            // SAFETY: the block owns `len` written bytes at `ptr` and stays
            // alive, unchanged, as long as the buffer holds it.
            unsafe { Buffer::from_custom_allocation(ptr, len, Arc::new(block)) }
        }
    }
}

fn to_array(out: BinaryOutput, layout: Layout, utf8: bool, threads: usize) -> PyResult<ArrayRef> {
    match layout {
        Layout::Small => offsets_array::<i32>(out, utf8, threads),
        Layout::Large => offsets_array::<i64>(out, utf8, threads),
        Layout::View => view_array(out, utf8),
    }
}

fn arrow_err(err: arrow_schema::ArrowError) -> PyErr {
    PyValueError::new_err(err.to_string())
}

/// Applies `kernel` to every array of the input (one, or a stream's chunks)
/// and returns a pyarrow Array or ChunkedArray to match. `output_type` maps
/// the input type to the result's, which an empty stream still needs.
fn map_arrays<'py>(
    py: Python<'py>,
    values: AnyArray,
    output_type: impl Fn(&DataType) -> DataType,
    kernel: impl Fn(&dyn Array) -> Result<ArrayRef, KernelError>,
) -> PyResult<Bound<'py, PyAny>> {
    let single = matches!(values, AnyArray::Array(_));
    let chunked = values.into_chunked_array()?;
    let (chunks, input_field) = chunked.into_inner();
    let mut results = Vec::with_capacity(chunks.len());
    let mut first_row = 0;
    for chunk in &chunks {
        results.push(kernel(chunk.as_ref()).map_err(|e| e.into_py(first_row))?);
        first_row += chunk.len();
    }
    if single && results.len() == 1 {
        let array = results.pop().expect("one result");
        let array = PyArray::from_array_ref(array);
        let exported = array.to_pyarrow(py)?.unbind();
        return Ok(exported.into_bound(py));
    }
    if chunks.is_empty() {
        // No kernel ran to say it: a bad input type is still refused.
        Cells::check_type(input_field.data_type())?;
    }
    let field = Arc::new(Field::new("", output_type(input_field.data_type()), true));
    PyChunkedArray::try_new(results, field)?.into_pyarrow(py)
}

/// The binary (or, for text results, string) type of `input`'s layout.
fn bytes_type(input: &DataType, utf8: bool) -> DataType {
    match (input, utf8) {
        (DataType::LargeBinary | DataType::LargeUtf8, false) => DataType::LargeBinary,
        (DataType::LargeBinary | DataType::LargeUtf8, true) => DataType::LargeUtf8,
        (DataType::BinaryView | DataType::Utf8View, false) => DataType::BinaryView,
        (DataType::BinaryView | DataType::Utf8View, true) => DataType::Utf8View,
        (_, false) => DataType::Binary,
        (_, true) => DataType::Utf8,
    }
}

fn frame_info_fields() -> Vec<Field> {
    vec![
        Field::new("codec", DataType::Utf8, true),
        Field::new("original_size", DataType::UInt64, true),
        Field::new("compressed_size", DataType::UInt64, true),
        Field::new("crc32c", DataType::UInt32, true),
    ]
}

type KernelResult = Result<ArrayRef, KernelError>;

/// Compresses every value; see `s4_codec.arrow.compress`.
#[pyfunction]
#[pyo3(signature = (values, codec = "zstd", level = None, format = "s4", threads = None, dictionary = None))]
pub fn arrow_compress<'py>(
    py: Python<'py>,
    values: AnyArray,
    codec: Option<&str>,
    level: Option<i32>,
    format: &str,
    threads: Option<usize>,
    dictionary: Option<ByteView<'py>>,
) -> PyResult<Bound<'py, PyAny>> {
    let codec = codec.ok_or_else(|| spec::unknown_codec(None))?;
    let codec = spec::encoder(codec, level, dictionary_arg(dictionary)?, Levels::Refuse)?;
    let format: CellFormat = format.parse()?;
    let threads = spec::threads(threads)?;
    let output_type = |input: &DataType| bytes_type(input, false);
    map_arrays(py, values, output_type, |array| -> KernelResult {
        let cells = Cells::new(array)?;
        let layout = cells.layout();
        // Assembling the array (joining chunk buffers) is plain Rust: it runs
        // with the GIL released too.
        detached_with(py, || -> KernelResult {
            let out = batch::compress(&cells, &codec, format, threads)?;
            Ok(to_array(out, layout, false, threads)?)
        })?
    })
}

/// Decompresses every value; see `s4_codec.arrow.decompress`.
#[pyfunction]
#[pyo3(signature = (values, codec = None, format = "s4", max_output_size = None, on_error = "raise", as_string = false, threads = None, dictionary = None))]
#[allow(clippy::too_many_arguments)]
pub fn arrow_decompress<'py>(
    py: Python<'py>,
    values: AnyArray,
    codec: Option<&str>,
    format: &str,
    max_output_size: Option<u64>,
    on_error: &str,
    as_string: bool,
    threads: Option<usize>,
    dictionary: Option<ByteView<'py>>,
) -> PyResult<Bound<'py, PyAny>> {
    let format: CellFormat = format.parse()?;
    let dict = dictionary_arg(dictionary)?;
    let codec = spec::decoder(format, codec, dict.clone())?;
    let spec = Decode {
        format,
        codec,
        max_output_size: max_output_size.unwrap_or(MAX_DECOMPRESSED_BYTES),
        on_error: on_error.parse()?,
        dict,
    };
    let threads = spec::threads(threads)?;
    let output_type = |input: &DataType| bytes_type(input, as_string);
    map_arrays(py, values, output_type, |array| -> KernelResult {
        let cells = Cells::new(array)?;
        let layout = cells.layout();
        detached_with(py, || -> KernelResult {
            let mut out = batch::decompress(&cells, &spec, threads)?;
            if as_string {
                validate_utf8(&mut out, spec.on_error)?;
            }
            Ok(to_array(out, layout, as_string, threads)?)
        })?
    })
}

/// CRC32C of every value as a uint32 array; see `s4_codec.arrow.crc32c`.
#[pyfunction]
#[pyo3(signature = (values, threads = None))]
pub fn arrow_crc32c<'py>(
    py: Python<'py>,
    values: AnyArray,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let threads = spec::threads(threads)?;
    map_arrays(
        py,
        values,
        |_| DataType::UInt32,
        |array| -> KernelResult {
            let cells = Cells::new(array)?;
            let crcs = detached_with(py, || batch::crc32c(&cells, threads))?;
            Ok(Arc::new(UInt32Array::from(crcs)))
        },
    )
}

/// Frame headers of every S4 cell as a struct array; see
/// `s4_codec.arrow.frame_info`.
#[pyfunction]
#[pyo3(signature = (values, on_error = "raise"))]
pub fn arrow_frame_info<'py>(
    py: Python<'py>,
    values: AnyArray,
    on_error: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let on_error: OnError = on_error.parse()?;
    let output_type = |_: &DataType| DataType::Struct(frame_info_fields().into());
    map_arrays(py, values, output_type, |array| -> KernelResult {
        let cells = Cells::new(array)?;
        detached_with(py, || -> KernelResult {
            let infos = batch::frame_info(&cells, on_error)?;
            let codec: arrow_array::StringArray = infos
                .iter()
                .map(|i| i.map(|i| i.codec.map_or("mixed", CodecKind::name)))
                .collect();
            let original: UInt64Array = infos.iter().map(|i| i.map(|i| i.original_size)).collect();
            let compressed: UInt64Array =
                infos.iter().map(|i| i.map(|i| i.compressed_size)).collect();
            let crc: UInt32Array = infos.iter().map(|i| i.map(|i| i.crc32c)).collect();
            let valid = NullBuffer::from(infos.iter().map(Option::is_some).collect::<Vec<_>>());
            let columns: Vec<ArrayRef> = vec![
                Arc::new(codec),
                Arc::new(original),
                Arc::new(compressed),
                Arc::new(crc),
            ];
            let nulls = (valid.null_count() > 0).then_some(valid);
            let array = StructArray::try_new(frame_info_fields().into(), columns, nulls)
                .map_err(arrow_err)?;
            Ok(Arc::new(array))
        })?
    })
}

/// Samples laid end to end, borrowed when the column already stores them so.
fn column_samples(array: &dyn Array) -> PyResult<(std::borrow::Cow<'_, [u8]>, Vec<usize>)> {
    fn contiguous<'a, O: OffsetSizeTrait>(
        values: &'a [u8],
        offsets: &[O],
    ) -> (std::borrow::Cow<'a, [u8]>, Vec<usize>) {
        let (first, last) = (offsets[0].as_usize(), offsets[offsets.len() - 1].as_usize());
        let sizes = offsets
            .windows(2)
            .map(|w| w[1].as_usize() - w[0].as_usize())
            .collect();
        (std::borrow::Cow::Borrowed(&values[first..last]), sizes)
    }
    Ok(match Cells::new(array)? {
        // Null slots span no bytes, so the values buffer is the samples.
        Cells::Binary(a) => contiguous(a.value_data(), a.value_offsets()),
        Cells::LargeBinary(a) => contiguous(a.value_data(), a.value_offsets()),
        Cells::Utf8(a) => contiguous(a.value_data(), a.value_offsets()),
        Cells::LargeUtf8(a) => contiguous(a.value_data(), a.value_offsets()),
        cells => {
            let values: Vec<&[u8]> = (0..cells.len()).filter_map(|i| cells.value(i)).collect();
            let sizes = values.iter().map(|v| v.len()).collect();
            (std::borrow::Cow::Owned(values.concat()), sizes)
        }
    })
}

/// Trains a structured zstd dictionary from a list of bytes-likes or an
/// Arrow/Polars binary column (read in place where it is one buffer).
#[pyfunction]
#[pyo3(signature = (samples, size = 112_640))]
pub fn train_dictionary<'py>(
    py: Python<'py>,
    samples: &Bound<'py, PyAny>,
    size: usize,
) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    let is_arrow =
        samples.hasattr("__arrow_c_array__")? || samples.hasattr("__arrow_c_stream__")?;
    let dictionary = if is_arrow {
        let chunked = samples.extract::<AnyArray>()?.into_chunked_array()?;
        let (chunks, _) = chunked.into_inner();
        let mut joined: Option<(Vec<u8>, Vec<usize>)> = None;
        let mut single = None;
        for chunk in &chunks {
            let (values, sizes) = column_samples(chunk.as_ref())?;
            if chunks.len() == 1 {
                single = Some((values.into_owned(), sizes));
                break;
            }
            let acc = joined.get_or_insert_with(Default::default);
            acc.0.extend_from_slice(&values);
            acc.1.extend(sizes);
        }
        let (values, sizes) = single.or(joined).unwrap_or_default();
        detached(py, || dict::train(&values, &sizes, size))?
    } else {
        let views: Vec<ByteView> = samples
            .try_iter()?
            .map(|item| item?.extract::<ByteView>())
            .collect::<PyResult<_>>()?;
        let sizes: Vec<usize> = views.iter().map(|v| v.as_slice().len()).collect();
        let values: Vec<u8> = views
            .iter()
            .flat_map(|v| v.as_slice().iter().copied())
            .collect();
        detached(py, || dict::train(&values, &sizes, size))?
    };
    Ok(pyo3::types::PyBytes::new(py, &dictionary))
}

/// Cuts `carry` + `data` into lines; see `batch::lines::split`. Returns a
/// pyarrow string (or, with `binary`, binary) array of the lines and the
/// unfinished rest. A line that is not UTF-8 is refused with its place:
/// `origin` is the original offset of `data[0]` in the object `name`.
#[pyfunction]
#[pyo3(signature = (data, carry = None, *, last = false, binary = false, origin = 0, name = None))]
pub fn split_lines<'py>(
    py: Python<'py>,
    data: ByteView<'py>,
    carry: Option<ByteView<'py>>,
    last: bool,
    binary: bool,
    origin: u64,
    name: Option<&str>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyBytes>)> {
    let (data, carry_bytes) = (
        data.as_slice(),
        carry.as_ref().map_or(&[][..], |c| c.as_slice()),
    );
    let (lines, bad) = detached(py, || {
        let lines = lines::split(carry_bytes, data, last)?;
        let bad = if binary {
            None
        } else {
            lines.first_invalid_utf8()
        };
        Ok((lines, bad))
    })?;
    if let Some(row) = bad {
        let start = line_start(carry_bytes.len(), data, row, origin);
        let name = name.map_or(String::new(), |n| format!("{n}: "));
        return Err(PyValueError::new_err(format!(
            "{name}the line at original byte {start} is not valid UTF-8; read the lines as \
             binary instead"
        )));
    }
    let rest = PyBytes::new(py, &lines.rest);
    let offsets = lines
        .offsets
        .iter()
        .map(|&o| i32::try_from(o).ok())
        .collect::<Option<Vec<i32>>>()
        .ok_or_else(|| PyValueError::new_err("lines of over 2 GiB in one piece"))?;
    let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
    let values = Buffer::from_vec(lines.values);
    let array: ArrayRef = if binary {
        Arc::new(GenericBinaryArray::<i32>::try_new(offsets, values, None).map_err(arrow_err)?)
    } else {
        // SAFETY: offsets are monotonic within `values`, checked UTF-8 above.
        Arc::new(unsafe { GenericStringArray::<i32>::new_unchecked(offsets, values, None) })
    };
    let array = PyArray::from_array_ref(array).to_pyarrow(py)?.unbind();
    Ok((array.into_bound(py), rest))
}

/// The original offset where line `row` of `carry` + `data` starts.
fn line_start(carry: usize, data: &[u8], row: usize, origin: u64) -> u64 {
    match row.checked_sub(1) {
        None => origin.saturating_sub(carry as u64),
        Some(previous) => memchr::memchr_iter(b'\n', data)
            .nth(previous)
            .map_or(origin, |end| origin + end as u64 + 1),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(train_dictionary, m)?)?;
    m.add_function(wrap_pyfunction!(arrow_compress, m)?)?;
    m.add_function(wrap_pyfunction!(arrow_decompress, m)?)?;
    m.add_function(wrap_pyfunction!(arrow_crc32c, m)?)?;
    m.add_function(wrap_pyfunction!(arrow_frame_info, m)?)?;
    m.add_function(wrap_pyfunction!(split_lines, m)?)?;
    Ok(())
}
