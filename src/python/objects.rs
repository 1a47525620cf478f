//! Frames, objects, sidecars and dictionaries (FORMAT.md §6, §8, §9).

use std::collections::HashMap;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::buffers::{
    bytes_from, detached, detached_with, dictionary_arg, try_new_bytes_filled, ByteView,
};
use crate::error::Context;
use crate::s4::frame::{self, FrameHeader};
use crate::s4::index::{FrameIndex, IndexEntry, SseBinding};
use crate::s4::object;

fn header_dict<'py>(py: Python<'py>, header: &FrameHeader) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("codec", header.codec.name())?;
    dict.set_item("original_size", header.original_size)?;
    dict.set_item("compressed_size", header.compressed_size)?;
    dict.set_item("crc32c", header.crc32c)?;
    Ok(dict)
}

type FrameTriple<'py> = (Bound<'py, PyDict>, Bound<'py, PyBytes>, Bound<'py, PyBytes>);

/// Parses one S4F2 frame: `(header, payload, rest)`. Padding is not skipped.
#[pyfunction]
pub fn read_frame<'py>(py: Python<'py>, data: ByteView<'py>) -> PyResult<FrameTriple<'py>> {
    let (header, payload, rest) = frame::read_frame(data.as_slice())?;
    Ok((
        header_dict(py, &header)?,
        PyBytes::new(py, payload),
        PyBytes::new(py, rest),
    ))
}

/// Lazily yields `(header, payload)` for each data frame, skipping padding.
#[pyclass(module = "s4_codec")]
pub struct FrameIter {
    data: Py<PyAny>,
    pos: usize,
    done: bool,
}

#[pymethods]
impl FrameIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(
        mut slf: PyRefMut<'py, Self>,
        py: Python<'py>,
    ) -> PyResult<Option<(Bound<'py, PyDict>, Bound<'py, PyBytes>)>> {
        if slf.done {
            return Ok(None);
        }
        let view: ByteView = slf.data.bind(py).extract()?;
        let body = view.as_slice().get(slf.pos..).unwrap_or_default();
        let mut frames = frame::frames(body);
        match frames.next() {
            None => {
                slf.done = true;
                Ok(None)
            }
            Some(Err(err)) => {
                slf.done = true;
                Err(err.into())
            }
            Some(Ok((header, payload))) => {
                let item = (header_dict(py, &header)?, PyBytes::new(py, payload));
                slf.pos += body.len() - frames.remaining().len();
                Ok(Some(item))
            }
        }
    }
}

/// An iterator over the frames of an S4 object body.
#[pyfunction]
pub fn frame_iter(data: Bound<'_, PyAny>) -> PyResult<FrameIter> {
    let _: ByteView = data.extract()?; // fail now on a non-buffer
    Ok(FrameIter {
        data: data.unbind(),
        pos: 0,
        done: false,
    })
}

#[pyfunction]
pub fn pick_chunk_size(content_length: u64) -> u64 {
    object::pick_chunk_size(content_length)
}

/// Encodes `data` as the gateway's single-PUT path stores it.
#[pyfunction]
#[pyo3(signature = (data, codec = "cpu-zstd", level = 3, *, dictionary = None, threads = None))]
pub fn encode_s4_object<'py>(
    py: Python<'py>,
    data: ByteView<'py>,
    codec: &str,
    level: i32,
    dictionary: Option<ByteView<'py>>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let codec = crate::spec::object_encoder(codec, level, dictionary_arg(dictionary)?)?;
    let threads = crate::spec::threads(threads)?;
    let src = data.as_slice();
    let encoded = detached(py, || object::encode(src, &codec, threads))?;
    let out = PyDict::new(py);
    out.set_item("body", bytes_from(py, &encoded.body)?)?;
    out.set_item("sidecar", encoded.sidecar.map(|s| PyBytes::new(py, &s)))?;
    out.set_item("metadata", metadata_dict(py, encoded.metadata)?)?;
    Ok(out)
}

