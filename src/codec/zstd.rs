//! zstd engine: one-shot compression that records the content size, and a
//! one-shot decoder that writes into a caller-sized buffer. Contexts are
//! reused per thread, so a call costs no context set-up.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::Mutex;

use zstd_safe::{CCtx, CParameter, DCtx, DDict, InBuffer, OutBuffer, WriteBuf};

use crate::error::{try_reserve, Error, Result};

pub const MIN_LEVEL: i32 = 1;
pub const MAX_LEVEL: i32 = 22;
pub const DEFAULT_LEVEL: i32 = 3;

/// An RLE block (3-byte header + 1 byte) regenerates at most 128 KiB, the
/// densest thing a zstd stream can hold, so no stream of `n` bytes decodes to
/// more than `n * 32768` bytes.
pub fn max_decoded_len(compressed_len: usize) -> u64 {
    (compressed_len as u64).saturating_mul(32_768)
}

pub fn compress_bound(len: usize) -> usize {
    zstd_safe::compress_bound(len)
}

thread_local! {
    static CCTX: RefCell<(CCtx<'static>, i32)> = RefCell::new((CCtx::create(), 0));
    static DCTX: RefCell<DCtx<'static>> = RefCell::new(DCtx::create());
}

/// The one multi-threaded context of the process: its zstd workers are the
/// only ones alive, and one call at a time uses them (thread policy). It
/// belongs to the fork generation that made it (`threads::generation`).
static MT_CCTX: Mutex<Option<(u64, CCtx<'static>)>> = Mutex::new(None);

/// A `WriteBuf` over possibly uninitialised memory; zstd only ever writes it.
pub(crate) struct UninitBuf<'a> {
    buf: &'a mut [MaybeUninit<u8>],
    filled: usize,
}

impl<'a> UninitBuf<'a> {
    pub(crate) fn new(buf: &'a mut [MaybeUninit<u8>]) -> Self {
        Self { buf, filled: 0 }
    }
}

// SAFETY: `as_slice` covers only the prefix zstd reported as written.
unsafe impl WriteBuf for UninitBuf<'_> {
    fn as_slice(&self) -> &[u8] {
        // SAFETY: the first `filled` bytes were written by zstd.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast(), self.filled) }
    }
    fn capacity(&self) -> usize {
        self.buf.len()
    }
    fn as_mut_ptr(&mut self) -> *mut u8 {
        self.buf.as_mut_ptr().cast()
    }
    unsafe fn filled_until(&mut self, n: usize) {
        self.filled = n;
    }
}

/// A zstd engine error, said as what is wrong with the stream.
pub(crate) fn zstd_error(code: usize) -> Error {
    use zstd_sys::ZSTD_ErrorCode::*;
    // SAFETY: pure function of an error code.
    let what = match unsafe { zstd_sys::ZSTD_getErrorCode(code) } {
        ZSTD_error_prefix_unknown => "not a zstd frame (bad magic)",
        ZSTD_error_corruption_detected => "corrupt zstd data",
        ZSTD_error_checksum_wrong => "zstd content checksum mismatch",
        ZSTD_error_srcSize_wrong => "zstd frame is truncated or has trailing bytes",
        ZSTD_error_frameParameter_windowTooLarge => TOO_LARGE_WINDOW,
        ZSTD_error_frameParameter_unsupported => "unsupported zstd frame parameters",
        ZSTD_error_dictionary_wrong => "zstd frame was compressed with another dictionary",
        ZSTD_error_dictionary_corrupted => "corrupt zstd dictionary",
        ZSTD_error_memory_allocation => "zstd could not allocate its decoder state",
        _ => return Error::io(format!("zstd: {}", zstd_safe::get_error_name(code))),
    };
    Error::io(what)
}

pub(crate) const INCOMPLETE: &str = "incomplete zstd frame";
const TOO_LARGE_WINDOW: &str =
    "zstd window over 128 MiB (larger than the reference decoder accepts)";

