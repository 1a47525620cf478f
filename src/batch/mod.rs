//! Batch kernels over a column of optional byte values: compress, decompress,
//! CRC32C and frame inspection for every cell, split across cores by bytes.
//! Independent of any Arrow library: doors adapt their arrays to
//! [`ByteColumn`] and assemble Arrow arrays from [`BinaryOutput`].

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use crate::codec::dict::ZstdDictionary;
use crate::codec::{Codec, RESERVE_AHEAD_MAX};
use crate::error::{try_reserve, Context, Error};
use crate::memory::{self, Block};
use crate::s4::frame::{self, BodyInfo, FRAME_HEADER_BYTES};
use crate::s4::object::FramesPlan;
use crate::threads;

pub mod lines;
mod placed;

pub use crate::spec::{CellFormat, OnError};

/// A column of optional byte strings (`None` = null).
pub trait ByteColumn: Sync {
    fn len(&self) -> usize;
    fn value(&self, row: usize) -> Option<&[u8]>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An error in one cell, with its row index in the column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub row: usize,
    pub error: Error,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {}: {}", self.row, self.error)
    }
}

impl std::error::Error for RowError {}

impl RowError {
    /// The error, located at its row counted from `first_row` (where this
    /// column's chunk starts in the whole input).
    pub fn located(self, first_row: usize) -> Error {
        self.error.at(Context::Row(first_row + self.row))
    }
}

/// Consecutive output rows: `ends[i]` is where row i's bytes end in `values`.
#[derive(Debug, Default)]
pub struct Chunk {
    pub values: Values,
    pub ends: Vec<usize>,
    pub valid: Vec<bool>,
}

/// The bytes of a chunk: a heap vector, or a pooled [`Block`] for large
/// outputs written in place (see `memory`).
#[derive(Debug)]
pub enum Values {
    Heap(Vec<u8>),
    Block(Block),
}

impl Default for Values {
    fn default() -> Self {
        Values::Heap(Vec::new())
    }
}

impl Values {
    /// Empty values with room for `cap` bytes; `None` when the memory is
    /// refused.
    fn with_capacity(cap: usize) -> Option<Values> {
        if cap >= memory::BLOCK_MIN_BYTES {
            return Block::with_capacity(cap).map(Values::Block);
        }
        let mut heap = Vec::new();
        heap.try_reserve_exact(cap).ok()?;
        Some(Values::Heap(heap))
    }

    /// The room after the bytes written so far.
    fn spare_mut(&mut self) -> &mut [std::mem::MaybeUninit<u8>] {
        match self {
            Values::Heap(heap) => heap.spare_capacity_mut(),
            Values::Block(block) => {
                let len = block.len();
                &mut block.spare_mut()[len..]
            }
        }
    }

    /// # Safety
    /// The first `len` bytes must have been written.
    unsafe fn set_len(&mut self, len: usize) {
        match self {
            // SAFETY: per the contract.
            Values::Heap(heap) => unsafe { heap.set_len(len) },
            // SAFETY: per the contract.
            Values::Block(block) => unsafe { block.set_len(len) },
        }
    }
}

impl std::ops::Deref for Values {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Values::Heap(heap) => heap,
            Values::Block(block) => block,
        }
    }
}

impl std::ops::DerefMut for Values {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            Values::Heap(heap) => heap,
            Values::Block(block) => block,
        }
    }
}

/// A binary column produced by a kernel, as one chunk per unit of work.
#[derive(Debug, Default)]
pub struct BinaryOutput {
    pub chunks: Vec<Chunk>,
}

/// One values buffer with `len + 1` offsets and a validity mask.
#[derive(Debug, Default)]
pub struct Contiguous {
    pub values: Values,
    pub offsets: Vec<i64>,
    /// `None` when every row is valid.
    pub validity: Option<Vec<bool>>,
}

