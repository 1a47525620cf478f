//! Codec kinds (FORMAT.md §1), codec settings and the common decode pipeline
//! of FORMAT.md §3: limit check, bounded output, size check, then CRC32C.

use std::fmt;
use std::mem::MaybeUninit;
use std::sync::Arc;

use crate::error::{try_reserve, Error, Result};

pub mod crc;
pub mod dict;
pub mod gpu;
pub mod gzip;
pub mod zstd;

use crc::crc32c;
use dict::ZstdDictionary;

/// The AWS single-PUT ceiling; no manifest may claim more.
pub const MAX_DECOMPRESSED_BYTES: u64 = 5 << 30;

/// Inputs at least this long get their CRC32C computed beside the
/// compression, when the call may use two threads.
const PARALLEL_CHECK_MIN_BYTES: usize = 1 << 20;

/// zstd outputs up to this long are decoded in one call and checksummed
/// after; longer ones block by block, each block checksummed while in cache.
const ONE_SHOT_CHECKSUM_MAX_BYTES: usize = 128 << 10;

/// The most memory reserved ahead of real output, on the strength of size
/// claims, in a buffer that grows (a column chunk, a payload decoded on its
/// own). Beyond it outputs grow as they are really produced, so a payload
/// that lies about its size costs at most this much (or as much as it really
/// decoded) before it is refused.
pub const RESERVE_AHEAD_MAX: usize = 16 << 20;

/// The most a call reserves, fallibly, for its one result buffer (a decoded
/// object or payload) before decoding into it in place; larger results grow
/// like any other output. Untouched reserved memory costs no RSS, so this
/// bounds what a lying input can cost to this much address space.
pub const RESULT_RESERVE_MAX: usize = 256 << 20;

/// Every codec id of the wire format, in id order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum CodecKind {
    Passthrough = 0,
    CpuZstd = 1,
    NvcompZstd = 2,
    NvcompBitcomp = 3,
    NvcompGans = 4,
    DietgpuAns = 5,
    NvcompGdeflate = 6,
    CpuGzip = 7,
    CpuZstdDict = 8,
}

impl CodecKind {
    pub const ALL: [CodecKind; 9] = [
        CodecKind::Passthrough,
        CodecKind::CpuZstd,
        CodecKind::NvcompZstd,
        CodecKind::NvcompBitcomp,
        CodecKind::NvcompGans,
        CodecKind::DietgpuAns,
        CodecKind::NvcompGdeflate,
        CodecKind::CpuGzip,
        CodecKind::CpuZstdDict,
    ];

    pub fn id(self) -> u32 {
        self as u32
    }

    pub fn from_id(id: u32) -> Option<Self> {
        Self::ALL.get(usize::try_from(id).ok()?).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            CodecKind::Passthrough => "passthrough",
            CodecKind::CpuZstd => "cpu-zstd",
            CodecKind::NvcompZstd => "nvcomp-zstd",
            CodecKind::NvcompBitcomp => "nvcomp-bitcomp",
            CodecKind::NvcompGans => "nvcomp-gans",
            CodecKind::DietgpuAns => "dietgpu-ans",
            CodecKind::NvcompGdeflate => "nvcomp-gdeflate",
            CodecKind::CpuGzip => "cpu-gzip",
            CodecKind::CpuZstdDict => "cpu-zstd-dict",
        }
    }

    /// Exact, case-sensitive name lookup.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

impl fmt::Display for CodecKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one decode produced, and which checks it already ran.
struct Decoded {
    len: usize,
    /// The gzip trailer, still to be verified against the output.
    trailer: Option<gzip::Trailer>,
    /// CRC32C of the output, when the decoder computed it as it went.
    crc32c: Option<u32>,
}

impl Decoded {
    fn unchecked(len: usize) -> Self {
        Decoded {
            len,
            trailer: None,
            crc32c: None,
        }
    }
}

/// A CPU codec with its settings. Cheap to clone and share between threads:
/// engine contexts live in thread-locals, not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    Passthrough,
    Zstd {
        level: i32,
    },
    Gzip {
        level: u32,
    },
    ZstdDict {
        level: i32,
        dict: Arc<ZstdDictionary>,
    },
}