/// Inputs at least this long may be compressed by several worker threads.
pub const PARALLEL_MIN_BYTES: usize = 4 << 20;
/// zstd's smallest job; jobs are cut at least this big.
const MIN_JOB_BYTES: usize = 1 << 20;

/// Compresses `src` into one frame with its content size recorded, on up to
/// `threads` threads (inputs under `PARALLEL_MIN_BYTES` always use one).
/// `dst` must hold `compress_bound(src.len())` bytes. Returns the bytes written.
pub fn compress(
    src: &[u8],
    level: i32,
    threads: usize,
    dst: &mut [MaybeUninit<u8>],
) -> Result<usize> {
    debug_assert!(dst.len() >= compress_bound(src.len()));
    let mut out = UninitBuf::new(dst);
    let threads = crate::threads::clamp(threads);
    if threads > 1 && src.len() >= PARALLEL_MIN_BYTES {
        // A call that finds the shared workers busy compresses on its own
        // thread below: the bytes are the same, only slower.
        if let Ok(mut shared) = MT_CCTX.try_lock() {
            let generation = crate::threads::generation();
            if shared
                .as_ref()
                .is_some_and(|(made_in, _)| *made_in != generation)
            {
                // Made before a fork: its workers are not in this process,
                // and freeing it would wait for them forever.
                std::mem::forget(shared.take());
            }
            let (_, cctx) = shared.get_or_insert_with(|| (generation, CCtx::create()));
            // Jobs of ~1/2 input per thread keep the cores busy; the frame
            // stays one standard frame with its content size.
            let job = (src.len() / (2 * threads)).max(MIN_JOB_BYTES);
            return cctx
                .set_parameter(CParameter::CompressionLevel(level))
                .and_then(|_| cctx.set_parameter(CParameter::NbWorkers(threads as u32)))
                .and_then(|_| cctx.set_parameter(CParameter::JobSize(job as u32)))
                .and_then(|_| cctx.compress2(&mut out, src))
                .map_err(zstd_error);
        }
    }
    // With the source size known zstd writes Frame_Content_Size and shrinks
    // the window to the input, so the level table's largest window (2^27 at
    // level 22) is the most a reader ever needs.
    CCTX.with_borrow_mut(|(cctx, current_level)| {
        // Re-setting an unchanged level would make zstd rebuild its tables.
        if *current_level != level {
            cctx.set_parameter(CParameter::CompressionLevel(level))?;
            *current_level = level;
        }
        cctx.compress2(&mut out, src)
    })
    .map_err(zstd_error)
}

/// Compresses `src` exactly as the S4 gateway's streaming encoder does: the
/// level alone, no pledged size, so the frame has no content size and the
/// level's unknown-size window. With libzstd 1.5.7 (bundled here, as in the
/// gateway) the bytes are identical to the gateway's. `dst` must hold
/// `compress_bound(src.len())` bytes.
pub fn compress_like_gateway(src: &[u8], level: i32, dst: &mut [MaybeUninit<u8>]) -> Result<usize> {
    use zstd_safe::ResetDirective;
    use zstd_sys::ZSTD_EndDirective::{ZSTD_e_continue, ZSTD_e_end};
    let mut buf = UninitBuf::new(dst);
    CCTX.with_borrow_mut(|(cctx, current_level)| {
        cctx.reset(ResetDirective::SessionOnly)?;
        if *current_level != level {
            cctx.set_parameter(CParameter::CompressionLevel(level))?;
            *current_level = level;
        }
        let mut out = OutBuffer::around(&mut buf);
        let mut input = InBuffer::around(src);
        // Feeding everything as "continue" first keeps the size unknown to
        // zstd, as a writer that streams the body would.
        while input.pos() < src.len() {
            cctx.compress_stream2(&mut out, &mut input, ZSTD_e_continue)?;
        }
        let mut empty = InBuffer::around(&[]);
        while cctx.compress_stream2(&mut out, &mut empty, ZSTD_e_end)? != 0 {}
        Ok(out.pos())
    })
    .map_err(zstd_error)
}