impl BinaryOutput {
    pub fn len(&self) -> usize {
        self.chunks.iter().map(|c| c.ends.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Joins the chunks into one buffer: one chunk is kept as it is; others
    /// are copied into one (a pooled block when large; by up to `threads`
    /// threads from `PARALLEL_CONCAT_MIN_BYTES` on).
    pub fn concat(self, threads: usize) -> Result<Contiguous, Error> {
        let rows = self.len();
        let total: usize = self.chunks.iter().map(|c| c.values.len()).sum();
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0i64);
        let any_null = self.chunks.iter().any(|c| c.valid.contains(&false));
        let mut validity = any_null.then(|| Vec::with_capacity(rows));
        let mut base = 0i64;
        for chunk in &self.chunks {
            offsets.extend(chunk.ends.iter().map(|&end| base + end as i64));
            base += chunk.values.len() as i64;
            if let Some(validity) = validity.as_mut() {
                validity.extend_from_slice(&chunk.valid);
            }
        }
        let mut chunks = self.chunks;
        let values = if chunks.len() == 1 {
            chunks.pop().map(|c| c.values).unwrap_or_default()
        } else {
            let mut values =
                Values::with_capacity(total).ok_or(Error::OutOfMemory { requested: total })?;
            let lens = chunks.iter().map(|c| c.values.len());
            let slots = threads::Slots::new(&mut values.spare_mut()[..total], lens);
            let threads = if total >= PARALLEL_CONCAT_MIN_BYTES {
                threads
            } else {
                1
            };
            threads::map_indexed(
                chunks.len(),
                threads,
                |i| {
                    // SAFETY: `map_indexed` runs each index once.
                    let slot = unsafe { slots.part(i) };
                    let src = &chunks[i].values;
                    // SAFETY: the slot is exactly `src.len()` bytes.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            src.as_ptr(),
                            slot.as_mut_ptr().cast(),
                            src.len(),
                        )
                    }
                },
                |_| false,
            );
            drop(slots);
            // SAFETY: the chunks tile `total` bytes and each was copied.
            unsafe { values.set_len(total) };
            values
        };
        Ok(Contiguous {
            values,
            offsets,
            validity,
        })
    }
}

/// Outputs at least this long are joined by several threads.
const PARALLEL_CONCAT_MIN_BYTES: usize = 32 << 20;

/// Columns smaller than this stay on the calling thread.
const PARALLEL_MIN_BYTES: usize = 256 << 10;
/// Work is cut into about this many pieces per thread, for balance.
const CHUNKS_PER_THREAD: usize = 4;
/// Smallest piece of work handed to a thread.
const MIN_CHUNK_BYTES: usize = 64 << 10;
/// Largest piece of work, whatever the thread count: a range's buffer then
/// has a size that earlier ranges and calls left in the pool (see `memory`).
const MAX_CHUNK_BYTES: usize = 8 << 20;

/// Cuts `rows` rows into ranges of roughly equal bytes (`size(row)` each):
/// several per thread for balance, and none much over `MAX_CHUNK_BYTES`.
fn cut_by_bytes(rows: usize, threads: usize, size: impl Fn(usize) -> usize) -> Vec<Range<usize>> {
    let total: usize = (0..rows).map(&size).sum();
    let per_thread = if threads > 1 && total >= PARALLEL_MIN_BYTES {
        total / (threads * CHUNKS_PER_THREAD)
    } else {
        total
    };
    let target = per_thread.clamp(MIN_CHUNK_BYTES, MAX_CHUNK_BYTES);
    let mut ranges = Vec::new();
    let (mut start, mut acc) = (0, 0);
    for row in 0..rows {
        acc += size(row);
        if acc >= target {
            ranges.push(start..row + 1);
            (start, acc) = (row + 1, 0);
        }
    }
    if start < rows || ranges.is_empty() {
        ranges.push(start..rows);
    }
    ranges
}

