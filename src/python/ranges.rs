//! `Sidecar`: an open object's `.s4index`, parsed and checked once, and
//! `RangeDecoder`: one original byte range of a framed object, decoded from
//! stored pieces that arrive in any order (as an object-store reader fetches
//! them) straight into the `bytes` result, so nothing is joined or copied
//! after decoding. Pieces may be decoded from several Python threads at once.
//! Decoders borrow their object's `Sidecar`, so reading an object frame by
//! frame parses its sidecar once, not once per read.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyMemoryError, PyRuntimeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::buffers::{detached, dictionary_arg, ByteView};
use crate::codec::check_limit;
use crate::codec::dict::ZstdDictionary;
use crate::error::Context;
use crate::s4::frame::{self, Extent, FRAME_HEADER_BYTES, PADDING_HEADER_BYTES};
use crate::s4::index::FrameIndex;
use crate::s4::object::{self, MetadataChecks};
use crate::threads;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Decoding,
    /// Decoded; its CRC32C serves the metadata's whole-object check.
    Done {
        crc32c: u32,
    },
}

struct Progress {
    states: Vec<State>,
    finished: bool,
}

/// The result's memory, written only by this decoder until `finish`.
#[derive(Clone, Copy)]
struct OutPtr(*mut MaybeUninit<u8>);
// SAFETY: each frame writes its own disjoint part, claimed under the lock.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// The sidecar of one open object: parsed once, bound to the stored body
/// (size, ETag) and its metadata, and covering every original byte.
#[pyclass(module = "s4_codec", frozen)]
pub struct Sidecar {
    index: Arc<FrameIndex>,
    checks: MetadataChecks,
    /// The stored body's size, when the caller gave it.
    source_size: Option<u64>,
    /// The object's key, named in every error about it.
    name: Option<String>,
}

/// `err`, naming the object it concerns when its key is known.
fn in_object(name: &Option<String>, err: crate::Error) -> crate::Error {
    match name {
        Some(name) => err.at(Context::Object(name.clone())),
        None => err,
    }
}

fn named(name: &Option<String>, err: crate::Error) -> PyErr {
    in_object(name, err).into()
}

#[pymethods]
impl Sidecar {
    /// Parses `data` and refuses, before any byte is read, a sidecar that
    /// belongs to another body (`source_size`, `source_etag`), disagrees
    /// with `metadata`'s size, or leaves original bytes in no frame.
    #[new]
    #[pyo3(signature = (data, *, metadata = None, source_size = None, source_etag = None, name = None))]
    fn new(
        data: ByteView<'_>,
        metadata: Option<HashMap<String, String>>,
        source_size: Option<u64>,
        source_etag: Option<&str>,
        name: Option<String>,
    ) -> PyResult<Self> {
        let checks = MetadataChecks::new(metadata.as_ref());
        let index = FrameIndex::decode(data.as_slice())
            .and_then(|index| {
                index.check_source(source_size, source_etag)?;
                index.check_contiguous()?;
                checks.check_size(index.total_original_size())?;
                Ok(index)
            })
            .map_err(|err| named(&name, err))?;
        Ok(Sidecar {
            index: Arc::new(index),
            checks,
            source_size,
            name,
        })
    }

    /// The object's original size.
    #[getter]
    fn size(&self) -> u64 {
        self.index.total_original_size()
    }

    /// `(original_offset, original_size)` of every frame, in order.
    #[getter]
    fn frames(&self) -> Vec<(u64, u64)> {
        let entries = self.index.entries.iter();
        entries
            .map(|e| (e.original_offset, e.original_size))
            .collect()
    }

    /// The stored bytes `(start, end)` that `check_tail` checks at open: when
    /// the body goes on after the last frame the sidecar lists, the header of
    /// what follows (it must be padding, else the sidecar leaves frames out);
    /// when the last entry claims no original bytes, that frame's own header
    /// (no read overlaps an empty frame, so no decode would see the claim).
    #[getter]
    fn tail(&self) -> Option<(u64, u64)> {
        match self.after_frames() {
            Some((start, end)) => Some((start, end.min(start + PADDING_HEADER_BYTES as u64))),
            None => self
                .index
                .entries
                .last()
                .filter(|e| e.original_size == 0)
                .map(|e| {
                    (
                        e.compressed_offset,
                        e.compressed_offset + FRAME_HEADER_BYTES as u64,
                    )
                }),
        }
    }