/// Runs `f` on this thread's compression context (for dictionary use).
pub(crate) fn with_cctx(
    f: impl FnOnce(&mut CCtx<'static>) -> Result<usize, zstd_safe::ErrorCode>,
) -> Result<usize> {
    CCTX.with_borrow_mut(|(cctx, current_level)| {
        // Dictionary compression brings its own parameters: forget the level.
        *current_level = 0;
        f(cctx)
    })
    .map_err(zstd_error)
}

/// Runs `f` on this thread's decompression context.
pub(crate) fn with_dctx<T>(f: impl FnOnce(&mut DCtx<'static>) -> T) -> T {
    DCTX.with_borrow_mut(f)
}

/// A one-shot decode's outcome: bytes written, `None` when `dst` was too small.
pub(crate) fn decode_result(result: Result<usize, zstd_safe::ErrorCode>) -> Result<Option<usize>> {
    match result {
        Ok(written) => Ok(Some(written)),
        // SAFETY: pure function of an error code.
        Err(code) => match unsafe { zstd_sys::ZSTD_getErrorCode(code) } {
            zstd_sys::ZSTD_ErrorCode::ZSTD_error_dstSize_tooSmall => Ok(None),
            _ => Err(zstd_error(code)),
        },
    }
}

/// The content size the first frame of `src` declares, if it declares one.
pub fn declared_size(src: &[u8]) -> Option<u64> {
    zstd_safe::get_frame_content_size(src).ok().flatten()
}

/// The largest window a frame may ask for: libzstd's streaming default,
/// which the reference decoder enforces (FORMAT.md §4.2, window log ≤ 27).
const MAX_WINDOW: u64 = (1 << 27) + 1;
const FRAME_MAGIC: u32 = 0xFD2F_B528;
const SKIPPABLE_MAGIC_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;

/// The window the zstd frame at the start of `src` needs (its content size
/// for single-segment frames), if its header is complete.
fn frame_window(src: &[u8]) -> Option<u64> {
    let descriptor = *src.get(4)?;
    if descriptor & 0x20 == 0 {
        let window = *src.get(5)?;
        let base = 1u64 << (10 + (window >> 3));
        return Some(base + (base / 8) * u64::from(window & 7));
    }
    zstd_safe::get_frame_content_size(src).ok().flatten()
}

/// Refuses a frame whose window exceeds `MAX_WINDOW`, as the streaming
/// decoder would: one-shot decoding needs no window and would accept it.
/// Anything else malformed is left for the decoder to report.
pub(crate) fn check_windows(mut src: &[u8]) -> Result<()> {
    while let Some(magic) = src.get(..4) {
        let magic = u32::from_le_bytes(magic.try_into().expect("4 bytes"));
        if magic == FRAME_MAGIC && frame_window(src).is_some_and(|w| w > MAX_WINDOW) {
            return Err(Error::io(TOO_LARGE_WINDOW));
        }
        if magic != FRAME_MAGIC && magic & SKIPPABLE_MAGIC_MASK != SKIPPABLE_MAGIC {
            return Ok(());
        }
        match zstd_safe::find_frame_compressed_size(src) {
            Ok(size) if size > 0 && size <= src.len() => src = &src[size..],
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// Decodes every frame of `src` (concatenated and skippable frames included)
/// into `dst` and returns the bytes written, or `None` when the output does
/// not fit `dst`. One-shot decoding writes straight into `dst`, with no
/// window buffer and no extra copy.
pub fn decompress(src: &[u8], dst: &mut [MaybeUninit<u8>]) -> Result<Option<usize>> {
    if src.is_empty() {
        // Zero frames are not a payload: even empty input encodes to a frame.
        return Err(Error::io(INCOMPLETE));
    }
    check_windows(src)?;
    let mut out = UninitBuf::new(dst);
    decode_result(with_dctx(|dctx| dctx.decompress(&mut out, src)))
}

/// A context for zstd's bufferless API, which decodes one block per call
/// straight into the caller's buffer (zstd-safe does not wrap it).
struct BlockDCtx(NonNull<zstd_sys::ZSTD_DCtx>);

impl Drop for BlockDCtx {
    fn drop(&mut self) {
        // SAFETY: created by ZSTD_createDCtx, freed once.
        unsafe { zstd_sys::ZSTD_freeDCtx(self.0.as_ptr()) };
    }
}

thread_local! {
    static BLOCK_DCTX: RefCell<Option<BlockDCtx>> = const { RefCell::new(None) };
}

/// Output runs handed to a `decompress_blocks` sink: zstd blocks (at most
/// 128 KiB each), so each run is still in cache when the sink reads it.
pub type BlockSink<'a> = &'a mut dyn FnMut(&[u8]);

/// Like [`decompress`], but block by block: after each block is written
/// into `dst`, its bytes go to `sink` (e.g. a CRC32C that then reads them
/// from cache instead of in a second pass over the whole output).
pub fn decompress_blocks(
    src: &[u8],
    dst: &mut [MaybeUninit<u8>],
    sink: BlockSink<'_>,
) -> Result<Option<usize>> {
    if src.is_empty() {
        return Err(Error::io(INCOMPLETE));
    }
    check_windows(src)?;
    BLOCK_DCTX.with_borrow_mut(|slot| {
        let ctx = match slot {
            Some(ctx) => ctx,
            None => {
                // SAFETY: plain allocation; null means out of memory.
                let raw = NonNull::new(unsafe { zstd_sys::ZSTD_createDCtx() })
                    .ok_or_else(|| Error::Backend("zstd could not allocate a decoder".into()))?;
                slot.insert(BlockDCtx(raw))
            }
        };
        decode_blocks(ctx.0.as_ptr(), src, dst, sink)
    })
}

fn decode_blocks(
    dctx: *mut zstd_sys::ZSTD_DCtx,
    src: &[u8],
    dst: &mut [MaybeUninit<u8>],
    sink: BlockSink<'_>,
) -> Result<Option<usize>> {
    let is_error = |code: usize| unsafe { zstd_sys::ZSTD_isError(code) } != 0;
    let (mut pos, mut written) = (0usize, 0usize);
    // Every frame (skippable ones included) starts afresh; the output of
    // all of them is one contiguous run, as one-shot decoding gives.
    while pos < src.len() {
        // SAFETY: a valid context; begin resets it for a new frame.
        let code = unsafe { zstd_sys::ZSTD_decompressBegin(dctx) };
        if is_error(code) {
            return Err(zstd_error(code));
        }
        loop {
            // SAFETY: a valid context.
            let need = unsafe { zstd_sys::ZSTD_nextSrcSizeToDecompress(dctx) };
            if need == 0 {
                break;
            }
            let Some(input) = pos.checked_add(need).and_then(|end| src.get(pos..end)) else {
                return Err(Error::io(INCOMPLETE));
            };
            let out = &mut dst[written..];
            // SAFETY: `out` is writable for `out.len()` bytes and follows the
            // frame's earlier output contiguously, as the API requires;
            // `input` is exactly the `need` bytes asked for.
            let produced = unsafe {
                zstd_sys::ZSTD_decompressContinue(
                    dctx,
                    out.as_mut_ptr().cast(),
                    out.len(),
                    input.as_ptr().cast(),
                    need,
                )
            };
            if is_error(produced) {
                return decode_result(Err(produced));
            }
            pos += need;
            if produced > 0 {
                // SAFETY: zstd wrote `produced` bytes at the start of `out`.
                let block = unsafe { std::slice::from_raw_parts(out.as_ptr().cast(), produced) };
                sink(block);
                written += produced;
            }
        }
    }
    Ok(Some(written))
}

/// Streams every frame of `src` onto `out`, growing it only as output is
/// produced: at most `RESERVE_AHEAD_MAX` (or as much as already decoded,
/// by amortised doubling) ahead of the bytes written. Returns the bytes
/// appended, or `None` as soon as more than `ceiling` would come out.
pub fn decompress_growing(
    src: &[u8],
    ddict: Option<&DDict<'static>>,
    ceiling: usize,
    out: &mut Vec<u8>,
) -> Result<Option<usize>> {
    if src.is_empty() {
        return Err(Error::io(INCOMPLETE));
    }
    check_windows(src)?;
    // A fresh context: a referenced dictionary must not outlive this call.
    let mut dctx = DCtx::try_create()
        .ok_or_else(|| Error::Backend("zstd could not allocate a decoder".into()))?;
    if let Some(ddict) = ddict {
        dctx.ref_ddict(ddict).map_err(zstd_error)?;
    }
    let start = out.len();
    let mut input = InBuffer::around(src);
    loop {
        let produced = out.len() - start;
        if produced > ceiling {
            return Ok(None);
        }
        if out.len() == out.capacity() {
            try_reserve(
                out,
                crate::codec::RESERVE_AHEAD_MAX.min(ceiling + 1 - produced),
            )?;
        }
        // Never let zstd write more than one byte past the ceiling.
        let room = (out.capacity() - out.len()).min(ceiling + 1 - produced);
        let spare = &mut out.spare_capacity_mut()[..room];
        let mut buf = UninitBuf::new(spare);
        let mut window = OutBuffer::around(&mut buf);
        let consumed_before = input.pos();
        let hint = dctx
            .decompress_stream(&mut window, &mut input)
            .map_err(zstd_error)?;
        let written = window.pos();
        // SAFETY: zstd initialised `written` bytes of the spare capacity.
        unsafe { out.set_len(out.len() + written) };
        let input_done = input.pos() == src.len();
        if hint == 0 && input_done {
            return Ok((out.len() - start <= ceiling).then_some(out.len() - start));
        }
        if input_done && written < room && input.pos() == consumed_before {
            // No input left, room to spare, and zstd still wants more.
            return Err(Error::io(INCOMPLETE));
        }
    }
}

/// Output grown per step of [`decompress_prefix`].
const PREFIX_STEP: usize = 256 << 10;

/// Decodes as much of the zstd stream `src` as it holds, which may stop
/// mid-frame (the first stored bytes of a frame, fetched to find where a line
/// ends without fetching the rest). More than `limit` bytes of output is an
/// error; the output grows as it is produced, never from a claim. No checksum
/// covers a prefix: whoever decodes the frame whole checks it.
pub fn decompress_prefix(src: &[u8], dict: Option<&DDict<'static>>, limit: u64) -> Result<Vec<u8>> {
    let mut dctx = DCtx::try_create()
        .ok_or_else(|| Error::Backend("zstd could not allocate a decoder".into()))?;
    dctx.set_parameter(zstd_safe::DParameter::WindowLogMax(27))
        .map_err(zstd_error)?;
    if let Some(dict) = dict {
        dctx.ref_ddict(dict).map_err(zstd_error)?;
    }
    let mut out = Vec::new();
    let mut input = InBuffer::around(src);
    loop {
        // One byte past `limit` is room enough to see a stream overrun it.
        let left = (limit + 1).saturating_sub(out.len() as u64);
        try_reserve(&mut out, left.min(PREFIX_STEP as u64) as usize)?;
        let start = out.len();
        let full = {
            let mut output = OutBuffer::around_pos(&mut out, start);
            dctx.decompress_stream(&mut output, &mut input)
                .map_err(zstd_error)?;
            output.pos() == output.capacity()
        };
        if out.len() as u64 > limit {
            return Err(Error::SizeMismatch {
                expected: limit,
                got: out.len() as u64,
            });
        }
        if !full && input.pos() == src.len() {
            return Ok(out);
        }
    }
}