/// Runs `work` over ranges of rows on up to `threads` threads; results are
/// in row order and stop at the first (lowest-row) error.
fn for_ranges<T: Send, E: Send>(
    col: &dyn ByteColumn,
    threads: usize,
    work: impl Fn(Range<usize>) -> Result<T, E> + Sync,
) -> Result<Vec<T>, E> {
    let ranges = cut_by_bytes(col.len(), threads, |row| {
        col.value(row).map_or(0, <[u8]>::len)
    });
    threads::try_map_indexed(ranges.len(), threads, |i| work(ranges[i].clone()))
}

/// Applies `cell` to every non-null value, building a binary column.
fn map_cells(
    col: &dyn ByteColumn,
    threads: usize,
    on_error: OnError,
    expected_len: impl Fn(&[u8]) -> usize + Sync,
    cell: impl Fn(&[u8], &mut Vec<u8>) -> Result<(), Error> + Sync,
) -> Result<BinaryOutput, RowError> {
    let chunks = for_ranges(col, threads, |rows| {
        // Sized from what the cells say they hold, but never more than
        // `RESERVE_AHEAD_MAX` ahead: beyond that the buffer grows as cells
        // really decode, so lying cells cannot make it reserve their claims.
        let expected = rows
            .clone()
            .filter_map(|i| col.value(i))
            .map(&expected_len)
            .fold(0, usize::saturating_add)
            .min(RESERVE_AHEAD_MAX);
        let mut values = Vec::new();
        let mut ends = Vec::with_capacity(rows.len());
        let mut valid = Vec::with_capacity(rows.len());
        try_reserve(&mut values, expected).map_err(|error| RowError {
            row: rows.start,
            error,
        })?;
        for row in rows {
            let ok = match col.value(row) {
                None => false,
                Some(value) => match cell(value, &mut values) {
                    Ok(()) => true,
                    Err(error) if on_error == OnError::Raise => {
                        return Err(RowError { row, error })
                    }
                    // A failed cell leaves no bytes behind (the codecs truncate).
                    Err(_) => false,
                },
            };
            ends.push(values.len());
            valid.push(ok);
        }
        Ok(Chunk {
            values: Values::Heap(values),
            ends,
            valid,
        })
    })?;
    Ok(BinaryOutput { chunks })
}

/// Compresses every cell with `codec`.
pub fn compress(
    col: &dyn ByteColumn,
    codec: &Codec,
    format: CellFormat,
    threads: usize,
) -> Result<BinaryOutput, RowError> {
    let chunks = for_ranges(col, threads, |rows| {
        compress_range(col, codec, format, rows)
    })?;
    Ok(BinaryOutput { chunks })
}

/// Compresses `rows` into one buffer sized by the codec's bound for them,
/// so it never grows; large ones are pooled blocks, whose memory is warm
/// from earlier calls. (The bound is backed: it follows the real input.)
fn compress_range(
    col: &dyn ByteColumn,
    codec: &Codec,
    format: CellFormat,
    rows: Range<usize>,
) -> Result<Chunk, RowError> {
    let header = match format {
        CellFormat::S4 => FRAME_HEADER_BYTES,
        CellFormat::Raw => 0,
    };
    let mut bound = 0usize;
    for row in rows.clone() {
        if let Some(value) = col.value(row) {
            let cell = codec
                .compress_bound(value.len())
                .map_err(|error| RowError { row, error })?;
            bound = bound.saturating_add(cell + header);
        }
    }
    let mut values = Values::with_capacity(bound).ok_or(RowError {
        row: rows.start,
        error: Error::OutOfMemory { requested: bound },
    })?;
    let out = values.spare_mut();
    let (mut ends, mut valid) = (
        Vec::with_capacity(rows.len()),
        Vec::with_capacity(rows.len()),
    );
    let mut at = 0;
    for row in rows {
        let value = col.value(row);
        if let Some(value) = value {
            let dst = &mut out[at..];
            at += match format {
                CellFormat::S4 => frame::encode_frame_into(codec, value, dst)
                    .map(|header| FRAME_HEADER_BYTES + header.compressed_size as usize),
                CellFormat::Raw => codec.compress_into(value, dst),
            }
            .map_err(|error| RowError { row, error })?;
        }
        ends.push(at);
        valid.push(value.is_some());
    }
    // SAFETY: the encoders wrote the first `at` bytes.
    unsafe { values.set_len(at) };
    Ok(Chunk {
        values,
        ends,
        valid,
    })
}

