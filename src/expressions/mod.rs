//! The Polars door: expression plugins (`pl.col("blob").s4.compress()`)
//! running the shared batch kernels on Polars' BinaryView chunks. Polars
//! calls these without the GIL; nothing here touches Python objects.

use polars::prelude::*;
use polars_buffer::Buffer;
use pyo3_polars::derive::polars_expr;
use pyo3_polars::export::polars_arrow::array::{Array as _, BinaryViewArray, View};
use pyo3_polars::export::polars_arrow::bitmap::Bitmap;
use pyo3_polars::export::polars_arrow::datatypes::ArrowDataType;
use serde::Deserialize;

use crate::batch::{self, BinaryOutput, ByteColumn, Decode, OnError, RowError, Values};
use std::sync::Arc;

use crate::codec::dict::ZstdDictionary;
use crate::codec::MAX_DECOMPRESSED_BYTES;
use crate::spec::{self, Levels};

struct ViewCells<'a>(&'a BinaryViewArray);

impl ByteColumn for ViewCells<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn value(&self, row: usize) -> Option<&[u8]> {
        self.0.is_valid(row).then(|| self.0.value(row))
    }
}

fn compute_err(msg: impl Into<String>) -> PolarsError {
    PolarsError::ComputeError(msg.into().into())
}

/// `S4CrcMismatchError: row 17: crc32c mismatch: ...`, rows counted from
/// the start of the series.
fn row_err(err: RowError, first_row: usize) -> PolarsError {
    let err = err.located(first_row);
    compute_err(format!("{}: {err}", err.class().name()))
}

/// Refuses every input type but Binary, String and Null (all nulls), naming
/// the type it got.
fn check_input_type(dtype: &DataType) -> PolarsResult<()> {
    match dtype {
        DataType::Binary | DataType::String | DataType::Null => Ok(()),
        other => {
            // `Debug` names the type (`Categorical(..)`, `Int128`, ...);
            // `Display` gives its short form (`cat`, `i128`, ...).
            let debug = format!("{other:?}");
            let name = debug.split(['(', '{', ' ']).next().unwrap_or(&debug);
            Err(compute_err(format!(
                "TypeError: s4 expressions take a Binary or String column, got {name} ({other})"
            )))
        }
    }
}

fn bytes_of(series: &Series) -> PolarsResult<BinaryChunked> {
    check_input_type(series.dtype())?;
    match series.dtype() {
        DataType::Binary => Ok(series.binary()?.clone()),
        DataType::String => Ok(series.str()?.as_binary()),
        _ => Ok(BinaryChunked::full_null(
            series.name().clone(),
            series.len(),
        )),
    }
}

/// The output field of an expression over `input_fields[0]`: checked at
/// plan time, so a wrong column type fails before any data is read.
fn output_field(input_fields: &[Field], dtype: DataType) -> PolarsResult<Field> {
    let input = input_fields
        .first()
        .ok_or_else(|| compute_err("s4 expressions take one column"))?;
    check_input_type(input.dtype())?;
    Ok(Field::new(input.name().clone(), dtype))
}

fn binary_field(input_fields: &[Field]) -> PolarsResult<Field> {
    output_field(input_fields, DataType::Binary)
}

fn string_field(input_fields: &[Field]) -> PolarsResult<Field> {
    output_field(input_fields, DataType::String)
}

fn crc32c_field(input_fields: &[Field]) -> PolarsResult<Field> {
    output_field(input_fields, DataType::UInt32)
}