/// One multipart part as the gateway's UploadPart stores it: one S4F2 frame
/// of `data`, padded with S4P1 to 5 MiB when `data` is at least that long.
#[pyfunction]
#[pyo3(signature = (data, codec = "cpu-zstd", level = 3, *, dictionary = None))]
pub fn encode_s4_part<'py>(
    py: Python<'py>,
    data: ByteView<'py>,
    codec: &str,
    level: i32,
    dictionary: Option<ByteView<'py>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let codec = crate::spec::object_encoder(codec, level, dictionary_arg(dictionary)?)?;
    let src = data.as_slice();
    let part = detached(py, || object::encode_part(src, &codec))?;
    bytes_from(py, &part)
}

/// A frame's index, stored range and original range, for error messages.
type FramePlace = (usize, (u64, u64), (u64, u64));

/// The original bytes at the start of the frame `stored` begins with, from
/// as much of the frame as it holds (see `frame::decode_prefix`). Errors
/// name the object and the frame when `name` and `frame` =
/// `(index, stored range, original range)` are given.
#[pyfunction]
#[pyo3(signature = (stored, *, dictionary = None, name = None, frame = None))]
pub fn decode_frame_prefix<'py>(
    py: Python<'py>,
    stored: ByteView<'py>,
    dictionary: Option<ByteView<'py>>,
    name: Option<String>,
    frame: Option<FramePlace>,
) -> PyResult<Bound<'py, PyBytes>> {
    let dict = dictionary_arg(dictionary)?;
    let stored = stored.as_slice();
    let out = detached_with(py, || frame::decode_prefix(stored, dict.as_ref()))?;
    let out = out.map_err(|mut err| {
        if let Some((index, stored, original)) = frame {
            err = err.at(Context::Frame {
                index,
                stored,
                original,
            });
        }
        if let Some(name) = name {
            err = err.at(Context::Object(name));
        }
        PyErr::from(err)
    })?;
    Ok(PyBytes::new(py, &out))
}

/// The header at the start of `data` without its payload: a data frame's
/// header fields, or `{"padding": True}`; both with `stored_size`, the bytes
/// the frame occupies (header included).
#[pyfunction]
pub fn frame_header<'py>(py: Python<'py>, data: ByteView<'py>) -> PyResult<Bound<'py, PyDict>> {
    let (out, stored) = match frame::peek(data.as_slice())? {
        frame::Extent::Padding { stored } => {
            let out = PyDict::new(py);
            out.set_item("padding", true)?;
            (out, stored)
        }
        frame::Extent::Frame(header) => {
            let out = header_dict(py, &header)?;
            out.set_item("padding", false)?;
            (
                out,
                header.compressed_size + frame::FRAME_HEADER_BYTES as u64,
            )
        }
    };
    out.set_item("stored_size", stored)?;
    Ok(out)
}

fn layout_name(layout: object::Layout) -> &'static str {
    match layout {
        object::Layout::Framed => "framed",
        object::Layout::Whole => "whole",
        object::Layout::Plain => "plain",
    }
}

/// How the gateway's GET serves an object with `metadata` (FORMAT.md §8.5):
/// `"framed"`, `"whole"` (one payload described by the manifest) or
/// `"plain"`. `head`, the body's first bytes, decides only without metadata.
#[pyfunction]
#[pyo3(signature = (metadata = None, head = None))]
pub fn object_layout(
    metadata: Option<HashMap<String, String>>,
    head: Option<ByteView<'_>>,
) -> &'static str {
    let head = head.as_ref().map_or(&[][..], ByteView::as_slice);
    layout_name(object::layout(metadata.as_ref(), head))
}

/// What a reader opening an object learns from its metadata (or, without
/// any, from `head`, the body's first bytes): `(layout, original_size)`.
/// A framed object the metadata says is one frame reads `"whole"`;
/// `original_size` is `None` where the sidecar or the frames must tell.
#[pyfunction]
#[pyo3(signature = (metadata = None, head = None))]
pub fn open_layout(
    metadata: Option<HashMap<String, String>>,
    head: Option<ByteView<'_>>,
) -> (&'static str, Option<u64>) {
    let head = head.as_ref().map_or(&[][..], ByteView::as_slice);
    let (layout, size) = object::open_layout(metadata.as_ref(), head);
    (layout_name(layout), size)
}