/// How to decode cells.
#[derive(Debug, Clone)]
pub struct Decode {
    pub format: CellFormat,
    /// The codec of `Raw` cells (S4 cells name theirs in each frame).
    pub codec: Codec,
    /// The most bytes one cell may decode to.
    pub max_output_size: u64,
    pub on_error: OnError,
    /// The dictionary of `cpu-zstd-dict` frames.
    pub dict: Option<Arc<ZstdDictionary>>,
}

/// Decompresses every cell: in place when every cell states its size
/// (see `placed`), else into buffers that grow as output really comes.
pub fn decompress(
    col: &dyn ByteColumn,
    spec: &Decode,
    threads: usize,
) -> Result<BinaryOutput, RowError> {
    if let Some(placed) = placed::decompress(col, spec, threads) {
        return Ok(BinaryOutput {
            chunks: vec![placed],
        });
    }
    let reserve = |value: &[u8]| {
        let declared = match spec.format {
            CellFormat::S4 => frame::declared_size(value),
            CellFormat::Raw => spec
                .codec
                .declared_size(value)
                .unwrap_or(4 * value.len() as u64),
        };
        let backed = spec
            .codec
            .max_decoded_len(value.len())
            .max(value.len() as u64);
        declared.min(spec.max_output_size).min(backed) as usize
    };
    map_cells(
        col,
        threads,
        spec.on_error,
        reserve,
        |value, out| match spec.format {
            CellFormat::S4 => {
                let plan = FramesPlan::new(value, None, spec.dict.as_ref(), spec.max_output_size)?;
                // The row locates a one-frame cell's error; naming frame 0 adds nothing.
                plan.decode_append(out, 1)
                    .map_err(|err| match plan.frame_count() {
                        1 => err.root().clone(),
                        _ => err,
                    })
            }
            CellFormat::Raw => spec
                .codec
                .decompress_unsized_append(value, spec.max_output_size, out)
                .map(drop),
        },
    )
}

/// CRC32C of every cell; `None` for nulls.
pub fn crc32c(col: &dyn ByteColumn, threads: usize) -> Vec<Option<u32>> {
    let crcs = for_ranges(col, threads, |rows| {
        Ok::<_, ()>(
            rows.map(|row| col.value(row).map(crate::codec::crc::crc32c))
                .collect::<Vec<_>>(),
        )
    });
    crcs.unwrap_or_default().concat()
}

