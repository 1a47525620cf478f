//! Fuzz checks for the parsers and decoders of `s4_codec`, one `pub fn` per
//! fuzz target (same name). Each one turns the raw fuzz input into calls,
//! asserts the documented contract of the API under test and asserts that no
//! single allocation made while the API ran exceeds a bound that depends on
//! the input's length, never on a size claimed inside it.
//!
//! This file is compiled twice: by the fuzz crate (`fuzz/src/lib.rs`) and by
//! the stable replay test (`tests/fuzz_replay.rs`, via `#[path]`), so it may
//! only use `std` and `s4_codec`. It installs the global allocator in both.
//! Input layouts are documented on each check and in `fuzz/README.md`;
//! `fuzz/seed.py` writes seeds in the same layouts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::ops::Range;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use s4_codec::batch::{self, ByteColumn, CellFormat, Decode, OnError};
use s4_codec::codec::dict::ZstdDictionary;
use s4_codec::codec::CodecKind;
use s4_codec::s4::frame::{self, FrameHeader};
use s4_codec::s4::index::{FrameIndex, IndexEntry, SseBinding};
use s4_codec::{crc32c, Codec, Error};

/// The output limit handed to every limited decoder (bytes).
pub const LIMIT: u64 = 8 << 20;

/// Bound on the largest single allocation while a limited decoder runs:
/// twice the limit (one output buffer that may double while growing, or
/// output plus a copy), 64 bytes per input byte (parsed tables, per-frame
/// bookkeeping), plus 1 MiB of slack for fixed-size scratch.
pub fn decode_bound(input_len: usize) -> usize {
    2 * LIMIT as usize + 64 * input_len + (1 << 20)
}

/// Bound for parsers that decode nothing (frames, sidecars).
pub fn parse_bound(input_len: usize) -> usize {
    64 * input_len + (1 << 20)
}

/// Bound for round trips: encoders allocate `compress_bound` (about the
/// input size) and decoders of honest output need the input size; four
/// times the input plus 1 MiB covers both with room for doubling growth.
/// A decoder that reserved its `limit` up front would exceed it.
pub fn roundtrip_bound(input_len: usize) -> usize {
    4 * input_len + (1 << 20)
}

// ---------------------------------------------------------------------------
// Allocation accounting

/// Allocations above this are refused, so a runaway reservation fails at
/// once (naming the input) instead of exhausting the machine first.
const HARD_CAP: usize = 1 << 30;

static LARGEST: AtomicUsize = AtomicUsize::new(0);
static LABEL: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static LABEL_LEN: AtomicUsize = AtomicUsize::new(0);

/// `System`, recording the largest single allocation or reallocation size.
/// Only Rust allocations are seen; the C engines' own `malloc`s are not.
pub struct CountingAlloc;

fn note(size: usize) -> bool {
    LARGEST.fetch_max(size, Ordering::Relaxed);
    if size <= HARD_CAP {
        return true;
    }
    // No allocation may happen here: write the pieces straight to stderr.
    let label = match LABEL.load(Ordering::Relaxed) {
        p if p.is_null() => &b"(fuzz input)"[..],
        // SAFETY: `set_label` stores a pointer and length of a `'static` str.
        p => unsafe { std::slice::from_raw_parts(p, LABEL_LEN.load(Ordering::Relaxed)) },
    };
    let mut err = std::io::stderr();
    let _ = err.write_all(b"fuzz check: refusing an allocation over 1 GiB while checking ");
    let _ = err.write_all(label);
    let _ = err.write_all(b"\n");
    false
}

// SAFETY: every call is forwarded to `System` unchanged (or refused with null).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !note(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !note(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !note(new_size) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Names the input being checked in the hard-cap message (replay test).
pub fn set_label(label: &'static str) {
    LABEL_LEN.store(label.len(), Ordering::Relaxed);
    LABEL.store(label.as_ptr().cast_mut(), Ordering::Relaxed);
}

/// Runs `f` and asserts that no single allocation during it (on any thread)
/// exceeded `bound`. Checks must run one at a time for this to be exact.
pub fn measured<T>(what: &str, bound: usize, f: impl FnOnce() -> T) -> T {
    LARGEST.store(0, Ordering::SeqCst);
    let out = f();
    let largest = LARGEST.swap(0, Ordering::SeqCst);
    assert!(
        largest <= bound,
        "{what}: largest single allocation was {largest} bytes, over the bound of {bound}"
    );
    out
}

// ---------------------------------------------------------------------------
// Input helpers

/// Fixed-width little-endian fields off the front of a fuzz input; missing
/// bytes read as zero, so every input means something.
pub struct Bytes<'a>(pub &'a [u8]);

