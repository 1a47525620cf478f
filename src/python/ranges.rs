//! `RangeDecoder`: one original byte range of a framed object, decoded from
//! stored pieces that arrive in any order (as an object-store reader fetches
//! them) straight into the `bytes` result, so nothing is joined or copied
//! after decoding. Pieces may be decoded from several Python threads at once.

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

#[pyclass(module = "s4_codec", frozen)]
pub struct RangeDecoder {
    index: FrameIndex,
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
    /// from the object's sidecar, checked against the stored body's size
    /// and ETag when given, the object's `metadata` (its size now, its CRC
    /// once a whole object is decoded) and `max_output_size`.
    #[new]
    #[pyo3(signature = (
        sidecar, start = None, end = None, *, metadata = None, dictionary = None,
        max_output_size = crate::MAX_DECOMPRESSED_BYTES, source_size = None, source_etag = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        sidecar: ByteView<'_>,
        start: Option<u64>,
        end: Option<u64>,
        metadata: Option<HashMap<String, String>>,
        dictionary: Option<ByteView<'_>>,
        max_output_size: u64,
        source_size: Option<u64>,
        source_etag: Option<&str>,
    ) -> PyResult<Self> {
        let index = FrameIndex::decode(sidecar.as_slice())?;
        index.check_source(source_size, source_etag)?;
        let checks = MetadataChecks::new(metadata.as_ref());
        checks.check_size(index.total_original_size())?;
        let start = start.unwrap_or(0);
        let end = end.unwrap_or_else(|| index.total_original_size());
        let span = index.covering(start, end)?;
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
            self.checks.check_crc(crcs.into_iter().zip(sizes))?;
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
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RangeDecoder>()
}