impl Codec {
    /// zstd at `level` clamped to 1..=22 as the reference does (0 and the
    /// negative "fast" levels mean 1, not zstd's default).
    pub fn zstd(level: i32) -> Self {
        Codec::Zstd {
            level: level.clamp(zstd::MIN_LEVEL, zstd::MAX_LEVEL),
        }
    }

    /// zstd against `dict`, `level` clamped like `zstd`.
    pub fn zstd_dict(dict: Arc<ZstdDictionary>, level: i32) -> Self {
        Codec::ZstdDict {
            level: level.clamp(zstd::MIN_LEVEL, zstd::MAX_LEVEL),
            dict,
        }
    }

    /// gzip at `level`, values above 9 meaning 9.
    pub fn gzip(level: u32) -> Self {
        Codec::Gzip {
            level: level.min(gzip::MAX_LEVEL),
        }
    }

    pub fn kind(&self) -> CodecKind {
        match self {
            Codec::Passthrough => CodecKind::Passthrough,
            Codec::Zstd { .. } => CodecKind::CpuZstd,
            Codec::Gzip { .. } => CodecKind::CpuGzip,
            Codec::ZstdDict { .. } => CodecKind::CpuZstdDict,
        }
    }

    /// Largest payload `compress_into` can write for `len` input bytes.
    pub fn compress_bound(&self, len: usize) -> Result<usize> {
        match self {
            Codec::Passthrough => Ok(len),
            Codec::Zstd { .. } | Codec::ZstdDict { .. } => Ok(zstd::compress_bound(len)),
            Codec::Gzip { level } => gzip::compress_bound(*level, len),
        }
    }

    /// Compresses `src` into `dst`, which holds at least `compress_bound`
    /// bytes, and returns the payload length.
    pub fn compress_into(&self, src: &[u8], dst: &mut [MaybeUninit<u8>]) -> Result<usize> {
        match self {
            Codec::Passthrough => {
                copy_into(src, dst).ok_or_else(|| Error::Backend("output buffer too small".into()))
            }
            Codec::Zstd { level } => zstd::compress(src, *level, 1, dst),
            Codec::Gzip { level } => gzip::compress(src, *level, dst),
            Codec::ZstdDict { level, dict } => dict.compress(src, *level, dst),
        }
    }

    /// Appends the payload for `src` to `out`; returns its length.
    pub fn compress_append(&self, src: &[u8], out: &mut Vec<u8>) -> Result<usize> {
        try_reserve(out, self.compress_bound(src.len())?)?;
        let written = self.compress_into(src, out.spare_capacity_mut())?;
        // SAFETY: `compress_into` initialised `written` bytes of spare capacity.
        unsafe { out.set_len(out.len() + written) };
        Ok(written)
    }

    /// The most bytes any payload of `compressed_len` bytes can decode to.
    pub fn max_decoded_len(&self, compressed_len: usize) -> u64 {
        match self {
            Codec::Passthrough => compressed_len as u64,
            Codec::Zstd { .. } | Codec::ZstdDict { .. } => zstd::max_decoded_len(compressed_len),
            Codec::Gzip { .. } => gzip::max_decoded_len(compressed_len),
        }
    }

    /// The most output a payload that claims `original_size` may produce:
    /// the claim, unless the payload cannot possibly decode to that much.
    /// Callers reserve it only up to `RESERVE_AHEAD_MAX` ahead of real output.
    pub fn output_capacity(&self, payload_len: usize, original_size: u64) -> Result<usize> {
        check_limit(original_size, MAX_DECOMPRESSED_BYTES)?;
        let cap = original_size.min(self.max_decoded_len(payload_len));
        usize::try_from(cap).map_err(|_| Error::ManifestSizeExceedsLimit {
            requested: original_size,
            limit: usize::MAX as u64,
        })
    }

