//! Decoding every cell straight into its place in one values buffer: no
//! buffer per thread and no join afterwards.
//!
//! Every cell states what it decodes to (an S4 frame header, a zstd content
//! size), and a valid cell decodes to exactly that. Offsets are the prefix
//! sum of the claims; each thread decodes its rows into their slots. The
//! buffer is reserved as address space and committed only where real output
//! is written, so a lying claim costs no memory. Anything unusual (a cell
//! without a claim, a claim over a limit, a cell that fails or fills its
//! slot otherwise than claimed) sends the whole column to the growing path,
//! which gives the documented result.
//!
//! (Compression has no claims to place by. Writing each range into a region
//! sized by the codec's bound and sliding the regions together measured
//! slower than small per-range buffers joined into a pooled block: the
//! regions' pages are fresh on every call, and the slide is sequential.)

use std::mem::MaybeUninit;
use std::ops::Range;

use super::{cut_by_bytes, ByteColumn, Chunk, Decode, Values};
use crate::codec::{Codec, RESULT_RESERVE_MAX};
use crate::s4::frame;
use crate::s4::object::FramesPlan;
use crate::spec::CellFormat;
use crate::threads;

/// The most a placed decode reserves: a view array addresses its buffers
/// with 32-bit offsets, and one buffer is what it gets.
const PLACED_MAX_BYTES: usize = u32::MAX as usize;
/// Claims may add up to at most this many times the compressed column (or
/// `RESULT_RESERVE_MAX`, if more) before the column takes the growing path:
/// where the system commits reservations up front (strict overcommit), a
/// lying column can make it commit no more than that.
const PLACED_MAX_EXPANSION: usize = 64;

/// What one cell claims to decode to; `None` when it makes no claim that
/// may be trusted for placement.
fn claim(value: &[u8], spec: &Decode) -> Option<u64> {
    match (spec.format, &spec.codec) {
        (CellFormat::S4, _) => Some(frame::declared_size(value)),
        (CellFormat::Raw, Codec::Passthrough) => Some(value.len() as u64),
        (CellFormat::Raw, Codec::Zstd { .. } | Codec::ZstdDict { .. }) => {
            let size = crate::codec::zstd::declared_size(value)?;
            (size <= spec.max_output_size && size <= spec.codec.max_decoded_len(value.len()))
                .then_some(size)
        }
        // A gzip ISIZE is a trailing field that multi-member streams repeat.
        (CellFormat::Raw, Codec::Gzip { .. }) => None,
    }
}

/// What the cells of a column claim to decode to.
struct Claims {
    ends: Vec<usize>,
    valid: Vec<bool>,
    total: usize,
}

/// The claims of `col`'s cells as row ends and validity; `None` when some
/// cell makes no usable claim or they add up to too much.
fn claims(col: &dyn ByteColumn, spec: &Decode) -> Option<Claims> {
    let mut ends = Vec::with_capacity(col.len());
    let mut valid = Vec::with_capacity(col.len());
    let (mut total, mut input) = (0usize, 0usize);
    for row in 0..col.len() {
        let value = col.value(row);
        if let Some(value) = value {
            let size = usize::try_from(claim(value, spec)?).ok()?;
            total = total.checked_add(size)?;
            input += value.len();
        }
        ends.push(total);
        valid.push(value.is_some());
    }
    let bound = input
        .saturating_mul(PLACED_MAX_EXPANSION)
        .clamp(RESULT_RESERVE_MAX, PLACED_MAX_BYTES);
    (total <= bound).then_some(Claims { ends, valid, total })
}

/// Decodes one cell into `dst`; true when it produced exactly `dst.len()`
/// bytes and passed every check.
fn decode_in_place(value: &[u8], spec: &Decode, dst: &mut [MaybeUninit<u8>]) -> bool {
    match spec.format {
        CellFormat::S4 => {
            match FramesPlan::new(value, None, spec.dict.as_ref(), spec.max_output_size) {
                Ok(plan) if plan.fills(dst.len()) => plan.decode_into(dst, 1).is_ok(),
                _ => false,
            }
        }
        CellFormat::Raw => matches!(spec.codec.decode_exact(value, dst), Ok(true)),
    }
}

/// Decodes every cell into its place, or `None` when the column must take
/// the growing path (which then reports errors and nulls as documented).
pub(super) fn decompress(col: &dyn ByteColumn, spec: &Decode, threads: usize) -> Option<Chunk> {
    let Claims { ends, valid, total } = claims(col, spec)?;
    let mut values = Values::with_capacity(total)?;
    let start_of = |row: usize| if row == 0 { 0 } else { ends[row - 1] };
    let ranges = cut_by_bytes(col.len(), threads, |row| ends[row] - start_of(row));
    let slots = threads::Slots::new(
        &mut values.spare_mut()[..total],
        ranges.iter().map(|r| span(&ends, r)),
    );
    let placed = threads::map_indexed(
        ranges.len(),
        threads,
        |i| {
            // SAFETY: `map_indexed` runs each index once.
            let slot = unsafe { slots.part(i) };
            let base = start_of(ranges[i].start);
            ranges[i].clone().all(|row| {
                let cell = start_of(row) - base..ends[row] - base;
                col.value(row)
                    .is_none_or(|value| decode_in_place(value, spec, &mut slot[cell]))
            })
        },
        |placed: &bool| !*placed,
    );
    drop(slots);
    if !placed.iter().all(|p| *p == Some(true)) {
        return None;
    }
    // SAFETY: every non-null row filled its slot and null rows have none,
    // so the slots tile `total` bytes, all written.
    unsafe { values.set_len(total) };
    Some(Chunk {
        values,
        ends,
        valid,
    })
}

/// The bytes rows `rows` span, given every row's end.
fn span(ends: &[usize], rows: &Range<usize>) -> usize {
    if rows.is_empty() {
        return 0;
    }
    let before = rows.start.checked_sub(1).map_or(0, |row| ends[row]);
    ends[rows.end - 1] - before
}