/// The FORMAT name of the codec a writer is asked for (`zstd` is
/// `cpu-zstd`), refusing one whose objects `store`, which keeps no user
/// metadata unless `keeps_metadata`, could not tell from plain bytes.
#[pyfunction]
#[pyo3(signature = (codec, *, store = "this store", keeps_metadata = true))]
pub fn object_codec(codec: &str, store: &str, keeps_metadata: bool) -> PyResult<&'static str> {
    let kind = crate::spec::object_kind(codec)?;
    if !keeps_metadata && !object::readable_without_metadata(kind) {
        return Err(PyValueError::new_err(format!(
            "{store} keeps no object metadata, so a {} object written there could not be told \
             from plain bytes; use 'cpu-zstd' or 'passthrough'",
            kind.name()
        )));
    }
    Ok(kind.name())
}

type Metadata<'py> = Bound<'py, PyDict>;

fn metadata_dict<'py>(py: Python<'py>, pairs: Vec<(&str, String)>) -> PyResult<Metadata<'py>> {
    let dict = PyDict::new(py);
    for (key, value) in pairs {
        dict.set_item(key, value)?;
    }
    Ok(dict)
}

/// A multipart upload as the gateway stores it: `encode_part` frames each
/// part and records it; at completion `complete_metadata()` (sizes and the
/// composite `s4-logical-etag`) and `sidecar(stored_etag)` describe the
/// object. The format decisions live here; the writer only uploads.
#[pyclass(module = "s4_codec")]
pub struct MultipartLedger {
    ledger: object::MultipartLedger,
}

#[pymethods]
impl MultipartLedger {
    #[new]
    #[pyo3(signature = (codec = "cpu-zstd", level = 3, *, dictionary = None))]
    fn new(codec: &str, level: i32, dictionary: Option<ByteView<'_>>) -> PyResult<Self> {
        let codec = crate::spec::object_encoder(codec, level, dictionary_arg(dictionary)?)?;
        Ok(Self {
            ledger: object::MultipartLedger::new(codec),
        })
    }

    /// The next part's stored bytes (GIL released), recorded.
    fn encode_part<'py>(
        &mut self,
        py: Python<'py>,
        data: ByteView<'py>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let src = data.as_slice();
        let ledger = &mut self.ledger;
        let part = detached(py, || ledger.encode_part(src))?;
        bytes_from(py, &part)
    }

    #[getter]
    fn parts(&self) -> usize {
        self.ledger.parts()
    }

    #[getter]
    fn original_size(&self) -> u64 {
        self.ledger.original_size()
    }

    #[getter]
    fn stored_size(&self) -> u64 {
        self.ledger.stored_size()
    }

    /// The metadata an upload starts with (canonical codec name, multipart).
    fn upload_metadata<'py>(&self, py: Python<'py>) -> PyResult<Metadata<'py>> {
        metadata_dict(py, self.ledger.upload_metadata())
    }

    /// The metadata of the completed object, as the gateway stamps it.
    fn complete_metadata<'py>(&self, py: Python<'py>) -> PyResult<Metadata<'py>> {
        metadata_dict(py, self.ledger.complete_metadata())
    }

    /// The completed object's sidecar, bound to its stored size and ETag.
    #[pyo3(signature = (stored_etag = None))]
    fn sidecar<'py>(
        &self,
        py: Python<'py>,
        stored_etag: Option<&str>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.ledger.sidecar(stored_etag)?))
    }
}