/// Builds a BinaryView array over the kernel's chunk buffers (no joining).
fn view_array(out: BinaryOutput) -> PolarsResult<BinaryViewArray> {
    let rows = out.len();
    let mut views = Vec::with_capacity(rows);
    let mut buffers: Vec<Buffer<u8>> = Vec::with_capacity(out.chunks.len());
    let mut validity = Vec::with_capacity(rows);
    for chunk in out.chunks {
        if u32::try_from(chunk.values.len()).is_err() {
            return Err(compute_err(
                "S4BackendError: an output buffer exceeds 4 GiB",
            ));
        }
        let index = buffers.len() as u32;
        let mut start = 0usize;
        for (&end, &valid) in chunk.ends.iter().zip(&chunk.valid) {
            views.push(if valid {
                View::new_from_bytes(&chunk.values[start..end], index, start as u32)
            } else {
                View::default()
            });
            validity.push(valid);
            start = end;
        }
        buffers.push(match chunk.values {
            Values::Heap(heap) => Buffer::from(heap),
            // A pooled block goes back to the pool when Polars frees it.
            Values::Block(block) => Buffer::from_owner(block),
        });
    }
    let validity = validity
        .contains(&false)
        .then(|| Bitmap::from_iter(validity));
    BinaryViewArray::try_new(
        ArrowDataType::BinaryView,
        views.into(),
        buffers.into(),
        validity,
    )
}

/// Runs `kernel` on every chunk of `series` and collects a Binary series.
fn map_chunks(
    series: &Series,
    kernel: impl Fn(&ViewCells) -> Result<BinaryOutput, RowError>,
) -> PolarsResult<BinaryChunked> {
    let input = bytes_of(series)?;
    let mut first_row = 0;
    let mut chunks = Vec::with_capacity(input.chunks().len());
    for array in input.downcast_iter() {
        let out = kernel(&ViewCells(array)).map_err(|e| row_err(e, first_row))?;
        chunks.push(view_array(out)?);
        first_row += array.len();
    }
    Ok(BinaryChunked::from_chunk_iter(
        series.name().clone(),
        chunks,
    ))
}

/// `S4IndexError: ...`: Polars errors carry text, so the class leads it.
fn parsed<T>(result: crate::Result<T>) -> PolarsResult<T> {
    result.map_err(|e| compute_err(format!("{}: {e}", e.class().name())))
}

/// A dictionary travels as hex: plugin kwargs are pickled, and hex keeps the
/// decoding on both sides trivial.
fn dictionary(hex: Option<&str>) -> PolarsResult<Option<Arc<ZstdDictionary>>> {
    let Some(hex) = hex else { return Ok(None) };
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| compute_err("ValueError: dictionary is not valid hex"))?;
    parsed(ZstdDictionary::new(bytes)).map(|d| Some(Arc::new(d)))
}

#[derive(Deserialize)]
struct CompressKwargs {
    codec: String,
    level: Option<i32>,
    format: String,
    dictionary: Option<String>,
    threads: Option<usize>,
}

#[polars_expr(output_type_func = binary_field)]
fn s4_compress(inputs: &[Series], kwargs: CompressKwargs) -> PolarsResult<Series> {
    let dict = dictionary(kwargs.dictionary.as_deref())?;
    let codec = parsed(spec::encoder(
        &kwargs.codec,
        kwargs.level,
        dict,
        Levels::Refuse,
    ))?;
    let format = parsed(kwargs.format.parse())?;
    let threads = parsed(spec::threads(kwargs.threads))?;
    let out = map_chunks(&inputs[0], |cells| {
        batch::compress(cells, &codec, format, threads)
    })?;
    Ok(out.into_series())
}

#[derive(Deserialize)]
struct DecompressKwargs {
    codec: Option<String>,
    format: String,
    max_output_size: Option<u64>,
    on_error: String,
    dictionary: Option<String>,
    threads: Option<usize>,
}

impl DecompressKwargs {
    fn spec(&self) -> PolarsResult<Decode> {
        let format = parsed(self.format.parse())?;
        let dict = dictionary(self.dictionary.as_deref())?;
        let codec = parsed(spec::decoder(format, self.codec.as_deref(), dict.clone()))?;
        Ok(Decode {
            format,
            codec,
            max_output_size: self.max_output_size.unwrap_or(MAX_DECOMPRESSED_BYTES),
            on_error: parsed(self.on_error.parse())?,
            dict,
        })
    }
}

fn decompress_binary(
    series: &Series,
    kwargs: &DecompressKwargs,
) -> PolarsResult<(BinaryChunked, Decode)> {
    let spec = kwargs.spec()?;
    let threads = parsed(spec::threads(kwargs.threads))?;
    let out = map_chunks(series, |cells| batch::decompress(cells, &spec, threads))?;
    Ok((out, spec))
}