    /// Decodes `src` into `dst` without any manifest check, or `None` when
    /// the output does not fit `dst`. With `checksum`, zstd output is
    /// checksummed block by block as it is written, while still in cache.
    fn decode(
        &self,
        src: &[u8],
        dst: &mut [MaybeUninit<u8>],
        checksum: bool,
    ) -> Result<Option<Decoded>> {
        Ok(match self {
            Codec::Passthrough => copy_into(src, dst).map(Decoded::unchecked),
            Codec::Zstd { .. } if !checksum => zstd::decompress(src, dst)?.map(Decoded::unchecked),
            // Small outputs are still in cache after a one-shot decode: one
            // call, then the CRC, beats feeding a sink block by block.
            Codec::Zstd { .. } if dst.len() <= ONE_SHOT_CHECKSUM_MAX_BYTES => {
                zstd::decompress(src, dst)?.map(|len| Decoded {
                    len,
                    trailer: None,
                    // SAFETY: zstd initialised the first `len` bytes.
                    crc32c: Some(crc32c(unsafe {
                        std::slice::from_raw_parts(dst.as_ptr().cast(), len)
                    })),
                })
            }
            Codec::Zstd { .. } => {
                let mut crc = 0;
                let mut sink = |block: &[u8]| crc = crc32c::crc32c_append(crc, block);
                zstd::decompress_blocks(src, dst, &mut sink)?.map(|len| Decoded {
                    len,
                    trailer: None,
                    crc32c: Some(crc),
                })
            }
            Codec::ZstdDict { dict, .. } => dict.decompress(src, dst)?.map(Decoded::unchecked),
            Codec::Gzip { .. } => gzip::decompress(src, dst)?.map(|(len, trailer)| Decoded {
                len,
                trailer: Some(trailer),
                crc32c: None,
            }),
        })
    }

    /// Runs the §3 pipeline into `dst`, whose length is `output_capacity`.
    /// On success the first `original_size` bytes of `dst` hold the output.
    pub fn decompress_into(
        &self,
        src: &[u8],
        original_size: u64,
        crc: u32,
        dst: &mut [MaybeUninit<u8>],
    ) -> Result<()> {
        let capacity = dst.len();
        let Some(decoded) = self.decode(src, dst, true)? else {
            return Err(self.too_long(src, original_size, capacity));
        };
        // SAFETY: the engine initialised the first `decoded.len` bytes.
        let out = unsafe { std::slice::from_raw_parts(dst.as_ptr().cast::<u8>(), decoded.len) };
        self.check_output(out, &decoded, original_size, crc)
    }

    /// The §3 checks of decoded bytes: the gzip trailer, then size, then
    /// CRC32C (unless the decoder computed it already).
    fn check_output(
        &self,
        out: &[u8],
        decoded: &Decoded,
        original_size: u64,
        crc: u32,
    ) -> Result<()> {
        let (trailer_ok, got) = match (decoded.trailer, decoded.crc32c) {
            (_, Some(got)) => (Ok(()), got),
            (Some(trailer), None) => trailer.verify_with_crc32c(out),
            (None, None) => (Ok(()), crc32c(out)),
        };
        trailer_ok?;
        check_manifest(out.len(), got, original_size, crc)
    }

    /// The error for output that does not fit the `capacity` allowed.
    fn too_long(&self, src: &[u8], original_size: u64, capacity: usize) -> Error {
        match self {
            // A passthrough payload is its output: too long is a size error.
            Codec::Passthrough => Error::SizeMismatch {
                expected: original_size,
                got: src.len() as u64,
            },
            _ => self.bomb(capacity),
        }
    }

    fn bomb(&self, capacity: usize) -> Error {
        Error::io(format!(
            "{} decompression bomb detected: produced more than the {capacity} bytes claimed",
            self.engine_name()
        ))
    }