    /// Checks `head`, the bytes `tail` names: one padding frame that ends
    /// where the body does, or the last frame's header agreeing with its entry.
    fn check_tail(&self, head: ByteView<'_>) -> PyResult<()> {
        let Some((start, end)) = self.after_frames() else {
            return match self.tail() {
                Some(_) => self.check_last_header(head.as_slice()),
                None => Ok(()),
            };
        };
        let padding = match frame::peek(head.as_slice()) {
            Ok(Extent::Padding { stored }) => start.checked_add(stored) == Some(end),
            _ => false,
        };
        if padding {
            return Ok(());
        }
        let err = crate::Error::Index(format!(
            "the sidecar's frames end at stored byte {start} of {end}, and what follows is not \
             padding: the sidecar leaves frames out"
        ));
        Err(named(&self.name, err))
    }
}

impl Sidecar {
    fn check_last_header(&self, head: &[u8]) -> PyResult<()> {
        let Some(last) = self.index.entries.last() else {
            return Ok(());
        };
        let found = match frame::peek(head) {
            Ok(Extent::Frame(header))
                if header.original_size == last.original_size
                    && header
                        .compressed_size
                        .checked_add(FRAME_HEADER_BYTES as u64)
                        == Some(last.compressed_size) =>
            {
                return Ok(());
            }
            Ok(Extent::Frame(header)) => format!(
                "a frame of {} original bytes in {} stored",
                header.original_size,
                header.compressed_size + FRAME_HEADER_BYTES as u64
            ),
            Ok(Extent::Padding { .. }) => "padding".to_string(),
            Err(err) => err.to_string(),
        };
        let err = crate::Error::Index(format!(
            "the sidecar's last entry says {} original bytes in {} stored at stored byte {}, \
             and the body holds {found} there",
            last.original_size, last.compressed_size, last.compressed_offset
        ));
        Err(named(&self.name, err))
    }

    /// The stored bytes after the last listed frame, when the body goes on.
    fn after_frames(&self) -> Option<(u64, u64)> {
        let listed_end = self
            .index
            .entries
            .last()
            .map_or(0, |e| e.compressed_offset + e.compressed_size);
        self.source_size
            .filter(|&size| size > listed_end)
            .map(|size| (listed_end, size))
    }
}

#[pyclass(module = "s4_codec", frozen)]
pub struct RangeDecoder {
    index: Arc<FrameIndex>,
    name: Option<String>,
    first: usize,
    start: u64,
    end: u64,
    dict: Option<Arc<ZstdDictionary>>,
    /// The metadata's size and CRC; the CRC applies to whole-object ranges.
    checks: MetadataChecks,
    result: Py<PyBytes>,
    out: OutPtr,
    progress: Mutex<Progress>,
}

