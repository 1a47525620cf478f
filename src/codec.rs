//! Codec kinds (FORMAT.md §1), codec settings and the common decode pipeline
//! of FORMAT.md §3: limit check, bounded output, size check, then CRC32C.

use std::fmt;
use std::mem::MaybeUninit;

use crate::crc::crc32c;
use crate::error::{Error, Result};
use crate::{gzip, zstd};

/// The AWS single-PUT ceiling; no manifest may claim more.
pub const MAX_DECOMPRESSED_BYTES: u64 = 5 << 30;

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

/// A CPU codec with its settings. Cheap to copy and share between threads:
/// engine contexts live in thread-locals, not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Passthrough,
    Zstd { level: i32 },
    Gzip { level: u32 },
}

impl Codec {
    /// zstd at `level` clamped to 1..=22 as the reference does (0 and the
    /// negative "fast" levels mean 1, not zstd's default).
    pub fn zstd(level: i32) -> Self {
        Codec::Zstd {
            level: level.clamp(zstd::MIN_LEVEL, zstd::MAX_LEVEL),
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
        }
    }

    /// Largest payload `compress_into` can write for `len` input bytes.
    pub fn compress_bound(&self, len: usize) -> Result<usize> {
        match *self {
            Codec::Passthrough => Ok(len),
            Codec::Zstd { .. } => Ok(zstd::compress_bound(len)),
            Codec::Gzip { level } => gzip::compress_bound(level, len),
        }
    }

    /// Compresses `src` into `dst`, which holds at least `compress_bound`
    /// bytes, and returns the payload length.
    pub fn compress_into(&self, src: &[u8], dst: &mut [MaybeUninit<u8>]) -> Result<usize> {
        match *self {
            Codec::Passthrough => {
                let dst = dst
                    .get_mut(..src.len())
                    .ok_or_else(|| Error::Backend("output buffer too small".into()))?;
                for (slot, &byte) in dst.iter_mut().zip(src) {
                    slot.write(byte);
                }
                Ok(src.len())
            }
            Codec::Zstd { level } => zstd::compress(src, level, dst),
            Codec::Gzip { level } => gzip::compress(src, level, dst),
        }
    }

    /// Appends the payload for `src` to `out`; returns its length.
    pub fn compress_append(&self, src: &[u8], out: &mut Vec<u8>) -> Result<usize> {
        out.reserve(self.compress_bound(src.len())?);
        let written = self.compress_into(src, out.spare_capacity_mut())?;
        // SAFETY: `compress_into` initialised `written` bytes of spare capacity.
        unsafe { out.set_len(out.len() + written) };
        Ok(written)
    }

    /// The most bytes any payload of `compressed_len` bytes can decode to.
    pub fn max_decoded_len(&self, compressed_len: usize) -> u64 {
        match self {
            Codec::Passthrough => compressed_len as u64,
            Codec::Zstd { .. } => zstd::max_decoded_len(compressed_len),
            Codec::Gzip { .. } => gzip::max_decoded_len(compressed_len),
        }
    }

    /// How many output bytes to allocate for a payload that claims
    /// `original_size`: the claim, unless the payload cannot possibly decode to
    /// that much. Never trusts the claim beyond what the input can back.
    pub fn output_capacity(&self, payload_len: usize, original_size: u64) -> Result<usize> {
        check_limit(original_size, MAX_DECOMPRESSED_BYTES)?;
        let cap = original_size.min(self.max_decoded_len(payload_len));
        usize::try_from(cap).map_err(|_| Error::ManifestSizeExceedsLimit {
            requested: original_size,
            limit: usize::MAX as u64,
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
        let produced = match *self {
            Codec::Passthrough => {
                let dst = dst.get_mut(..src.len()).ok_or_else(|| Error::SizeMismatch {
                    expected: original_size,
                    got: src.len() as u64,
                })?;
                for (slot, &byte) in dst.iter_mut().zip(src) {
                    slot.write(byte);
                }
                src.len()
            }
            Codec::Zstd { .. } => zstd::decompress(src, dst)?,
            Codec::Gzip { .. } => gzip::decompress(src, dst)?,
        };
        if produced as u64 != original_size {
            return Err(Error::SizeMismatch {
                expected: original_size,
                got: produced as u64,
            });
        }
        // SAFETY: the engine initialised the first `produced` bytes.
        let out = unsafe { std::slice::from_raw_parts(dst.as_ptr().cast::<u8>(), produced) };
        let got = crc32c(out);
        if got != crc {
            return Err(Error::CrcMismatch { expected: crc, got });
        }
        Ok(())
    }

    /// Appends the decoded payload to `out` after every §3 check.
    pub fn decompress_append(
        &self,
        src: &[u8],
        original_size: u64,
        crc: u32,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let cap = self.output_capacity(src.len(), original_size)?;
        out.reserve(cap);
        let start = out.len();
        self.decompress_into(src, original_size, crc, &mut out.spare_capacity_mut()[..cap])?;
        // SAFETY: success means `original_size` (== cap) bytes were initialised.
        unsafe { out.set_len(start + original_size as usize) };
        Ok(())
    }

    /// Compresses `src` into a new buffer: `(payload, original_size, crc32c)`.
    pub fn compress(&self, src: &[u8]) -> Result<(Vec<u8>, u64, u32)> {
        let mut out = Vec::new();
        self.compress_append(src, &mut out)?;
        Ok((out, src.len() as u64, crc32c(src)))
    }

    /// Decodes a payload described by `(original_size, crc32c)`.
    pub fn decompress(&self, src: &[u8], original_size: u64, crc: u32) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.decompress_append(src, original_size, crc, &mut out)?;
        Ok(out)
    }
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