    fn engine_name(&self) -> &'static str {
        match self {
            Codec::Passthrough => "passthrough",
            Codec::Zstd { .. } | Codec::ZstdDict { .. } => "zstd",
            Codec::Gzip { .. } => "gzip",
        }
    }

    /// The output size a bare payload declares about itself, if any (zstd's
    /// content size, gzip's ISIZE): a hint, never trusted for allocation
    /// beyond `max_decoded_len`.
    pub fn declared_size(&self, src: &[u8]) -> Option<u64> {
        match self {
            Codec::Passthrough => Some(src.len() as u64),
            Codec::Zstd { .. } | Codec::ZstdDict { .. } => zstd::declared_size(src),
            Codec::Gzip { .. } => gzip::declared_size(src),
        }
    }

    /// Decodes `src` onto the end of `out`, growing it as output is produced
    /// (see `RESERVE_AHEAD_MAX`); `first_guess` sizes the first attempt and
    /// `checksum` asks for the CRC32C of the output where the decoder can
    /// compute it on the way. Returns what was decoded, or `None` when more
    /// than `ceiling` bytes would come out. Unless it returns
    /// `Some`, `out` is left as it was.
    fn decode_growing(
        &self,
        src: &[u8],
        first_guess: u64,
        ceiling: u64,
        checksum: bool,
        out: &mut Vec<u8>,
    ) -> Result<Option<Decoded>> {
        let start = out.len();
        let result = self.decode_growing_unchecked(src, first_guess, ceiling, checksum, out);
        if !matches!(result, Ok(Some(_))) {
            out.truncate(start);
        }
        result
    }

    fn decode_growing_unchecked(
        &self,
        src: &[u8],
        first_guess: u64,
        ceiling: u64,
        checksum: bool,
        out: &mut Vec<u8>,
    ) -> Result<Option<Decoded>> {
        let start = out.len();
        let ceiling = usize::try_from(ceiling).unwrap_or(usize::MAX);
        let first_guess = usize::try_from(first_guess).unwrap_or(usize::MAX);
        // A passthrough output is its input: that reservation is backed.
        let ahead = match self {
            Codec::Passthrough => src.len(),
            _ => RESERVE_AHEAD_MAX,
        };
        let mut cap = first_guess.min(ceiling).min(ahead);
        let streaming_dict = match self {
            Codec::Zstd { .. } => Some(None),
            Codec::ZstdDict { dict, .. } => Some(Some(dict.ddict())),
            _ => None,
        };
        let stream = |out: &mut Vec<u8>| -> Result<Option<Decoded>> {
            let ddict = streaming_dict.flatten();
            Ok(zstd::decompress_growing(src, ddict, ceiling, out)?.map(Decoded::unchecked))
        };
        if streaming_dict.is_some() && first_guess > cap {
            // zstd grows its output as it goes: no attempt is wasted.
            return stream(out);
        }
        loop {
            try_reserve(out, cap)?;
            if let Some(decoded) =
                self.decode(src, &mut out.spare_capacity_mut()[..cap], checksum)?
            {
                // SAFETY: the engine initialised `decoded.len` bytes.
                unsafe { out.set_len(start + decoded.len) };
                return Ok(Some(decoded));
            }
            if cap >= ceiling {
                return Ok(None);
            }
            if streaming_dict.is_some() {
                return stream(out);
            }
            // gzip decodes whole buffers: each retry doubles a buffer the
            // last attempt filled, so memory still tracks real output.
            cap = cap.saturating_mul(2).max(64).min(ceiling);
        }
    }

    /// Decodes a bare payload into `dst` with no manifest: true when it
    /// produced exactly `dst.len()` bytes (and a gzip trailer agreed).
    pub fn decode_exact(&self, src: &[u8], dst: &mut [MaybeUninit<u8>]) -> Result<bool> {
        let len = dst.len();
        let Some(decoded) = self.decode(src, dst, false)? else {
            return Ok(false);
        };
        if decoded.len != len {
            return Ok(false);
        }
        if let Some(trailer) = decoded.trailer {
            // SAFETY: the engine initialised all `len` bytes.
            trailer.verify(unsafe { std::slice::from_raw_parts(dst.as_ptr().cast(), len) })?;
        }
        Ok(true)
    }

    /// Decodes a bare payload whose size nobody vouches for (no manifest),
    /// appending at most `limit` bytes to `out`. The size the stream itself
    /// declares is the first guess, never trusted for allocation beyond
    /// `RESERVE_AHEAD_MAX`. Returns the decoded length.
    pub fn decompress_unsized_append(
        &self,
        src: &[u8],
        limit: u64,
        out: &mut Vec<u8>,
    ) -> Result<usize> {
        let ceiling = self.max_decoded_len(src.len()).min(limit);
        let declared = self.declared_size(src);
        // A zstd frame's content size is part of the frame (a gzip ISIZE may be
        // trailing bytes), so only zstd's is refused early.
        if let (Codec::Zstd { .. } | Codec::ZstdDict { .. }, Some(size)) = (self, declared) {
            check_limit(size, limit)?;
        }
        let first_guess = declared.unwrap_or(4 * src.len() as u64).max(64);
        let start = out.len();
        match self.decode_growing(src, first_guess, ceiling, false, out)? {
            Some(decoded) => {
                if let Some(Err(err)) = decoded.trailer.map(|t| t.verify(&out[start..])) {
                    out.truncate(start);
                    return Err(err);
                }
                Ok(decoded.len)
            }
            None if ceiling == limit => Err(Error::ManifestSizeExceedsLimit {
                requested: limit.saturating_add(1),
                limit,
            }),
            None => Err(Error::io("decoder output exceeds what its input can hold")),
        }
    }

    /// Appends the decoded payload to `out` after every §3 check; on error
    /// `out` is left as it was.
    pub fn decompress_append(
        &self,
        src: &[u8],
        original_size: u64,
        crc: u32,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let cap = self.output_capacity(src.len(), original_size)?;
        let start = out.len();
        let result = match self.decode_growing(src, cap as u64, cap as u64, true, out)? {
            Some(decoded) => self.check_output(&out[start..], &decoded, original_size, crc),
            None => Err(self.too_long(src, original_size, cap)),
        };
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// Compresses `src` into a new buffer: `(payload, original_size, crc32c)`.
    /// Large zstd inputs use up to `threads` threads; the CRC of large
    /// inputs is computed beside the compression.
    pub fn compress(&self, src: &[u8], threads: usize) -> Result<(Vec<u8>, u64, u32)> {
        let compress = || -> Result<Vec<u8>> {
            let mut out = Vec::new();
            try_reserve(&mut out, self.compress_bound(src.len())?)?;
            let written = match self {
                Codec::Zstd { level } => {
                    zstd::compress(src, *level, threads, out.spare_capacity_mut())?
                }
                _ => self.compress_into(src, out.spare_capacity_mut())?,
            };
            // SAFETY: the engine initialised `written` bytes.
            unsafe { out.set_len(written) };
            Ok(out)
        };
        let (payload, crc) = if src.len() >= PARALLEL_CHECK_MIN_BYTES && threads > 1 {
            crate::threads::join(compress, || crc32c(src))
        } else {
            (compress(), crc32c(src))
        };
        Ok((payload?, src.len() as u64, crc))
    }

    /// Decodes a payload described by `(original_size, crc32c)`.
    pub fn decompress(&self, src: &[u8], original_size: u64, crc: u32) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.decompress_append(src, original_size, crc, &mut out)?;
        Ok(out)
    }
}