impl<'a> Bytes<'a> {
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(n.min(self.0.len()));
        self.0 = tail;
        head
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        let head = self.take(N);
        out[..head.len()].copy_from_slice(head);
        out
    }

    pub fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    pub fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// A column of borrowed cells.
pub struct Cells<'a>(pub Vec<Option<&'a [u8]>>);

impl ByteColumn for Cells<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn value(&self, row: usize) -> Option<&[u8]> {
        self.0[row]
    }
}

/// Cells laid end to end as `len: u16 LE` + bytes; `len == 0xFFFF` is a null
/// cell; a length past the end takes what is left.
pub fn split_cells(data: &[u8]) -> Cells<'_> {
    let mut b = Bytes(data);
    let mut cells = Vec::new();
    while !b.0.is_empty() {
        match b.u16() {
            0xFFFF => cells.push(None),
            len => cells.push(Some(b.take(len as usize))),
        }
    }
    Cells(cells)
}

/// The structured 1 KiB dictionary of `vectors.json` (`cpu_zstd_dict`).
pub fn dictionary() -> &'static Arc<ZstdDictionary> {
    static DICT: OnceLock<Arc<ZstdDictionary>> = OnceLock::new();
    DICT.get_or_init(|| {
        let bytes = include_bytes!("../data/structured.dict").to_vec();
        Arc::new(ZstdDictionary::new(bytes).expect("the vectors' dictionary loads"))
    })
}

/// 1 or 2 worker threads, from one bit of the input.
pub fn threads(bit: bool) -> usize {
    1 + bit as usize
}

// ---------------------------------------------------------------------------
// Independent models of the formats (FORMAT.md §8.3), the oracles

/// One data frame as the §8.3 reader loop sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFrame {
    pub at: usize,
    pub codec_id: u32,
    pub original_size: u64,
    pub crc: u32,
    pub payload: Range<usize>,
}

fn le64(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(data[at..at + 8].try_into().unwrap())
}

fn le32(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().unwrap())
}

/// Parses one S4F2 frame at `at` (no padding skipping): the frame and the
/// offset after it, or `None` if §8.3 step 4 fails.
pub fn model_frame(body: &[u8], at: usize) -> Option<(ModelFrame, usize)> {
    let rest = body.get(at..)?;
    if rest.len() < 28 || rest[..4] != *b"S4F2" {
        return None;
    }
    let codec_id = le32(rest, 4);
    let len = le64(rest, 16);
    if codec_id > 8 || len > (rest.len() - 28) as u64 {
        return None;
    }
    let end = at + 28 + len as usize;
    let frame = ModelFrame {
        at,
        codec_id,
        original_size: le64(rest, 8),
        crc: le32(rest, 24),
        payload: at + 28..end,
    };
    Some((frame, end))
}

/// The §8.3 reader loop: the data frames before the first error, and
/// whether there was one.
pub fn model_body(body: &[u8]) -> (Vec<ModelFrame>, bool) {
    let (mut frames, mut at) = (Vec::new(), 0);
    while at < body.len() {
        let rest = &body[at..];
        if rest.len() >= 4 && rest[..4] == *b"S4P1" {
            if rest.len() < 12 || le64(rest, 4) > (rest.len() - 12) as u64 {
                return (frames, true);
            }
            at += 12 + le64(rest, 4) as usize;
            continue;
        }
        match model_frame(body, at) {
            Some((frame, next)) => {
                frames.push(frame);
                at = next;
            }
            None => return (frames, true),
        }
    }
    (frames, false)
}

/// One frame's payload decoded by the codec its header names, or `None`.
pub fn decode_frame_ref(
    body: &[u8],
    frame: &ModelFrame,
    dict: Option<&Arc<ZstdDictionary>>,
) -> Option<Vec<u8>> {
    if frame.original_size > LIMIT {
        return None;
    }
    let kind = CodecKind::from_id(frame.codec_id)?;
    let codec = frame::decoder_for(kind, dict).ok()?;
    let out = codec
        .decompress(&body[frame.payload.clone()], frame.original_size, frame.crc)
        .ok()?;
    assert_eq!(
        out.len() as u64,
        frame.original_size,
        "decompress kept its size"
    );
    Some(out)
}

/// A whole framed body decoded frame by frame, if every frame decodes and
/// the total fits `limit`.
pub fn decode_body_ref(
    body: &[u8],
    dict: Option<&Arc<ZstdDictionary>>,
    limit: u64,
) -> Option<Vec<u8>> {
    let (frames, error) = model_body(body);
    let claimed = frames
        .iter()
        .fold(0u64, |sum, f| sum.saturating_add(f.original_size));
    if error || claimed > limit {
        return None;
    }
    let mut out = Vec::new();
    for frame in &frames {
        out.extend_from_slice(&decode_frame_ref(body, frame, dict)?);
    }
    Some(out)
}