#[pymethods]
impl RangeDecoder {
    /// Plans original bytes `[start, end)` (the whole object by default)
    /// from the object's sidecar (a `Sidecar`, or its bytes to parse),
    /// checked against the stored body's size and ETag when given, the
    /// object's `metadata` (its size now, its CRC once a whole object is
    /// decoded; a `Sidecar` brings its own) and `max_output_size`.
    #[new]
    #[pyo3(signature = (
        sidecar, start = None, end = None, *, metadata = None, dictionary = None,
        max_output_size = crate::MAX_DECOMPRESSED_BYTES, source_size = None, source_etag = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        sidecar: &Bound<'_, PyAny>,
        start: Option<u64>,
        end: Option<u64>,
        metadata: Option<HashMap<String, String>>,
        dictionary: Option<ByteView<'_>>,
        max_output_size: u64,
        source_size: Option<u64>,
        source_etag: Option<&str>,
    ) -> PyResult<Self> {
        let (index, mut checks, name) = match sidecar.cast::<Sidecar>() {
            Ok(open) => {
                let open = open.get();
                (open.index.clone(), open.checks, open.name.clone())
            }
            Err(_) => {
                let data = sidecar.extract::<ByteView<'_>>()?;
                (
                    Arc::new(FrameIndex::decode(data.as_slice())?),
                    Default::default(),
                    None,
                )
            }
        };
        if metadata.is_some() {
            checks = MetadataChecks::new(metadata.as_ref());
        }
        let named = |err| named(&name, err);
        index
            .check_source(source_size, source_etag)
            .map_err(named)?;
        checks
            .check_size(index.total_original_size())
            .map_err(named)?;
        let start = start.unwrap_or(0);
        let end = end.unwrap_or_else(|| index.total_original_size());
        let span = index.covering(start, end).map_err(named)?;
        check_limit(end.saturating_sub(start), max_output_size)?;
        let len = ffi::Py_ssize_t::try_from(end - start)
            .map_err(|_| PyMemoryError::new_err("range too large for this platform"))?;
        // SAFETY: a null source asks CPython for an uninitialised buffer.
        let raw = unsafe { ffi::PyBytes_FromStringAndSize(std::ptr::null(), len) };
        // SAFETY: a new reference, or null with a MemoryError set.
        let result = unsafe { Bound::from_owned_ptr_or_err(py, raw)? }.cast_into::<PyBytes>()?;
        // SAFETY: the data pointer of a bytes object.
        let out = OutPtr(unsafe { ffi::PyBytes_AsString(result.as_ptr()) }.cast());
        Ok(Self {
            first: span.start,
            progress: Mutex::new(Progress {
                states: vec![State::Waiting; span.len()],
                finished: false,
            }),
            checks,
            index,
            name,
            start,
            end,
            dict: dictionary_arg(dictionary)?,
            result: result.unbind(),
            out,
        })
    }

    /// The stored byte ranges `(first, end)` of the frames still to decode,
    /// in order: what a reader has left to fetch.
    #[getter]
    fn pending(&self) -> Vec<(u64, u64)> {
        let progress = self.lock();
        let entries = &self.index.entries[self.first..self.first + progress.states.len()];
        entries
            .iter()
            .zip(&progress.states)
            .filter(|(_, state)| **state == State::Waiting)
            .map(|(e, _)| (e.compressed_offset, e.compressed_offset + e.compressed_size))
            .collect()
    }

    /// Decodes every waiting frame held wholly in `fetched` (the stored body
    /// from byte `body_offset` on), with the GIL released; returns how many.
    #[pyo3(signature = (fetched, body_offset, threads = None))]
    fn decode(
        &self,
        py: Python<'_>,
        fetched: ByteView<'_>,
        body_offset: u64,
        threads: Option<usize>,
    ) -> PyResult<usize> {
        let threads = crate::spec::threads(threads)?;
        let fetched = fetched.as_slice();
        let fetched_end = body_offset.saturating_add(fetched.len() as u64);
        let claimed: Vec<usize> = {
            let mut progress = self.lock();
            if progress.finished {
                return Err(PyRuntimeError::new_err("RangeDecoder is already finished"));
            }
            let first = self.first;
            let mut claimed = Vec::new();
            for (i, state) in progress.states.iter_mut().enumerate() {
                let entry = &self.index.entries[first + i];
                let stored_end = entry
                    .compressed_offset
                    .saturating_add(entry.compressed_size);
                let inside = entry.compressed_offset >= body_offset && stored_end <= fetched_end;
                if *state == State::Waiting && inside {
                    *state = State::Decoding;
                    claimed.push(first + i);
                }
            }
            claimed
        };
        let out = self.out;
        let decoded = detached(py, || {
            threads::try_map_indexed(claimed.len(), threads, |i| {
                self.decode_entry(claimed[i], fetched, body_offset, out)
            })
        });
        let mut progress = self.lock();
        let states = &mut progress.states;
        match decoded {
            Ok(crcs) => {
                for (k, &crc32c) in claimed.iter().zip(&crcs) {
                    states[k - self.first] = State::Done { crc32c };
                }
                Ok(crcs.len())
            }
            Err(err) => {
                for k in &claimed {
                    states[k - self.first] = State::Waiting;
                }
                Err(err)
            }
        }
    }

    /// The decoded range, once every frame is decoded.
    fn finish(&self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        let mut progress = self.lock();
        let crcs: Vec<u32> = progress
            .states
            .iter()
            .filter_map(|state| match state {
                State::Done { crc32c } => Some(*crc32c),
                _ => None,
            })
            .collect();
        let missing = progress.states.len() - crcs.len();
        if missing > 0 {
            return Err(PyRuntimeError::new_err(format!(
                "{missing} of {} frames of original bytes [{}, {}) are not decoded yet",
                progress.states.len(),
                self.start,
                self.end
            )));
        }
        if (self.start, self.end) == (0, self.index.total_original_size()) {
            let sizes = self.index.entries.iter().map(|e| e.original_size);
            let crc = self.checks.check_crc(crcs.into_iter().zip(sizes));
            crc.map_err(|err| named(&self.name, err))?;
        }
        progress.finished = true;
        Ok(self.result.clone_ref(py))
    }
}

impl RangeDecoder {
    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn decode_entry(
        &self,
        k: usize,
        fetched: &[u8],
        body_offset: u64,
        out: OutPtr,
    ) -> crate::Result<u32> {
        let share = object::entry_share(&self.index, k, self.start, self.end);
        // SAFETY: the share lies in the result's `end - start` bytes and is
        // this entry's alone: entries do not overlap and each is claimed by
        // one caller under the lock.
        let dst = unsafe { std::slice::from_raw_parts_mut(out.0.add(share.start), share.len()) };
        object::decode_entry_into(
            &self.index,
            k,
            fetched,
            body_offset,
            self.start,
            self.end,
            self.dict.as_ref(),
            dst,
        )
        .map_err(|err| in_object(&self.name, err))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Sidecar>()?;
    m.add_class::<RangeDecoder>()
}
