//! gzip engine (RFC 1952) on libdeflate, the fastest DEFLATE implementation
//! for whole buffers. We write the member header and trailer ourselves so
//! the header matches the reference byte for byte and decoding can follow
//! its rules exactly (FHCRC verified, first member only, trailing bytes
//! ignored: FORMAT.md §5.2).

use std::cell::RefCell;
use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use libdeflate_sys::*;

use crate::error::{Error, Result};

pub const MAX_LEVEL: u32 = 9;
pub const DEFAULT_LEVEL: u32 = 6;

const HEADER_LEN: usize = 10;
const TRAILER_LEN: usize = 8;
const FTEXT: u8 = 0x01;
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const RESERVED_FLAGS: u8 = !(FTEXT | FHCRC | FEXTRA | FNAME | FCOMMENT);

/// DEFLATE cannot beat 1032:1 (a 258-byte match costs at least two bits).
pub fn max_decoded_len(compressed_len: usize) -> u64 {
    (compressed_len as u64).saturating_mul(1032)
}

struct Compressor(NonNull<libdeflate_compressor>);

impl Drop for Compressor {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate_alloc_compressor, freed once.
        unsafe { libdeflate_free_compressor(self.0.as_ptr()) }
    }
}

struct Decompressor(NonNull<libdeflate_decompressor>);

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate_alloc_decompressor, freed once.
        unsafe { libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

thread_local! {
    static COMPRESSORS: RefCell<[Option<Compressor>; 10]> = const { RefCell::new([const { None }; 10]) };
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

fn with_compressor<T>(level: u32, f: impl FnOnce(*mut libdeflate_compressor) -> T) -> Result<T> {
    let level = level.min(MAX_LEVEL);
    COMPRESSORS.with_borrow_mut(|slots| {
        let slot = &mut slots[level as usize];
        if slot.is_none() {
            // SAFETY: plain allocation call; null means out of memory.
            let raw = unsafe { libdeflate_alloc_compressor(level as i32) };
            let ptr = NonNull::new(raw).ok_or_else(|| {
                Error::Backend("libdeflate could not allocate a compressor".into())
            })?;
            *slot = Some(Compressor(ptr));
        }
        Ok(f(slot
            .as_ref()
            .map(|c| c.0.as_ptr())
            .unwrap_or(std::ptr::null_mut())))
    })
}

fn with_decompressor<T>(f: impl FnOnce(*mut libdeflate_decompressor) -> T) -> Result<T> {
    DECOMPRESSOR.with_borrow_mut(|slot| {
        if slot.is_none() {
            // SAFETY: plain allocation call; null means out of memory.
            let raw = unsafe { libdeflate_alloc_decompressor() };
            let ptr = NonNull::new(raw).ok_or_else(|| {
                Error::Backend("libdeflate could not allocate a decompressor".into())
            })?;
            *slot = Some(Decompressor(ptr));
        }
        Ok(f(slot
            .as_ref()
            .map(|d| d.0.as_ptr())
            .unwrap_or(std::ptr::null_mut())))
    })
}

/// IEEE CRC-32 as used by the gzip trailer.
fn crc32_ieee(data: &[u8]) -> u32 {
    crc32_ieee_append(0, data)
}

fn crc32_ieee_append(crc: u32, data: &[u8]) -> u32 {
    // SAFETY: reads `data.len()` bytes from a valid slice.
    unsafe { libdeflate_crc32(crc, data.as_ptr().cast(), data.len()) }
}

/// Both checksums of a decoded output take each slice of this size in turn,
/// so the second reads it from cache.
const CHECK_SLICE_BYTES: usize = 64 << 10;

pub fn compress_bound(level: u32, len: usize) -> Result<usize> {
    // SAFETY: the compressor pointer is valid for the duration of the call.
    let body = with_compressor(level, |c| unsafe {
        libdeflate_deflate_compress_bound(c, len)
    })?;
    Ok(HEADER_LEN + body + TRAILER_LEN)
}

/// Writes one gzip member holding `src` into `dst` (at least
/// `compress_bound(level, src.len())` bytes). Returns the bytes written.
pub fn compress(src: &[u8], level: u32, dst: &mut [MaybeUninit<u8>]) -> Result<usize> {
    let level = level.min(MAX_LEVEL);
    let xfl = match level {
        0 | 1 => 4,
        MAX_LEVEL => 2,
        _ => 0,
    };
    let header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 0xff];
    if dst.len() < HEADER_LEN + TRAILER_LEN {
        return Err(Error::Backend("gzip output buffer too small".into()));
    }
    for (slot, byte) in dst.iter_mut().zip(header) {
        slot.write(byte);
    }
    let body = &mut dst[HEADER_LEN..];
    let avail = body.len() - TRAILER_LEN;
    // SAFETY: input and output regions are valid for the given lengths;
    // libdeflate writes at most `avail` bytes.
    let written = with_compressor(level, |c| unsafe {
        libdeflate_deflate_compress(
            c,
            src.as_ptr().cast(),
            src.len(),
            body.as_mut_ptr().cast::<c_void>(),
            avail,
        )
    })?;
    if written == 0 {
        return Err(Error::Backend("gzip output buffer too small".into()));
    }
    let mut trailer = [0u8; TRAILER_LEN];
    trailer[..4].copy_from_slice(&crc32_ieee(src).to_le_bytes());
    trailer[4..].copy_from_slice(&(src.len() as u32).to_le_bytes());
    for (slot, byte) in body[written..].iter_mut().zip(trailer) {
        slot.write(byte);
    }
    Ok(HEADER_LEN + written + TRAILER_LEN)
}

fn eof() -> Error {
    Error::io("unexpected end of file")
}

fn invalid_header() -> Error {
    Error::io("invalid gzip header")
}

/// Length of the member header at the start of `src`, validated.
fn header_len(src: &[u8]) -> Result<usize> {
    if src.len() < HEADER_LEN {
        if src.len() >= 2 && src[..2] != [0x1f, 0x8b] {
            return Err(invalid_header());
        }
        return Err(eof());
    }
    if src[..2] != [0x1f, 0x8b] || src[2] != 8 || src[3] & RESERVED_FLAGS != 0 {
        return Err(invalid_header());
    }
    let flags = src[3];
    let mut pos = HEADER_LEN;
    if flags & FEXTRA != 0 {
        let xlen = src.get(pos..pos + 2).ok_or_else(eof)?;
        pos += 2 + u16::from_le_bytes([xlen[0], xlen[1]]) as usize;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let field = src.get(pos..).ok_or_else(eof)?;
            pos += field.iter().position(|&b| b == 0).ok_or_else(eof)? + 1;
        }
    }
    if flags & FHCRC != 0 {
        let stored = src.get(pos..pos + 2).ok_or_else(eof)?;
        let expected = u16::from_le_bytes([stored[0], stored[1]]);
        if crc32_ieee(&src[..pos]) as u16 != expected {
            return Err(Error::io("gzip header CRC mismatch"));
        }
        pos += 2;
    }
    if pos > src.len() {
        return Err(eof());
    }
    Ok(pos)
}