fn is_frame_error(err: &Error) -> bool {
    matches!(err, Error::Frame(_))
}

// ---------------------------------------------------------------------------
// Codec payloads

/// `codec_zstd_decode`: `claim: u64 | crc: u32 | zstd payload`, the claim
/// taken modulo `LIMIT + 1`. A success must be exactly the claimed size and
/// CRC, and the unsized decoder must read the same stream to the same bytes.
pub fn codec_zstd_decode(data: &[u8]) {
    sized_decode(&Codec::zstd(3), data);
}

/// `codec_gzip_decode`: as `codec_zstd_decode` with a gzip payload.
pub fn codec_gzip_decode(data: &[u8]) {
    sized_decode(&Codec::gzip(6), data);
}

fn sized_decode(codec: &Codec, data: &[u8]) {
    let mut b = Bytes(data);
    let claim = b.u64() % (LIMIT + 1);
    let crc = b.u32();
    let payload = b.rest();
    let bound = decode_bound(data.len());
    let Ok(out) = measured("decompress", bound, || {
        codec.decompress(payload, claim, crc)
    }) else {
        return;
    };
    assert_eq!(out.len() as u64, claim, "output has the claimed size");
    assert_eq!(crc32c(&out), crc, "output has the claimed CRC32C");
    let mut again = b"prefix".to_vec();
    let n = measured("decompress_unsized_append", bound, || {
        codec.decompress_unsized_append(payload, LIMIT, &mut again)
    })
    .expect("a payload the sized decoder accepts decodes unsized too");
    assert_eq!(n, out.len());
    assert_eq!(&again[..6], b"prefix");
    assert!(again[6..] == out[..], "unsized and sized decoders disagree");
}

/// `codec_raw_decode`: `sel: u8 | payload`. `sel % 3` picks zstd, gzip or
/// passthrough, `sel / 3 % 8 * 5` bytes already sit in the output vector.
/// The unsized decoder appends at most `LIMIT` bytes, keeps what was there,
/// leaves it unchanged on error, and its output passes the sized decoder.
pub fn codec_raw_decode(data: &[u8]) {
    let mut b = Bytes(data);
    let sel = b.u8();
    let payload = b.rest();
    let codec = match sel % 3 {
        0 => Codec::zstd(3),
        1 => Codec::gzip(6),
        _ => Codec::Passthrough,
    };
    let prefix = vec![0xA5; (sel / 3 % 8) as usize * 5];
    let mut out = prefix.clone();
    let bound = decode_bound(data.len());
    let result = measured("decompress_unsized_append", bound, || {
        codec.decompress_unsized_append(payload, LIMIT, &mut out)
    });
    assert!(
        out.starts_with(&prefix),
        "the bytes already in `out` are kept"
    );
    let Ok(n) = result else {
        assert_eq!(out.len(), prefix.len(), "a failed decode appends nothing");
        return;
    };
    assert_eq!(out.len(), prefix.len() + n);
    assert!(n as u64 <= LIMIT, "{n} bytes is over the limit");
    let got = &out[prefix.len()..];
    let again = measured("decompress", bound, || {
        codec.decompress(payload, n as u64, crc32c(got))
    })
    .expect("what the unsized decoder produced passes the sized decoder");
    assert!(again == got, "sized and unsized decoders disagree");
}

// ---------------------------------------------------------------------------
// Frames