/// The §3 checks after decoding: size first, then CRC32C.
fn check_manifest(produced: usize, got: u32, original_size: u64, crc: u32) -> Result<()> {
    if produced as u64 != original_size {
        return Err(Error::SizeMismatch {
            expected: original_size,
            got: produced as u64,
        });
    }
    if got != crc {
        return Err(Error::CrcMismatch { expected: crc, got });
    }
    Ok(())
}

/// Copies `src` to the front of `dst`; `None` if it does not fit.
fn copy_into(src: &[u8], dst: &mut [MaybeUninit<u8>]) -> Option<usize> {
    let dst = dst.get_mut(..src.len())?;
    // SAFETY: `dst` holds exactly `src.len()` bytes and cannot overlap `src`.
    unsafe {
        std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().cast::<u8>(), src.len())
    };
    Some(src.len())
}

/// Refuses a claimed size above `limit`.
pub fn check_limit(original_size: u64, limit: u64) -> Result<()> {
    if original_size > limit {
        return Err(Error::ManifestSizeExceedsLimit {
            requested: original_size,
            limit,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: usize) -> Vec<u8> {
        (0..lines)
            .flat_map(|i| format!("line {i}: the quick brown fox {}\n", (i * i) % 977).into_bytes())
            .collect()
    }

    fn codecs() -> Vec<Codec> {
        let mut all = vec![Codec::Passthrough];
        all.extend([1, 3, 9, 19, 22].map(Codec::zstd));
        all.extend([0, 1, 6, 9].map(Codec::gzip));
        all
    }

    #[test]
    fn round_trips() {
        for data in [Vec::new(), b"a".to_vec(), text(20_000)] {
            for codec in codecs() {
                let (payload, size, crc) = codec.compress(&data, 2).unwrap();
                assert_eq!(size, data.len() as u64);
                assert_eq!(
                    codec.decompress(&payload, size, crc).unwrap(),
                    data,
                    "{codec:?}"
                );
            }
        }
    }

    #[test]
    fn levels_are_clamped() {
        assert_eq!(Codec::zstd(0), Codec::zstd(1));
        assert_eq!(Codec::zstd(i32::MIN), Codec::Zstd { level: 1 });
        assert_eq!(Codec::zstd(100), Codec::Zstd { level: 22 });
        assert_eq!(Codec::gzip(u32::MAX), Codec::Gzip { level: 9 });
    }

    #[test]
    fn zstd_frame_records_content_size_and_small_window() {
        let data = text(30_000);
        for level in [1, 3, 19, 22] {
            let (payload, ..) = Codec::zstd(level).compress(&data, 2).unwrap();
            let size = zstd_safe::get_frame_content_size(&payload).unwrap();
            assert_eq!(size, Some(data.len() as u64));
            let mut dctx = zstd_safe::DCtx::create();
            dctx.set_parameter(zstd_safe::DParameter::WindowLogMax(27))
                .unwrap();
            let mut out = Vec::with_capacity(data.len());
            dctx.decompress(&mut out, &payload).unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn multithreaded_zstd_writes_one_standard_frame() {
        let data = text(200_000);
        assert!(data.len() >= zstd::PARALLEL_MIN_BYTES);
        let codec = Codec::zstd(3);
        let (payload, size, crc) = codec.compress(&data, 2).unwrap();
        assert_eq!(
            zstd_safe::get_frame_content_size(&payload).unwrap(),
            Some(size)
        );
        assert_eq!(
            zstd_safe::find_frame_compressed_size(&payload).unwrap(),
            payload.len()
        );
        assert_eq!(codec.decompress(&payload, size, crc).unwrap(), data);
    }

    #[test]
    fn decode_errors_follow_the_reference_order() {
        let data = text(100);
        let zstd = Codec::zstd(3);
        let (payload, size, crc) = zstd.compress(&data, 2).unwrap();
        let err = zstd.decompress(&payload, size + 1, crc ^ 1).unwrap_err();
        assert_eq!(
            err,
            Error::SizeMismatch {
                expected: size + 1,
                got: size
            }
        );
        let err = zstd.decompress(&payload, size, crc ^ 1).unwrap_err();
        assert!(matches!(err, Error::CrcMismatch { .. }));
        let err = zstd.decompress(&payload, size - 1, crc).unwrap_err();
        assert!(matches!(&err, Error::Io(m) if m.contains("bomb")), "{err}");
        let err = zstd
            .decompress(&payload, MAX_DECOMPRESSED_BYTES + 1, crc)
            .unwrap_err();
        assert!(matches!(err, Error::ManifestSizeExceedsLimit { .. }));
        let err = zstd
            .decompress(&payload[..payload.len() - 1], size, crc)
            .unwrap_err();
        assert!(matches!(err, Error::Io(_)));
        assert!(matches!(zstd.decompress(b"", 0, 0), Err(Error::Io(_))));
        let mut trailing = payload.clone();
        trailing.extend_from_slice(b"GARBAGE");
        assert!(matches!(
            zstd.decompress(&trailing, size, crc),
            Err(Error::Io(_))
        ));
    }

    #[test]
    fn the_crc_taken_block_by_block_is_the_output_crc() {
        let data = text(200_000); // many 128 KiB blocks
        let zstd = Codec::zstd(3);
        let (payload, size, crc) = zstd.compress(&data, 1).unwrap();
        let mut dst = vec![MaybeUninit::uninit(); size as usize];
        zstd.decompress_into(&payload, size, crc, &mut dst).unwrap();
        let err = zstd.decompress_into(&payload, size, crc ^ 1, &mut dst);
        assert!(matches!(err, Err(Error::CrcMismatch { .. })), "{err:?}");
        let mut got = 0;
        let mut sink = |block: &[u8]| got = crc32c::crc32c_append(got, block);
        let n = zstd::decompress_blocks(&payload, &mut dst, &mut sink).unwrap();
        assert_eq!((n, got), (Some(size as usize), crc));
        let mut short = vec![MaybeUninit::uninit(); size as usize - 1];
        assert!(zstd::decompress_blocks(&payload, &mut short, &mut |_| ())
            .unwrap()
            .is_none());
        let cut = &payload[..payload.len() - 5];
        assert!(zstd::decompress_blocks(cut, &mut dst, &mut |_| ()).is_err());
    }

    #[test]
    fn large_zstd_outputs_follow_the_pipeline() {
        let data = text(60_000);
        let zstd = Codec::zstd(3);
        let (payload, size, crc) = zstd.compress(&data, 1).unwrap();
        assert_eq!(zstd.decompress(&payload, size, crc).unwrap(), data);
        assert!(matches!(
            zstd.decompress(&payload, size, crc ^ 1),
            Err(Error::CrcMismatch { .. })
        ));
        assert_eq!(
            zstd.decompress(&payload, size + 1, crc).unwrap_err(),
            Error::SizeMismatch {
                expected: size + 1,
                got: size
            }
        );
        let bomb = zstd.decompress(&payload, size - 1, crc).unwrap_err();
        assert!(
            matches!(&bomb, Error::Io(m) if m.contains("bomb")),
            "{bomb}"
        );
        let cut = zstd
            .decompress(&payload[..payload.len() / 2], size, crc)
            .unwrap_err();
        assert!(matches!(cut, Error::Io(_)), "{cut}");
        let mut two = payload.clone();
        two.extend_from_slice(&payload);
        let both = [data.as_slice(), data.as_slice()].concat();
        assert_eq!(
            zstd.decompress(&two, 2 * size, crate::crc32c(&both))
                .unwrap(),
            both
        );
        two.extend_from_slice(b"junk");
        assert!(matches!(
            zstd.decompress(&two, 2 * size, 0),
            Err(Error::Io(_))
        ));
    }

    #[test]
    fn zstd_accepts_concatenated_and_skippable_frames() {
        let zstd = Codec::zstd(3);
        let (a, ..) = zstd.compress(b"first ", 1).unwrap();
        let (b, ..) = zstd.compress(b"second", 1).unwrap();
        let mut stream = vec![0x50, 0x2a, 0x4d, 0x18, 2, 0, 0, 0, 9, 9];
        stream.extend_from_slice(&a);
        stream.extend_from_slice(&b);
        let crc = crate::crc32c(b"first second");
        assert_eq!(zstd.decompress(&stream, 12, crc).unwrap(), b"first second");
    }

    #[test]
    fn a_lying_claim_allocates_only_what_the_payload_can_hold() {
        let zstd = Codec::zstd(3);
        let (payload, _, crc) = zstd.compress(b"tiny", 1).unwrap();
        let cap = zstd
            .output_capacity(payload.len(), MAX_DECOMPRESSED_BYTES)
            .unwrap();
        assert!(cap < 1 << 20, "{cap}");
        let err = zstd
            .decompress(&payload, MAX_DECOMPRESSED_BYTES, crc)
            .unwrap_err();
        assert_eq!(
            err,
            Error::SizeMismatch {
                expected: MAX_DECOMPRESSED_BYTES,
                got: 4
            }
        );
        let gzip = Codec::gzip(6);
        let (payload, _, crc) = gzip.compress(b"tiny", 1).unwrap();
        assert!(
            gzip.output_capacity(payload.len(), MAX_DECOMPRESSED_BYTES)
                .unwrap()
                < 1 << 16
        );
        assert!(matches!(
            gzip.decompress(&payload, MAX_DECOMPRESSED_BYTES, crc),
            Err(Error::SizeMismatch { got: 4, .. })
        ));
    }

    #[test]
    fn gzip_header_fields_are_honoured() {
        let gzip = Codec::gzip(6);
        let (plain, size, crc) = gzip.compress(b"named member", 1).unwrap();
        // Rebuild the member with FNAME + FHCRC set.
        let mut header = vec![0x1f, 0x8b, 8, 0x08 | 0x02, 0, 0, 0, 0, 0, 3];
        header.extend_from_slice(b"file.txt\0");
        let hcrc = crate::codec::gzip::tests_support::crc32_ieee(&header) as u16;
        header.extend_from_slice(&hcrc.to_le_bytes());
        let mut member = header.clone();
        member.extend_from_slice(&plain[10..]);
        assert_eq!(
            gzip.decompress(&member, size, crc).unwrap(),
            b"named member"
        );
        let bad = [
            &header[..header.len() - 1],
            &[header[header.len() - 1] ^ 1],
            &plain[10..],
        ]
        .concat();
        assert!(matches!(
            gzip.decompress(&bad, size, crc),
            Err(Error::Io(_))
        ));
        // Only the first member counts; what follows is ignored (FORMAT.md §5.2).
        let two = [plain.clone(), plain.clone()].concat();
        assert_eq!(gzip.decompress(&two, size, crc).unwrap(), b"named member");
        assert!(matches!(
            gzip.decompress(&two, size * 2, crc),
            Err(Error::SizeMismatch { .. })
        ));
        let mut reserved = plain.clone();
        reserved[3] = 0x20;
        assert_eq!(
            gzip.decompress(&reserved, size, crc),
            Err(Error::io("invalid gzip header"))
        );
    }

    #[test]
    fn gzip_header_matches_the_reference() {
        for (level, xfl) in [(0, 4), (1, 4), (6, 0), (9, 2), (12, 2)] {
            let (payload, ..) = Codec::gzip(level).compress(b"", 1).unwrap();
            assert_eq!(payload[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 0xff]);
        }
    }

    #[test]
    fn codec_ids_and_names() {
        for kind in CodecKind::ALL {
            assert_eq!(CodecKind::from_id(kind.id()), Some(kind));
            assert_eq!(CodecKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(CodecKind::from_id(9), None);
        assert_eq!(CodecKind::from_name("CPU-ZSTD"), None);
    }

    /// A counting allocator is overkill here: what matters is that a claim
    /// beyond what is reserved ahead decodes through the growing path, and
    /// that lies are caught there exactly as on the direct path.
    #[test]
    fn outputs_beyond_the_reserve_ahead_grow_as_they_decode() {
        let data = text(1_500_000); // ~50 MB, over RESERVE_AHEAD_MAX
        assert!(data.len() > RESERVE_AHEAD_MAX);
        for codec in [Codec::zstd(1), Codec::gzip(1)] {
            let (payload, size, crc) = codec.compress(&data, 2).unwrap();
            assert_eq!(codec.decompress(&payload, size, crc).unwrap(), data);
            let bomb = codec.decompress(&payload, size - 1, crc).unwrap_err();
            assert!(
                matches!(&bomb, Error::Io(m) if m.contains("bomb")),
                "{bomb}"
            );
            let short = codec.decompress(&payload, size + 1, crc).unwrap_err();
            assert!(matches!(short, Error::SizeMismatch { .. }), "{short}");
            let cut = codec
                .decompress(&payload[..payload.len() / 2], size, crc)
                .unwrap_err();
            assert!(matches!(cut, Error::Io(_)), "{cut}");
            let mut out = b"kept".to_vec();
            codec
                .decompress_unsized_append(&payload, MAX_DECOMPRESSED_BYTES, &mut out)
                .unwrap();
            assert_eq!(&out[4..], data);
            let mut out = b"kept".to_vec();
            let limited = codec.decompress_unsized_append(&payload, size - 1, &mut out);
            assert!(matches!(
                limited,
                Err(Error::ManifestSizeExceedsLimit { .. })
            ));
            assert_eq!(out, b"kept", "a failed decode leaves the output as it was");
        }
    }

    #[test]
    fn a_forged_content_size_reserves_nothing_it_cannot_back() {
        // A zstd frame header declaring 3 GiB, followed by a truncated block.
        // (single segment, 4-byte content size, then a raw block cut short.)
        let mut forged = vec![0x28, 0xb5, 0x2f, 0xfd, 0xa0];
        forged.extend_from_slice(&(3u32 << 30).to_le_bytes());
        forged.extend_from_slice(&[0x05, 0x00, 0x00, 0x61]);
        assert_eq!(zstd::declared_size(&forged), Some(3 << 30));
        let mut out = Vec::new();
        let err = Codec::zstd(3)
            .decompress_unsized_append(&forged, MAX_DECOMPRESSED_BYTES, &mut out)
            .unwrap_err();
        assert!(matches!(err, Error::Io(_)), "{err}");
        assert!(out.capacity() <= RESERVE_AHEAD_MAX, "{}", out.capacity());
        // gzip: a forged ISIZE of 4 GiB on a member holding one byte.
        let (mut member, ..) = Codec::gzip(6).compress(b"a", 1).unwrap();
        let n = member.len();
        member[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut out = Vec::new();
        let err = Codec::gzip(6)
            .decompress_unsized_append(&member, MAX_DECOMPRESSED_BYTES, &mut out)
            .unwrap_err();
        assert!(matches!(err, Error::Io(_)), "{err}");
        assert!(out.capacity() <= RESERVE_AHEAD_MAX);
    }
}