/// Header summary of every S4 cell; `None` for nulls (and for malformed
/// cells with `OnError::Null`).
pub fn frame_info(
    col: &dyn ByteColumn,
    on_error: OnError,
) -> Result<Vec<Option<BodyInfo>>, RowError> {
    (0..col.len())
        .map(
            |row| match col.value(row).map(frame::body_info).transpose() {
                Ok(info) => Ok(info),
                Err(_) if on_error == OnError::Null => Ok(None),
                Err(error) => Err(RowError { row, error }),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Cells(Vec<Option<Vec<u8>>>);

    impl ByteColumn for Cells {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn value(&self, row: usize) -> Option<&[u8]> {
            self.0[row].as_deref()
        }
    }

    fn column(rows: usize) -> Cells {
        Cells(
            (0..rows)
                .map(|i| {
                    (i % 7 != 3).then(|| {
                        format!("{{\"id\":{i},\"msg\":\"{}\"}}", "payload ".repeat(i % 40))
                            .into_bytes()
                    })
                })
                .collect(),
        )
    }

    fn rows(out: BinaryOutput) -> Vec<Option<Vec<u8>>> {
        let c = out.concat(2).unwrap();
        (0..c.offsets.len() - 1)
            .map(|i| {
                let valid = c.validity.as_ref().is_none_or(|v| v[i]);
                valid.then(|| c.values[c.offsets[i] as usize..c.offsets[i + 1] as usize].to_vec())
            })
            .collect()
    }

    #[test]
    fn round_trips_are_identical_across_thread_counts() {
        let col = column(20_000);
        for format in [CellFormat::S4, CellFormat::Raw] {
            for codec in [Codec::zstd(3), Codec::gzip(6), Codec::Passthrough] {
                let serial = rows(compress(&col, &codec, format, 1).unwrap());
                let parallel = rows(compress(&col, &codec, format, 4).unwrap());
                assert_eq!(serial, parallel);
                let compressed = Cells(parallel);
                let spec = Decode {
                    format,
                    codec,
                    max_output_size: crate::MAX_DECOMPRESSED_BYTES,
                    on_error: OnError::Raise,
                    dict: None,
                };
                assert_eq!(rows(decompress(&compressed, &spec, 3).unwrap()), col.0);
            }
        }
    }

    fn spec(format: CellFormat, on_error: OnError) -> Decode {
        Decode {
            format,
            codec: Codec::zstd(3),
            max_output_size: crate::MAX_DECOMPRESSED_BYTES,
            on_error,
            dict: None,
        }
    }

    #[test]
    fn cells_that_state_their_size_decode_in_place() {
        let col = column(20_000);
        for format in [CellFormat::S4, CellFormat::Raw] {
            let cells = Cells(rows(compress(&col, &Codec::zstd(3), format, 2).unwrap()));
            for threads in [1, 2, 3] {
                let out = decompress(&cells, &spec(format, OnError::Raise), threads).unwrap();
                assert_eq!(out.chunks.len(), 1, "one buffer, no join");
                assert_eq!(rows(out), col.0);
            }
        }
    }

    #[test]
    fn cells_without_usable_claims_take_the_growing_path() {
        let col = column(3_000);
        let mut cells = rows(compress(&col, &Codec::zstd(3), CellFormat::Raw, 1).unwrap());
        let mut expected = col.0.clone();
        // Two frames in one cell: the first frame's content size is not the cell's.
        let two = [cells[12].clone().unwrap(), cells[13].clone().unwrap()].concat();
        cells[12] = Some(two);
        expected[12] = Some([col.0[12].clone().unwrap(), col.0[13].clone().unwrap()].concat());
        let out = decompress(
            &Cells(cells.clone()),
            &spec(CellFormat::Raw, OnError::Raise),
            2,
        );
        assert_eq!(rows(out.unwrap()), expected);
        // A frame without a content size.
        let mut bare = Vec::new();
        let mut encoder = zstd_safe::CCtx::create();
        encoder
            .set_parameter(zstd_safe::CParameter::ContentSizeFlag(false))
            .unwrap();
        bare.reserve(1024);
        encoder.compress2(&mut bare, b"no size here").unwrap();
        cells[20] = Some(bare);
        expected[20] = Some(b"no size here".to_vec());
        let out = decompress(&Cells(cells), &spec(CellFormat::Raw, OnError::Raise), 2);
        assert_eq!(rows(out.unwrap()), expected);
    }

    #[test]
    fn lying_claims_give_the_documented_result() {
        let col = column(3_000);
        for format in [CellFormat::S4, CellFormat::Raw] {
            let mut cells = rows(compress(&col, &Codec::zstd(3), format, 1).unwrap());
            let victim = cells[1234].as_mut().unwrap();
            match format {
                // The S4 header claims one byte more than the payload holds.
                CellFormat::S4 => victim[8] = victim[8].wrapping_add(1),
                // The zstd frame header claims one byte less (single-segment
                // frames keep it right after the descriptor).
                CellFormat::Raw => {
                    let at = 5 + usize::from(victim[4] & 0x20 == 0);
                    victim[at] = victim[at].wrapping_sub(1);
                }
            }
            let cells = Cells(cells);
            let err = decompress(&cells, &spec(format, OnError::Raise), 2).unwrap_err();
            assert_eq!(err.row, 1234);
            let out = rows(decompress(&cells, &spec(format, OnError::Null), 2).unwrap());
            let mut expected = col.0.clone();
            expected[1234] = None;
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn claims_beyond_what_the_input_backs_reserve_nothing() {
        // Every cell claims 4 GiB in its S4 header: the sum is refused for
        // placement, and the growing path refuses each claim.
        let mut cell = Vec::new();
        frame::encode_frame_append(&Codec::zstd(3), b"tiny", &mut cell).unwrap();
        cell[8..16].copy_from_slice(&(4u64 << 30).to_le_bytes());
        let cells = Cells(vec![Some(cell); 1000]);
        let out = decompress(&cells, &spec(CellFormat::S4, OnError::Null), 2).unwrap();
        assert!(rows(out).iter().all(Option::is_none));
    }

    #[test]
    fn corrupt_cell_reports_its_row_or_becomes_null() {
        let col = column(5_000);
        let mut cells = rows(compress(&col, &Codec::zstd(1), CellFormat::S4, 2).unwrap());
        let victim = cells[4321].as_mut().unwrap();
        let last = victim.len() - 1;
        victim[last] ^= 0x55;
        let cells = Cells(cells);
        let mut spec = Decode {
            format: CellFormat::S4,
            codec: Codec::zstd(3),
            max_output_size: crate::MAX_DECOMPRESSED_BYTES,
            on_error: OnError::Raise,
            dict: None,
        };
        let err = decompress(&cells, &spec, 2).unwrap_err();
        assert_eq!(err.row, 4321);
        spec.on_error = OnError::Null;
        let out = rows(decompress(&cells, &spec, 2).unwrap());
        assert_eq!(out[4321], None);
        assert_eq!(out[4320], col.0[4320]);
    }

    #[test]
    fn max_output_size_is_checked_before_decoding() {
        let col = Cells(vec![Some(vec![b'x'; 10_000])]);
        let cells = Cells(rows(
            compress(&col, &Codec::zstd(3), CellFormat::S4, 1).unwrap(),
        ));
        let spec = Decode {
            format: CellFormat::S4,
            codec: Codec::zstd(3),
            max_output_size: 9_999,
            on_error: OnError::Raise,
            dict: None,
        };
        let err = decompress(&cells, &spec, 1).unwrap_err();
        assert!(matches!(err.error, Error::ManifestSizeExceedsLimit { .. }));
    }

    #[test]
    fn crc_and_info() {
        let col = column(100);
        let crcs = crc32c(&col, 2);
        assert_eq!(crcs[3], None);
        assert_eq!(crcs[5], Some(crate::crc32c(col.0[5].as_ref().unwrap())));
        let framed = Cells(rows(
            compress(&col, &Codec::gzip(6), CellFormat::S4, 1).unwrap(),
        ));
        let info = frame_info(&framed, OnError::Raise).unwrap();
        assert_eq!(info[5].unwrap().crc32c, crcs[5].unwrap());
        assert_eq!(
            info[5].unwrap().original_size,
            col.0[5].as_ref().unwrap().len() as u64
        );
    }

    #[test]
    fn empty_body_decodes_to_empty_value() {
        let cells = Cells(vec![Some(Vec::new())]);
        let spec = Decode {
            format: CellFormat::S4,
            codec: Codec::zstd(3),
            max_output_size: 10,
            on_error: OnError::Raise,
            dict: None,
        };
        assert_eq!(
            rows(decompress(&cells, &spec, 1).unwrap()),
            vec![Some(Vec::new())]
        );
    }
}