/// `frame_parse`: the whole input is an object body. `read_frame`, `frames`,
/// `body_info` and `declared_size` must agree with an independent model of
/// §8.3, fail only with frame errors, and allocate nothing claim-sized.
pub fn frame_parse(data: &[u8]) {
    let bound = parse_bound(data.len());
    let (model, model_error) = model_body(data);

    let read = measured("read_frame", bound, || frame::read_frame(data));
    match (read, model_frame(data, 0)) {
        (Ok((header, payload, rest)), Some((m, end))) => {
            assert_eq!(header.to_bytes()[..], data[..28], "header round-trips");
            check_header(&header, &m);
            assert_eq!(payload.as_ptr(), data[m.payload.clone()].as_ptr());
            assert_eq!(payload.len(), m.payload.len());
            assert!(std::ptr::eq(rest, &data[end..]), "rest follows the payload");
        }
        (Err(err), None) => assert!(is_frame_error(&err), "{err:?}"),
        (got, want) => panic!("read_frame gave {got:?}, the model {want:?}"),
    }

    // `peek` reads a header without its payload: where a whole frame parses,
    // it agrees with it; padding reports its whole stored extent.
    match (frame::peek(data), frame::read_frame(data)) {
        (Ok(frame::Extent::Frame(peeked)), Ok((header, ..))) => assert_eq!(peeked, header),
        (Ok(frame::Extent::Padding { stored }), _) => {
            assert!(data.starts_with(b"S4P1") && data.len() >= 12);
            let pad = u64::from_le_bytes(data[4..12].try_into().unwrap());
            assert_eq!(stored, pad + 12);
        }
        (Ok(frame::Extent::Frame(peeked)), Err(_)) => {
            // Only the payload may be missing.
            assert_eq!(peeked.to_bytes()[..], data[..28]);
            assert!(data.len() as u64 - 28 < peeked.compressed_size);
        }
        (Err(err), _) => assert!(is_frame_error(&err), "{err:?}"),
    }

    let items: Vec<_> = measured("frames", bound, || frame::frames(data).collect());
    let oks = items.iter().take_while(|item| item.is_ok()).count();
    assert_eq!(oks, model.len(), "frames yields the model's frames");
    assert_eq!(items.len(), model.len() + model_error as usize);
    for (item, m) in items.iter().zip(&model) {
        let (header, payload) = item.as_ref().unwrap();
        check_header(header, m);
        assert_eq!(payload.as_ptr(), data[m.payload.clone()].as_ptr());
        assert_eq!(payload.len(), m.payload.len());
    }
    if let Some(Err(err)) = items.last() {
        assert!(is_frame_error(err), "{err:?}");
    }

    let claimed = model
        .iter()
        .fold(0u64, |sum, f| sum.saturating_add(f.original_size));
    assert_eq!(frame::declared_size(data), claimed);
    let info = measured("body_info", bound, || frame::body_info(data));
    match info {
        Ok(info) => {
            assert!(!model_error, "body_info accepted a body the model refuses");
            assert_eq!(info.frames, model.len());
            assert_eq!(info.original_size, claimed);
            let stored = model
                .iter()
                .fold(0u64, |sum, f| sum.saturating_add(f.payload.len() as u64));
            assert_eq!(info.compressed_size, stored);
            let first = model.first().map(|f| f.codec_id);
            let uniform = model.iter().all(|f| Some(f.codec_id) == first);
            let want = first.filter(|_| uniform).and_then(CodecKind::from_id);
            assert_eq!(info.codec, want);
            // When every frame is an honest passthrough frame the combined
            // CRC is the CRC of the payloads laid end to end.
            let honest = model.iter().all(|f| {
                let payload = &data[f.payload.clone()];
                f.codec_id == 0
                    && f.original_size == payload.len() as u64
                    && crc32c(payload) == f.crc
            });
            if honest {
                let joined: Vec<u8> = model
                    .iter()
                    .flat_map(|f| data[f.payload.clone()].iter().copied())
                    .collect();
                assert_eq!(info.crc32c, crc32c(&joined), "combined CRC32C");
            }
        }
        Err(err) => {
            assert!(model_error, "body_info refused a body the model accepts");
            assert!(is_frame_error(&err), "{err:?}");
        }
    }
}

fn check_header(header: &FrameHeader, m: &ModelFrame) {
    assert_eq!(header.codec.id(), m.codec_id);
    assert_eq!(header.original_size, m.original_size);
    assert_eq!(header.compressed_size, m.payload.len() as u64);
    assert_eq!(header.crc32c, m.crc);
}