#[polars_expr(output_type_func = binary_field)]
fn s4_decompress(inputs: &[Series], kwargs: DecompressKwargs) -> PolarsResult<Series> {
    Ok(decompress_binary(&inputs[0], &kwargs)?.0.into_series())
}

#[polars_expr(output_type_func = string_field)]
fn s4_decompress_str(inputs: &[Series], kwargs: DecompressKwargs) -> PolarsResult<Series> {
    let (binary, spec) = decompress_binary(&inputs[0], &kwargs)?;
    // Validate per row so that `on_error="null"` can null just the bad rows.
    let strings: StringChunked = binary
        .iter()
        .enumerate()
        .map(|(row, value)| match value.map(std::str::from_utf8) {
            None => Ok(None),
            Some(Ok(text)) => Ok(Some(text)),
            Some(Err(_)) if spec.on_error == OnError::Null => Ok(None),
            Some(Err(_)) => Err(compute_err(format!(
                "ValueError: row {row}: decompressed value is not valid UTF-8 (as_string=True)"
            ))),
        })
        .collect::<PolarsResult<_>>()?;
    Ok(strings.with_name(inputs[0].name().clone()).into_series())
}

#[derive(Deserialize)]
struct Crc32cKwargs {
    threads: Option<usize>,
}

#[polars_expr(output_type_func = crc32c_field)]
fn s4_crc32c(inputs: &[Series], kwargs: Crc32cKwargs) -> PolarsResult<Series> {
    let input = bytes_of(&inputs[0])?;
    let threads = parsed(spec::threads(kwargs.threads))?;
    let crcs: Vec<Option<u32>> = input
        .downcast_iter()
        .flat_map(|array| batch::crc32c(&ViewCells(array), threads))
        .collect();
    Ok(UInt32Chunked::from_iter_options(inputs[0].name().clone(), crcs.into_iter()).into_series())
}

fn frame_info_fields() -> Vec<Field> {
    vec![
        Field::new("codec".into(), DataType::String),
        Field::new("original_size".into(), DataType::UInt64),
        Field::new("compressed_size".into(), DataType::UInt64),
        Field::new("crc32c".into(), DataType::UInt32),
    ]
}

fn frame_info_type(input_fields: &[Field]) -> PolarsResult<Field> {
    output_field(input_fields, DataType::Struct(frame_info_fields()))
}

#[derive(Deserialize)]
struct FrameInfoKwargs {
    on_error: String,
}

#[polars_expr(output_type_func = frame_info_type)]
fn s4_frame_info(inputs: &[Series], kwargs: FrameInfoKwargs) -> PolarsResult<Series> {
    let on_error = parsed(kwargs.on_error.parse())?;
    let input = bytes_of(&inputs[0])?;
    let mut infos = Vec::with_capacity(input.len());
    let mut first_row = 0;
    for array in input.downcast_iter() {
        let chunk =
            batch::frame_info(&ViewCells(array), on_error).map_err(|e| row_err(e, first_row))?;
        infos.extend(chunk);
        first_row += array.len();
    }
    let codec: StringChunked = infos
        .iter()
        .map(|i| i.map(|i| i.codec.map_or("mixed", crate::CodecKind::name)))
        .collect();
    let original: UInt64Chunked = infos.iter().map(|i| i.map(|i| i.original_size)).collect();
    let compressed: UInt64Chunked = infos.iter().map(|i| i.map(|i| i.compressed_size)).collect();
    let crc: UInt32Chunked = infos.iter().map(|i| i.map(|i| i.crc32c)).collect();
    let fields = [
        codec.with_name("codec".into()).into_series(),
        original.with_name("original_size".into()).into_series(),
        compressed.with_name("compressed_size".into()).into_series(),
        crc.with_name("crc32c".into()).into_series(),
    ];
    let mut out = StructChunked::from_series(inputs[0].name().clone(), infos.len(), fields.iter())?;
    if infos.iter().any(Option::is_none) {
        out = out.with_outer_validity(Some(Bitmap::from_iter(infos.iter().map(Option::is_some))));
    }
    Ok(out.into_series())
}