/// The CRC-32 and length a member's trailer promises for its output.
#[derive(Debug, Clone, Copy)]
pub struct Trailer {
    crc32: u32,
    isize: u32,
}

impl Trailer {
    /// Checks decoded bytes against the trailer (an `Io` error if they differ).
    pub fn verify(self, out: &[u8]) -> Result<()> {
        self.check(out.len(), crc32_ieee(out))
    }

    /// Like `verify`, also returning the CRC32C of `out`: one pass over
    /// memory for both checksums.
    pub fn verify_with_crc32c(self, out: &[u8]) -> (Result<()>, u32) {
        let (mut ieee, mut castagnoli) = (0, 0);
        for slice in out.chunks(CHECK_SLICE_BYTES) {
            ieee = crc32_ieee_append(ieee, slice);
            castagnoli = crc32c::crc32c_append(castagnoli, slice);
        }
        (self.check(out.len(), ieee), castagnoli)
    }

    fn check(self, len: usize, crc32: u32) -> Result<()> {
        if self.isize != len as u32 || self.crc32 != crc32 {
            return Err(Error::io(
                "corrupt gzip stream does not have a matching checksum",
            ));
        }
        Ok(())
    }
}

/// The original length (mod 2^32) the trailer at the end of `src` states,
/// if `src` is long enough to hold a member.
pub fn declared_size(src: &[u8]) -> Option<u64> {
    let tail = src
        .len()
        .checked_sub(4)
        .filter(|_| src.len() >= HEADER_LEN + TRAILER_LEN)?;
    Some(u32::from_le_bytes(src[tail..].try_into().expect("4 bytes")) as u64)
}

/// Decodes the first gzip member of `src` into `dst`; returns the bytes
/// written and the trailer to `verify` them against, or `None` when the
/// output does not fit `dst`. Bytes after the member are ignored, as the S4
/// gateway does.
pub fn decompress(src: &[u8], dst: &mut [MaybeUninit<u8>]) -> Result<Option<(usize, Trailer)>> {
    let start = header_len(src)?;
    let body = &src[start..];
    let mut used_in = 0usize;
    let mut produced = 0usize;
    // SAFETY: regions are valid for their lengths; libdeflate writes at most
    // `dst.len()` bytes and reports how many it read and wrote.
    let status = with_decompressor(|d| unsafe {
        libdeflate_deflate_decompress_ex(
            d,
            body.as_ptr().cast(),
            body.len(),
            dst.as_mut_ptr().cast::<c_void>(),
            dst.len(),
            &mut used_in,
            &mut produced,
        )
    })?;
    if status == libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE {
        return Ok(None);
    }
    if status != libdeflate_result_LIBDEFLATE_SUCCESS {
        return Err(Error::io("corrupt or truncated deflate stream"));
    }
    let trailer = body.get(used_in..used_in + TRAILER_LEN).ok_or_else(eof)?;
    let word = |at: usize| u32::from_le_bytes(trailer[at..at + 4].try_into().expect("4 bytes"));
    Ok(Some((
        produced,
        Trailer {
            crc32: word(0),
            isize: word(4),
        },
    )))
}

#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) fn crc32_ieee(data: &[u8]) -> u32 {
        super::crc32_ieee(data)
    }
}