/// `frame_roundtrip`: `sel: u8 | level: u8 | chunk: u8 | pad: u8 | data`.
/// `data` is cut into `chunk + 1`-byte pieces (at most 64), each written with
/// `encode_frame_append` (codec `sel % 3`, rotating per frame if `sel & 4`),
/// with an S4P1 padding frame of `pad % 32` bytes (filler `pad`) after every
/// frame when `pad != 0`; `sel & 8` appends an empty frame. Parsing must give
/// back every piece, header and the whole input's size and CRC.
pub fn frame_roundtrip(data: &[u8]) {
    let mut b = Bytes(data);
    let (sel, level, chunk, pad) = (b.u8(), b.u8(), b.u8(), b.u8());
    let input = b.rest();
    let mut pieces: Vec<&[u8]> = input.chunks(frame_size(input, chunk as usize)).collect();
    if sel & 8 != 0 {
        pieces.push(&[]);
    }
    let codec_of = |i: usize| {
        let rotate = if sel & 4 != 0 { i } else { 0 };
        roundtrip_codec(sel as usize + rotate, level)
    };
    let bound = roundtrip_bound(data.len());
    let body = measured("encode_frame_append", bound, || {
        let mut body = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            frame::encode_frame_append(&codec_of(i), piece, &mut body).expect("encode");
            if pad != 0 {
                body.extend_from_slice(b"S4P1");
                body.extend_from_slice(&u64::from(pad % 32).to_le_bytes());
                body.resize(body.len() + (pad % 32) as usize, pad);
            }
        }
        body
    });

    let parsed: Vec<_> = measured("frames", bound, || frame::frames(&body).collect());
    assert_eq!(parsed.len(), pieces.len());
    for (i, (item, piece)) in parsed.iter().zip(&pieces).enumerate() {
        let (header, payload) = item.as_ref().expect("an encoded frame parses");
        let codec = codec_of(i);
        assert_eq!(header.codec, codec.kind());
        assert_eq!(header.original_size, piece.len() as u64);
        assert_eq!(header.crc32c, crc32c(piece));
        let decoder = frame::decoder_for(header.codec, None).unwrap();
        let out = measured("decompress", bound, || {
            decoder.decompress(payload, header.original_size, header.crc32c)
        })
        .expect("an encoded frame decodes");
        assert!(out == *piece);
    }
    if let Some(Ok((first, ..))) = parsed.first() {
        let (header, ..) = frame::read_frame(&body).expect("the first frame reads");
        assert_eq!(header, *first);
    }
    let info = frame::body_info(&body).expect("body_info");
    assert_eq!(info.frames, pieces.len());
    assert_eq!(info.original_size, input.len() as u64);
    assert_eq!(info.crc32c, crc32c(input));
    let uniform = (0..pieces.len()).all(|i| codec_of(i).kind() == codec_of(0).kind());
    let want = (!pieces.is_empty() && uniform).then(|| codec_of(0).kind());
    assert_eq!(info.codec, want);
    assert_eq!(frame::declared_size(&body), input.len() as u64);
}

/// Frames of `chunk + 1` bytes, but at most `MAX_FRAMES` of them: more
/// frames only repeat the same work and slow the fuzzer down.
pub fn frame_size(data: &[u8], chunk: usize) -> usize {
    const MAX_FRAMES: usize = 64;
    (chunk + 1).max(data.len().div_ceil(MAX_FRAMES))
}

/// The CPU codec `sel % 3` at `level` (zstd's level read as signed).
pub fn roundtrip_codec(sel: usize, level: u8) -> Codec {
    match sel % 3 {
        0 => Codec::zstd(level as i8 as i32),
        1 => Codec::gzip(level as u32),
        _ => Codec::Passthrough,
    }
}

// ---------------------------------------------------------------------------
// Sidecars

/// `index_decode`: `a: u64 | b: u64 | sidecar`. A sidecar that decodes must
/// satisfy §9.2 (no overflow, ordered entries) and re-encode to itself;
/// `covering` and `plan_range` are checked on ranges derived from `a`, `b`
/// and the entries' edges.
pub fn index_decode(data: &[u8]) {
    let mut b = Bytes(data);
    let (x, y) = (b.u64(), b.u64());
    let sidecar = b.rest();
    let decoded = measured("FrameIndex::decode", parse_bound(data.len()), || {
        FrameIndex::decode(sidecar)
    });
    let index = match decoded {
        Ok(index) => index,
        Err(err) => return assert!(matches!(err, Error::Index(_)), "{err:?}"),
    };
    for pair in index.entries.windows(2) {
        let (p, n) = (pair[0], pair[1]);
        assert!(n.original_offset >= p.original_offset + p.original_size);
        assert!(n.compressed_offset >= p.compressed_offset + p.compressed_size);
    }
    let encoded = measured("FrameIndex::encode", parse_bound(data.len()), || {
        index.encode()
    })
    .expect("a decoded sidecar encodes");
    assert_eq!(FrameIndex::decode(&encoded).expect("re-decodes"), index);
    check_ranges(&index, x, y);
}

/// Ranges derived from `x`, `y` and the entries' edges, each checked.
fn check_ranges(index: &FrameIndex, x: u64, y: u64) {
    let total = index.total_original_size();
    let wrap = |v: u64| v.checked_rem(total.wrapping_add(1)).unwrap_or(v);
    let mut points = vec![0, total, total.saturating_add(1), x, y, wrap(x), wrap(y)];
    let n = index.entries.len() as u64;
    if n > 0 {
        for i in [0, n - 1, x % n, y % n] {
            let e = index.entries[i as usize];
            let end = e.original_offset + e.original_size;
            points.extend([
                e.original_offset,
                e.original_offset.saturating_add(1),
                end.saturating_sub(1),
                end,
            ]);
        }
    }
    points.sort_unstable();
    points.dedup();
    for &s in &points {
        for &e in &points {
            check_plan(index, s, e);
        }
    }
}

