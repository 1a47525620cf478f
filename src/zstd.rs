//! zstd engine: one-shot compression that records the content size, and a
//! streaming decoder that writes into a caller-sized buffer. Contexts are
//! reused per thread, so a call costs no context set-up.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use zstd_safe::{CCtx, DCtx, InBuffer, OutBuffer, ResetDirective, WriteBuf};

use crate::error::{Error, Result};

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
    static CCTX: RefCell<CCtx<'static>> = RefCell::new(CCtx::create());
    static DCTX: RefCell<DCtx<'static>> = RefCell::new(DCtx::create());
}

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

fn zstd_error(code: usize) -> Error {
    Error::io(zstd_safe::get_error_name(code))
}

/// Compresses `src` into one frame with its content size recorded. `dst`
/// must hold `compress_bound(src.len())` bytes. Returns the bytes written.
pub fn compress(src: &[u8], level: i32, dst: &mut [MaybeUninit<u8>]) -> Result<usize> {
    debug_assert!(dst.len() >= compress_bound(src.len()));
    let mut out = UninitBuf::new(dst);
    // One-shot compression knows the source size: it writes Frame_Content_Size
    // and shrinks the window to the input, so the level table's largest
    // window (2^27 at level 22) is the most a reader ever needs.
    CCTX.with_borrow_mut(|cctx| cctx.compress(&mut out, src, level))
        .map_err(zstd_error)
}

enum Drive {
    /// Every frame ended and all input was consumed.
    Done,
    /// The output buffer is full and the decoder may hold more.
    OutputFull,
}

fn drive<C: WriteBuf + ?Sized>(
    dctx: &mut DCtx<'_>,
    input: &mut InBuffer<'_>,
    out: &mut OutBuffer<'_, C>,
) -> Result<Drive> {
    let total = input.src.len();
    loop {
        let (in_before, out_before) = (input.pos(), out.pos());
        let hint = dctx.decompress_stream(out, input).map_err(zstd_error)?;
        if hint == 0 && input.pos() == total {
            return Ok(Drive::Done);
        }
        if out.pos() == out.capacity() {
            return Ok(Drive::OutputFull);
        }
        if input.pos() == total && hint != 0 {
            return Err(Error::io("incomplete frame"));
        }
        if input.pos() == in_before && out.pos() == out_before && hint != 0 {
            return Err(Error::io("zstd decoder made no progress"));
        }
    }
}

/// Decodes every frame of `src` into `dst` and returns the bytes written.
/// Output that does not fit `dst` is a decompression bomb (an `Io` error):
/// callers size `dst` to the manifest's claim.
pub fn decompress(src: &[u8], dst: &mut [MaybeUninit<u8>]) -> Result<usize> {
    DCTX.with_borrow_mut(|dctx| {
        dctx.reset(ResetDirective::SessionOnly).map_err(zstd_error)?;
        let cap = dst.len();
        let mut input = InBuffer::around(src);
        let mut buf = UninitBuf::new(dst);
        let mut out = OutBuffer::around(&mut buf);
        match drive(dctx, &mut input, &mut out) {
            Ok(Drive::Done) => return Ok(out.pos()),
            Ok(Drive::OutputFull) => {}
            Err(e) => {
                let _ = dctx.reset(ResetDirective::SessionOnly);
                return Err(e);
            }
        }
        // The buffer is full: the stream is fine only if nothing more comes out.
        let mut probe = [0u8; 64];
        let mut probe_out = OutBuffer::around(&mut probe[..]);
        let outcome = drive(dctx, &mut input, &mut probe_out);
        let _ = dctx.reset(ResetDirective::SessionOnly);
        match outcome {
            Ok(Drive::Done) if probe_out.pos() == 0 => Ok(cap),
            Err(e) if probe_out.pos() == 0 => Err(e),
            _ => Err(Error::io(format!(
                "zstd decompression bomb detected: produced at least {} bytes, more than the {cap} claimed",
                cap as u64 + probe_out.pos() as u64
            ))),
        }
    })
}