/// Decodes a stored body as the gateway's GET would; optionally only the
/// original bytes `[start, end)` with the object's sidecar.
#[pyfunction]
#[pyo3(signature = (
    body, metadata = None, *, dictionary = None, threads = None, sidecar = None, start = None,
    end = None, max_output_size = crate::MAX_DECOMPRESSED_BYTES, body_offset = None,
    source_size = None, source_etag = None,
))]
#[allow(clippy::too_many_arguments)]
pub fn decode_s4_object<'py>(
    py: Python<'py>,
    body: ByteView<'py>,
    metadata: Option<HashMap<String, String>>,
    dictionary: Option<ByteView<'py>>,
    threads: Option<usize>,
    sidecar: Option<ByteView<'py>>,
    start: Option<u64>,
    end: Option<u64>,
    max_output_size: u64,
    body_offset: Option<u64>,
    source_size: Option<u64>,
    source_etag: Option<&str>,
) -> PyResult<Bound<'py, PyBytes>> {
    let dict = dictionary_arg(dictionary)?;
    let threads = crate::spec::threads(threads)?;
    let body = body.as_slice();
    let Some(sidecar) = sidecar else {
        if start.is_some() || end.is_some() || body_offset.is_some() {
            return Err(PyValueError::new_err(
                "start=, end= and body_offset= need sidecar=",
            ));
        }
        let get = object::Get::decide(body, metadata.as_ref(), dict.as_ref(), max_output_size)?;
        if let object::Get::Framed(plan) = &get {
            if plan.fits_ahead() {
                // Decode straight into the result: no copy, no second pass.
                let fill = |dst: &mut [_]| plan.decode_into(dst, threads);
                if let Some(bytes) = try_new_bytes_filled(py, plan.len(), fill)? {
                    return Ok(bytes);
                }
            }
        }
        let out = detached(py, || {
            let mut out = Vec::new();
            get.decode_append(body, &mut out, threads)?;
            Ok(out)
        })?;
        return bytes_from(py, &out);
    };
    let index = FrameIndex::decode(sidecar.as_slice())?;
    index.check_source(source_size, source_etag)?;
    let start = start.unwrap_or(0);
    let end = end.unwrap_or_else(|| index.total_original_size());
    let out = detached(py, || {
        object::decode_range(
            body,
            body_offset,
            &index,
            start,
            end,
            dict.as_ref(),
            max_output_size,
            threads,
        )
    })?;
    bytes_from(py, &out)
}

/// Which stored bytes hold original bytes `[start, end)`:
/// `(first_byte, last_byte_exclusive, skip)`.
#[pyfunction]
pub fn plan_range(sidecar: ByteView<'_>, start: u64, end: u64) -> PyResult<(u64, u64, u64)> {
    Ok(FrameIndex::decode(sidecar.as_slice())?.plan_range(start, end)?)
}

/// Parses a `.s4index` sidecar (v1, v2 or v3).
#[pyfunction]
pub fn decode_index<'py>(py: Python<'py>, data: ByteView<'py>) -> PyResult<Bound<'py, PyDict>> {
    let index = FrameIndex::decode(data.as_slice())?;
    let out = PyDict::new(py);
    out.set_item("total_padded_size", index.total_padded_size)?;
    out.set_item("total_original_size", index.total_original_size())?;
    out.set_item("source_etag", index.source_etag.as_deref())?;
    out.set_item("source_compressed_size", index.source_compressed_size)?;
    let entries = index
        .entries
        .iter()
        .map(|e| {
            let entry = PyDict::new(py);
            entry.set_item("original_offset", e.original_offset)?;
            entry.set_item("original_size", e.original_size)?;
            entry.set_item("compressed_offset", e.compressed_offset)?;
            entry.set_item("compressed_size", e.compressed_size)?;
            Ok(entry)
        })
        .collect::<PyResult<Vec<_>>>()?;
    out.set_item("entries", entries)?;
    let sse = index
        .sse
        .map(|s| -> PyResult<_> {
            let sse = PyDict::new(py);
            sse.set_item("enc_chunk_size", s.enc_chunk_size)?;
            sse.set_item("enc_chunk_count", s.enc_chunk_count)?;
            sse.set_item("enc_key_id", s.enc_key_id)?;
            sse.set_item("enc_salt", PyBytes::new(py, &s.enc_salt))?;
            sse.set_item("enc_plaintext_len", s.enc_plaintext_len)?;
            sse.set_item("enc_header_bytes", s.enc_header_bytes)?;
            Ok(sse)
        })
        .transpose()?;
    out.set_item("sse", sse)?;
    Ok(out)
}

#[derive(FromPyObject)]
pub struct EntryArg {
    #[pyo3(item)]
    original_offset: u64,
    #[pyo3(item)]
    original_size: u64,
    #[pyo3(item)]
    compressed_offset: u64,
    #[pyo3(item)]
    compressed_size: u64,
}