/// Whether the entries hold every byte of `[start, end)` (no gap).
fn fully_held(index: &FrameIndex, start: u64, end: u64) -> bool {
    let mut at = start;
    for e in &index.entries {
        let e_end = e.original_offset + e.original_size;
        if e.original_size == 0 || e_end <= at {
            continue;
        }
        if e.original_offset > at {
            return false;
        }
        at = e_end;
        if at >= end {
            return true;
        }
    }
    false
}

/// `covering` and `plan_range` for `[start, end)`: accepted exactly when
/// the entries hold every byte of it, naming the entries at both ends.
pub fn check_plan(index: &FrameIndex, start: u64, end: u64) {
    let total = index.total_original_size();
    let covering = index.covering(start, end);
    let plan = index.plan_range(start, end);
    assert_eq!(covering.is_ok(), plan.is_ok(), "covering vs plan_range");
    if start > end || end > total {
        assert!(covering.is_err(), "[{start}, {end}) is outside {total}");
        return;
    }
    if start == end {
        assert_eq!(covering.unwrap(), 0..0);
        assert_eq!(plan.unwrap(), (0, 0, 0));
        return;
    }
    let holder = |p: u64| {
        index
            .entries
            .iter()
            .position(|e| e.original_offset <= p && p - e.original_offset < e.original_size)
    };
    let Ok(span) = covering else {
        assert!(
            !fully_held(index, start, end),
            "[{start}, {end}) refused though frames hold every byte of it"
        );
        return;
    };
    assert!(
        fully_held(index, start, end),
        "[{start}, {end}) touches a gap"
    );
    assert_eq!(Some(span.start), holder(start), "first entry holds start");
    assert_eq!(
        Some(span.end - 1),
        holder(end - 1),
        "last entry holds end - 1"
    );
    let (first, last) = (index.entries[span.start], index.entries[span.end - 1]);
    assert_eq!(
        plan.unwrap(),
        (
            first.compressed_offset,
            last.compressed_offset + last.compressed_size,
            start - first.original_offset
        )
    );
}

/// `index_roundtrip`: `flags: u8 | padded: u64 | source: u64 | etag_len: u8
/// | etag | sse: 30 bytes | base_o: u64 | base_c: u64 | entries` where each
/// entry is `gap_o: u16 | size_o: u32 | gap_c: u16 | size_c: u32`, stacked
/// from the bases (stopping before u64 overflow). `flags & 1` adds the SSE
/// block, `flags & 2` takes the etag as 4097 `e`s (must refuse to encode),
/// `flags & 4` binds it again with `FrameIndex::bind`. Then encode, decode
/// and range planning must agree with the index built.
pub fn index_roundtrip(data: &[u8]) {
    let mut b = Bytes(data);
    let flags = b.u8();
    let total_padded_size = b.u64();
    let source = b.u64();
    let etag_len = b.u8() as usize;
    let etag = String::from_utf8_lossy(b.take(etag_len)).into_owned();
    let sse = SseBinding {
        enc_chunk_size: b.u32(),
        enc_chunk_count: b.u32(),
        enc_key_id: b.u16(),
        enc_salt: b.u64().to_le_bytes(),
        enc_plaintext_len: b.u64(),
        enc_header_bytes: b.u32(),
    };
    let (mut original, mut compressed) = (b.u64(), b.u64());
    let mut entries = Vec::new();
    while !b.0.is_empty() {
        let next = |at: u64, gap: u64, size: u64| {
            let start = at.checked_add(gap)?;
            Some((start, start.checked_add(size)?))
        };
        let o = next(original, b.u16().into(), b.u32().into());
        let c = next(compressed, b.u16().into(), b.u32().into());
        let (Some((o_start, o_end)), Some((c_start, c_end))) = (o, c) else {
            break;
        };
        entries.push(IndexEntry {
            original_offset: o_start,
            original_size: o_end - o_start,
            compressed_offset: c_start,
            compressed_size: c_end - c_start,
        });
        (original, compressed) = (o_end, c_end);
    }
    let mut index = FrameIndex {
        total_padded_size,
        source_compressed_size: Some(source),
        source_etag: Some(if flags & 2 != 0 {
            "e".repeat(4097)
        } else {
            etag
        }),
        sse: (flags & 1 != 0).then_some(sse),
        entries,
    };
    let bound = roundtrip_bound(data.len() + 4097);
    let encoded = measured("FrameIndex::encode", bound, || index.encode());
    if flags & 2 != 0 {
        assert!(
            matches!(encoded, Err(Error::Index(_))),
            "an etag over 4096 bytes must not be written"
        );
        return;
    }
    let encoded = encoded.expect("an index within limits encodes");
    // The "absent" encodings of §9.1 read back as absent.
    index.source_compressed_size = index.source_compressed_size.filter(|&s| s != 0);
    index.source_etag = index.source_etag.filter(|e| !e.is_empty());
    index.sse = index
        .sse
        .filter(|s| s.enc_chunk_size != 0 && s.enc_chunk_count != 0);
    let decoded = measured("FrameIndex::decode", bound, || FrameIndex::decode(&encoded))
        .expect("an encoded index decodes");
    assert_eq!(decoded, index);
    if flags & 4 != 0 {
        let (size, tag) = (source.rotate_left(7), format!("{total_padded_size:x}"));
        let bound_again = FrameIndex::bind(&encoded, size, Some(&tag)).expect("bind");
        let rebound = FrameIndex::decode(&bound_again).expect("a bound sidecar decodes");
        assert_eq!(rebound.source_compressed_size, (size != 0).then_some(size));
        assert_eq!(rebound.source_etag, Some(tag));
        assert_eq!(rebound.entries, index.entries);
        assert_eq!(rebound.sse, index.sse);
    }
    check_ranges(&index, source, total_padded_size);
}

// ---------------------------------------------------------------------------
// Codec round trip

/// `codec_roundtrip`: `sel: u8 | level: u8 | data`. `sel % 3` picks zstd
/// (level read as i8), gzip or passthrough; `sel & 0x80` asks for 2
/// threads. Compress must report the input's size and CRC, every decoder
/// must give the input back, and a wrong size or CRC must be refused.
pub fn codec_roundtrip(data: &[u8]) {
    let mut b = Bytes(data);
    let (sel, level) = (b.u8(), b.u8());
    let input = b.rest();
    let codec = roundtrip_codec(sel as usize, level);
    let threads = threads(sel & 0x80 != 0);
    let bound = roundtrip_bound(data.len());
    let (payload, size, crc) = measured("compress", bound, || codec.compress(input, threads))
        .expect("compression cannot fail");
    assert_eq!(size, input.len() as u64);
    assert_eq!(crc, crc32c(input));
    let out = measured("decompress", bound, || {
        codec.decompress(&payload, size, crc)
    })
    .expect("a compressed payload decodes");
    assert!(out == input, "round trip changed the bytes");

    let mut unsized_out = b"keep".to_vec();
    measured("decompress_unsized_append", bound, || {
        codec.decompress_unsized_append(&payload, LIMIT, &mut unsized_out)
    })
    .expect("a compressed payload decodes unsized");
    assert!(unsized_out[4..] == *input && unsized_out.starts_with(b"keep"));

    let mut appended = b"head".to_vec();
    let written = measured("compress_append", bound, || {
        codec.compress_append(input, &mut appended)
    })
    .expect("compress_append");
    assert_eq!(written, appended.len() - 4);
    assert!(codec.decompress(&appended[4..], size, crc).unwrap() == input);

    assert!(
        codec.decompress(&payload, size + 1, crc).is_err(),
        "size + 1"
    );
    if size > 0 {
        assert!(
            codec.decompress(&payload, size - 1, crc).is_err(),
            "size - 1"
        );
    }
    assert!(
        codec.decompress(&payload, size, crc ^ 1).is_err(),
        "crc ^ 1"
    );
}

// ---------------------------------------------------------------------------
// Columns

/// The decoded value of one cell alone, as `batch::decompress` must give it.
fn decode_cell_ref(cell: &[u8], spec: &Decode) -> Option<Vec<u8>> {
    match spec.format {
        CellFormat::S4 => decode_body_ref(cell, spec.dict.as_ref(), spec.max_output_size),
        CellFormat::Raw => {
            let mut out = Vec::new();
            spec.codec
                .decompress_unsized_append(cell, spec.max_output_size, &mut out)
                .ok()?;
            Some(out)
        }
    }
}