#[derive(FromPyObject)]
pub struct SseArg {
    #[pyo3(item)]
    enc_chunk_size: u32,
    #[pyo3(item)]
    enc_chunk_count: u32,
    #[pyo3(item)]
    enc_key_id: u16,
    #[pyo3(item)]
    enc_salt: [u8; 8],
    #[pyo3(item)]
    enc_plaintext_len: u64,
    #[pyo3(item)]
    enc_header_bytes: u32,
}

/// Writes a sidecar (v2, or v3 with `sse`) from entries shaped like
/// `decode_index`'s.
#[pyfunction]
#[pyo3(signature = (entries, total_padded_size, source_compressed_size = None, source_etag = None, sse = None))]
pub fn encode_index<'py>(
    py: Python<'py>,
    entries: Vec<EntryArg>,
    total_padded_size: u64,
    source_compressed_size: Option<u64>,
    source_etag: Option<String>,
    sse: Option<SseArg>,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut index = FrameIndex {
        total_padded_size,
        source_compressed_size: None,
        source_etag: None,
        sse: sse.map(|s| SseBinding {
            enc_chunk_size: s.enc_chunk_size,
            enc_chunk_count: s.enc_chunk_count,
            enc_key_id: s.enc_key_id,
            enc_salt: s.enc_salt,
            enc_plaintext_len: s.enc_plaintext_len,
            enc_header_bytes: s.enc_header_bytes,
        }),
        entries: entries
            .into_iter()
            .map(|e| IndexEntry {
                original_offset: e.original_offset,
                original_size: e.original_size,
                compressed_offset: e.compressed_offset,
                compressed_size: e.compressed_size,
            })
            .collect(),
    };
    index.set_binding(source_compressed_size, source_etag.as_deref());
    // Round-trip through the reader so nothing unreadable is ever written.
    let bytes = index.encode()?;
    FrameIndex::decode(&bytes)?;
    Ok(PyBytes::new(py, &bytes))
}

/// Re-binds a sidecar to a stored object's size and ETag.
#[pyfunction]
#[pyo3(signature = (sidecar, source_compressed_size, source_etag = None))]
pub fn bind_index<'py>(
    py: Python<'py>,
    sidecar: ByteView<'py>,
    source_compressed_size: u64,
    source_etag: Option<&str>,
) -> PyResult<Bound<'py, PyBytes>> {
    let bytes = FrameIndex::bind(sidecar.as_slice(), source_compressed_size, source_etag)?;
    Ok(PyBytes::new(py, &bytes))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("FRAME_MAGIC", PyBytes::new(m.py(), &frame::FRAME_MAGIC))?;
    m.add("PADDING_MAGIC", PyBytes::new(m.py(), &frame::PADDING_MAGIC))?;
    m.add("FRAME_HEADER_BYTES", frame::FRAME_HEADER_BYTES)?;
    m.add("SIDECAR_SUFFIX", crate::s4::index::SIDECAR_SUFFIX)?;
    m.add_class::<FrameIter>()?;
    m.add_function(wrap_pyfunction!(read_frame, m)?)?;
    m.add_function(wrap_pyfunction!(frame_iter, m)?)?;
    m.add_function(wrap_pyfunction!(pick_chunk_size, m)?)?;
    m.add_function(wrap_pyfunction!(encode_s4_object, m)?)?;
    m.add_function(wrap_pyfunction!(encode_s4_part, m)?)?;
    m.add_function(wrap_pyfunction!(frame_header, m)?)?;
    m.add_function(wrap_pyfunction!(decode_frame_prefix, m)?)?;
    m.add_function(wrap_pyfunction!(object_layout, m)?)?;
    m.add_function(wrap_pyfunction!(open_layout, m)?)?;
    m.add_function(wrap_pyfunction!(object_codec, m)?)?;
    m.add_class::<MultipartLedger>()?;
    m.add_function(wrap_pyfunction!(decode_s4_object, m)?)?;
    m.add_function(wrap_pyfunction!(plan_range, m)?)?;
    m.add_function(wrap_pyfunction!(decode_index, m)?)?;
    m.add_function(wrap_pyfunction!(encode_index, m)?)?;
    m.add_function(wrap_pyfunction!(bind_index, m)?)?;
    Ok(())
}