/// `column_decompress`: `mode: u8 | cells` (cells as in `split_cells`).
/// `mode & 1`: raw (else S4) cells; `mode & 2`: `OnError::Null`; `mode >> 2
/// & 3`: raw codec zstd, gzip, passthrough, zstd; `mode & 16`: 2 threads;
/// `mode & 32`: the dictionary. Every row must equal the cell decoded alone
/// (null where that fails under `Null`; with `Raise` the error names the
/// first such row). Allocation bound: `decode_bound` plus twice the bytes
/// the cells really decode to, which a column may legitimately hold.
pub fn column_decompress(data: &[u8]) {
    let mut b = Bytes(data);
    let mode = b.u8();
    let col = split_cells(b.rest());
    let spec = Decode {
        format: if mode & 1 != 0 {
            CellFormat::Raw
        } else {
            CellFormat::S4
        },
        codec: match mode >> 2 & 3 {
            1 => Codec::gzip(6),
            2 => Codec::Passthrough,
            _ => Codec::zstd(3),
        },
        max_output_size: LIMIT,
        on_error: if mode & 2 != 0 {
            OnError::Null
        } else {
            OnError::Raise
        },
        dict: (mode & 32 != 0).then(|| dictionary().clone()),
    };
    let threads = threads(mode & 16 != 0);
    let want: Vec<Option<Option<Vec<u8>>>> = col
        .0
        .iter()
        .map(|cell| cell.map(|c| decode_cell_ref(c, &spec)))
        .collect();
    let real: usize = want.iter().flatten().flatten().map(Vec::len).sum();
    let bound = decode_bound(data.len()) + 2 * real;
    let result = measured("batch::decompress", bound, || {
        batch::decompress(&col, &spec, threads).map(|out| out.concat(threads))
    });
    let first_bad = want.iter().position(|w| matches!(w, Some(None)));
    let out = match result {
        Err(err) => {
            assert_eq!(spec.on_error, OnError::Raise, "on_error=null raised {err}");
            assert_eq!(
                Some(err.row),
                first_bad,
                "the error names the first bad row"
            );
            return;
        }
        Ok(out) => out.expect("concat"),
    };
    if spec.on_error == OnError::Raise {
        assert_eq!(first_bad, None, "a bad row was not raised");
    }
    assert_eq!(out.offsets.len(), col.len() + 1);
    assert_eq!(out.offsets[0], 0);
    for (row, want) in want.iter().enumerate() {
        let valid = out.validity.as_ref().is_none_or(|v| v[row]);
        let (s, e) = (out.offsets[row] as usize, out.offsets[row + 1] as usize);
        match want {
            Some(Some(bytes)) => {
                assert!(valid, "row {row} decodes alone but came out null");
                assert!(out.values[s..e] == bytes[..], "row {row} differs");
            }
            _ => {
                assert!(!valid, "row {row} should be null");
                assert_eq!(s, e, "a null row holds no bytes");
            }
        }
    }
}

/// `column_roundtrip`: `mode: u8 | level: u8 | cells`. `mode % 3`: codec
/// (as `roundtrip_codec`), `mode & 4`: raw (else S4) cells, `mode & 8`: 2
/// threads. Compressing then decompressing the column must give it back,
/// nulls included.
pub fn column_roundtrip(data: &[u8]) {
    let mut b = Bytes(data);
    let (mode, level) = (b.u8(), b.u8());
    let col = split_cells(b.rest());
    let codec = roundtrip_codec(mode as usize, level);
    let format = if mode & 4 != 0 {
        CellFormat::Raw
    } else {
        CellFormat::S4
    };
    let threads = threads(mode & 8 != 0);
    let bound = roundtrip_bound(data.len());
    let packed = measured("batch::compress", bound, || {
        batch::compress(&col, &codec, format, threads).map(|out| out.concat(threads))
    })
    .expect("compression cannot fail")
    .expect("concat");
    let rows = |c: &s4_codec::batch::Contiguous| -> Vec<Option<Vec<u8>>> {
        (0..c.offsets.len() - 1)
            .map(|i| {
                let valid = c.validity.as_ref().is_none_or(|v| v[i]);
                let range = c.offsets[i] as usize..c.offsets[i + 1] as usize;
                valid.then(|| c.values[range].to_vec())
            })
            .collect()
    };
    let compressed = rows(&packed);
    assert_eq!(compressed.len(), col.len());
    for (cell, packed) in col.0.iter().zip(&compressed) {
        assert_eq!(cell.is_none(), packed.is_none(), "nulls stay null");
        if let (Some(cell), Some(packed), CellFormat::S4) = (cell, packed, format) {
            let info = frame::body_info(packed).expect("an S4 cell parses");
            assert_eq!(info.original_size, cell.len() as u64);
            assert_eq!(info.crc32c, crc32c(cell));
        }
    }
    let packed_col = Cells(compressed.iter().map(Option::as_deref).collect());
    let spec = Decode {
        format,
        codec,
        max_output_size: LIMIT,
        on_error: OnError::Raise,
        dict: None,
    };
    let out = measured("batch::decompress", bound, || {
        batch::decompress(&packed_col, &spec, threads).map(|out| out.concat(threads))
    })
    .expect("a compressed column decodes")
    .expect("concat");
    let got = rows(&out);
    let want: Vec<Option<Vec<u8>>> = col.0.iter().map(|c| c.map(<[u8]>::to_vec)).collect();
    assert!(got == want, "column round trip changed the cells");
}
