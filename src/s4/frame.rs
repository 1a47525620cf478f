//! S4F2 data frames and S4P1 padding frames (FORMAT.md §8): parsing, writing
//! and the per-cell "s4" format of the column kernels.

use std::mem::MaybeUninit;
use std::sync::Arc;

use crate::codec::crc::crc32c;
use crate::codec::dict::ZstdDictionary;
use crate::codec::{Codec, CodecKind};
use crate::error::{Error, Result};

pub const FRAME_MAGIC: [u8; 4] = *b"S4F2";
pub const PADDING_MAGIC: [u8; 4] = *b"S4P1";
pub const FRAME_HEADER_BYTES: usize = 28;
pub const PADDING_HEADER_BYTES: usize = 12;

/// The 28-byte header of an S4F2 frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub codec: CodecKind,
    pub original_size: u64,
    pub compressed_size: u64,
    pub crc32c: u32,
}

impl FrameHeader {
    pub fn to_bytes(&self) -> [u8; FRAME_HEADER_BYTES] {
        let mut out = [0u8; FRAME_HEADER_BYTES];
        out[..4].copy_from_slice(&FRAME_MAGIC);
        out[4..8].copy_from_slice(&self.codec.id().to_le_bytes());
        out[8..16].copy_from_slice(&self.original_size.to_le_bytes());
        out[16..24].copy_from_slice(&self.compressed_size.to_le_bytes());
        out[24..28].copy_from_slice(&self.crc32c.to_le_bytes());
        out
    }
}

fn too_short(got: usize, need: usize) -> Error {
    Error::Frame(format!(
        "frame too short: need at least {need} bytes, got {got}"
    ))
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"))
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes"))
}

fn payload_len(declared: u64, available: usize) -> Result<usize> {
    let len = usize::try_from(declared).map_err(|_| {
        Error::Frame(format!(
            "frame compressed_size {declared} does not fit this platform"
        ))
    })?;
    if len > available {
        return Err(Error::Frame(format!(
            "frame compressed_size {declared} exceeds remaining buffer {available}"
        )));
    }
    Ok(len)
}

/// Parses the 28-byte S4F2 header at the start of `data` (FORMAT.md §8.3
/// step 4, before the payload check).
fn parse_header(data: &[u8]) -> Result<FrameHeader> {
    if data.len() < FRAME_HEADER_BYTES {
        return Err(too_short(data.len(), FRAME_HEADER_BYTES));
    }
    if data[..4] != FRAME_MAGIC {
        return Err(Error::Frame(format!(
            "bad frame magic: expected {:?}, got {:?}",
            FRAME_MAGIC,
            &data[..4]
        )));
    }
    let id = u32_at(data, 4);
    let codec =
        CodecKind::from_id(id).ok_or_else(|| Error::Frame(format!("unknown codec id {id}")))?;
    Ok(FrameHeader {
        codec,
        original_size: u64_at(data, 8),
        compressed_size: u64_at(data, 16),
        crc32c: u32_at(data, 24),
    })
}

/// Parses one S4F2 frame at the start of `data` (no padding skipping):
/// returns its header, payload and the bytes after it.
pub fn read_frame(data: &[u8]) -> Result<(FrameHeader, &[u8], &[u8])> {
    let header = parse_header(data)?;
    let rest = &data[FRAME_HEADER_BYTES..];
    let len = payload_len(header.compressed_size, rest.len())?;
    Ok((header, &rest[..len], &rest[len..]))
}

/// What starts at some offset of a body, read from a header alone (for
/// readers that fetch headers before payloads, e.g. walking a multipart
/// body that has no sidecar with small range reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    /// An S4P1 padding frame of `stored` bytes, header included.
    Padding { stored: u64 },
    /// An S4F2 data frame; it occupies `FRAME_HEADER_BYTES + compressed_size`.
    Frame(FrameHeader),
}

/// Reads the header at the start of `data`: 12 bytes for padding, 28 for a
/// data frame; the payload need not be there.
pub fn peek(data: &[u8]) -> Result<Extent> {
    if data.len() >= 4 && data[..4] == PADDING_MAGIC {
        if data.len() < PADDING_HEADER_BYTES {
            return Err(too_short(data.len(), FRAME_HEADER_BYTES));
        }
        let stored = u64_at(data, 4).checked_add(PADDING_HEADER_BYTES as u64);
        let stored = stored.ok_or_else(|| Error::Frame("padding length overflows".into()))?;
        return Ok(Extent::Padding { stored });
    }
    let header = parse_header(data)?;
    if header.compressed_size > u64::MAX - FRAME_HEADER_BYTES as u64 {
        return Err(Error::Frame(format!(
            "frame compressed_size {} overflows",
            header.compressed_size
        )));
    }
    Ok(Extent::Frame(header))
}

/// Iterates the data frames of an S4 object body, skipping S4P1 padding.
/// The first error ends the iteration.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    rest: &'a [u8],
    failed: bool,
}

pub fn frames(body: &[u8]) -> Frames<'_> {
    Frames {
        rest: body,
        failed: false,
    }
}

impl<'a> Frames<'a> {
    /// Bytes not yet consumed.
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    fn step(&mut self) -> Result<Option<(FrameHeader, &'a [u8])>> {
        loop {
            let rest = self.rest;
            if rest.is_empty() {
                return Ok(None);
            }
            if rest.len() >= 4 && rest[..4] == PADDING_MAGIC {
                if rest.len() < PADDING_HEADER_BYTES {
                    return Err(too_short(rest.len(), FRAME_HEADER_BYTES));
                }
                let after = &rest[PADDING_HEADER_BYTES..];
                let len = payload_len(u64_at(rest, 4), after.len())?;
                self.rest = &after[len..];
                continue;
            }
            let (header, payload, after) = read_frame(rest)?;
            self.rest = after;
            return Ok(Some((header, payload)));
        }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<(FrameHeader, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self.step().transpose();
        self.failed = matches!(item, Some(Err(_)));
        item
    }
}

/// The CPU decoder for a frame's codec; `cpu-zstd-dict` frames need `dict`.
pub fn decoder_for(kind: CodecKind, dict: Option<&Arc<ZstdDictionary>>) -> Result<Codec> {
    match (kind, dict) {
        (CodecKind::Passthrough, _) => Ok(Codec::Passthrough),
        (CodecKind::CpuZstd, _) => Ok(Codec::zstd(crate::codec::zstd::DEFAULT_LEVEL)),
        (CodecKind::CpuGzip, _) => Ok(Codec::gzip(crate::codec::gzip::DEFAULT_LEVEL)),
        (CodecKind::CpuZstdDict, Some(dict)) => Ok(Codec::zstd_dict(
            dict.clone(),
            crate::codec::zstd::DEFAULT_LEVEL,
        )),
        (other, _) => Err(Error::UnregisteredCodec(other.name())),
    }
}

/// Writes one S4F2 frame holding `src` compressed with `codec` at the start
/// of `dst`, which holds at least `FRAME_HEADER_BYTES` plus the codec's
/// bound; returns its header (whose CRC callers combine instead of reading
/// `src` again). The frame is `FRAME_HEADER_BYTES + compressed_size` long.
pub fn encode_frame_into(
    codec: &Codec,
    src: &[u8],
    dst: &mut [MaybeUninit<u8>],
) -> Result<FrameHeader> {
    let payload = codec.compress_into(src, &mut dst[FRAME_HEADER_BYTES..])?;
    let header = FrameHeader {
        codec: codec.kind(),
        original_size: src.len() as u64,
        compressed_size: payload as u64,
        crc32c: crc32c(src),
    };
    for (slot, byte) in dst.iter_mut().zip(header.to_bytes()) {
        slot.write(byte);
    }
    Ok(header)
}

/// Appends one S4F2 frame holding `src` compressed with `codec`; returns its
/// header.
pub fn encode_frame_append(codec: &Codec, src: &[u8], out: &mut Vec<u8>) -> Result<FrameHeader> {
    crate::error::try_reserve(out, FRAME_HEADER_BYTES + codec.compress_bound(src.len())?)?;
    let header = encode_frame_into(codec, src, out.spare_capacity_mut())?;
    // SAFETY: `encode_frame_into` wrote the header and the payload.
    unsafe { out.set_len(out.len() + FRAME_HEADER_BYTES + header.compressed_size as usize) };
    Ok(header)
}

/// The gateway's `pad_to_minimum`: when `body` is shorter than `min_total`,
/// appends one S4P1 frame of zeros bringing it to at least `min_total` (up to
/// 11 bytes over, when even the padding header does not fit).
pub fn pad_to_minimum(body: &mut Vec<u8>, min_total: usize) -> Result<()> {
    if body.len() >= min_total {
        return Ok(());
    }
    let pad_len = min_total.saturating_sub(body.len() + PADDING_HEADER_BYTES);
    crate::error::try_reserve(body, PADDING_HEADER_BYTES + pad_len)?;
    body.extend_from_slice(&PADDING_MAGIC);
    body.extend_from_slice(&(pad_len as u64).to_le_bytes());
    body.resize(body.len() + pad_len, 0);
    Ok(())
}

/// Summary of an object body read from its headers alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyInfo {
    /// The codec of every frame, or `None` when frames use several codecs.
    pub codec: Option<CodecKind>,
    pub frames: usize,
    pub original_size: u64,
    pub compressed_size: u64,
    /// CRC32C of the whole original body (frame CRCs combined).
    pub crc32c: u32,
}

/// The original size `body`'s headers add up to (0 if they do not parse).
pub fn declared_size(body: &[u8]) -> u64 {
    frames(body)
        .map_while(Result::ok)
        .fold(0, |total, (header, _)| {
            total.saturating_add(header.original_size)
        })
}

/// The original bytes at the start of the S4F2 frame that `stored` begins
/// with, from its header and as much of its payload as `stored` holds
/// (FORMAT.md §8.3): how a reader finds where a line ends without fetching
/// the whole next frame. A whole frame is decoded and checked as always;
/// a part of one decodes for cpu-zstd, cpu-zstd-dict and passthrough (its
/// bytes are checked when the frame is read whole), while a cpu-gzip payload
/// decodes only whole.
pub fn decode_prefix(stored: &[u8], dict: Option<&Arc<ZstdDictionary>>) -> Result<Vec<u8>> {
    let header = parse_header(stored)?;
    let available = &stored[FRAME_HEADER_BYTES..];
    let codec = decoder_for(header.codec, dict)?;
    match usize::try_from(header.compressed_size) {
        Ok(len) if len <= available.len() => {
            return codec.decompress(&available[..len], header.original_size, header.crc32c);
        }
        _ => {}
    }
    match header.codec {
        CodecKind::CpuZstd | CodecKind::CpuZstdDict => crate::codec::zstd::decompress_prefix(
            available,
            dict.map(|d| d.ddict()),
            header.original_size,
        ),
        CodecKind::Passthrough if header.original_size != header.compressed_size => {
            Err(Error::SizeMismatch {
                expected: header.original_size,
                got: header.compressed_size,
            })
        }
        CodecKind::Passthrough => {
            let take = header.original_size.min(available.len() as u64) as usize;
            let mut out = Vec::new();
            crate::error::try_reserve(&mut out, take)?;
            out.extend_from_slice(&available[..take]);
            Ok(out)
        }
        other => Err(Error::Frame(format!(
            "a {} frame decodes only whole: {} of its {} payload bytes were given",
            other.name(),
            available.len(),
            header.compressed_size
        ))),
    }
}

/// Reads every header of `body` without decompressing.
pub fn body_info(body: &[u8]) -> Result<BodyInfo> {
    let mut info = BodyInfo {
        codec: None,
        frames: 0,
        original_size: 0,
        compressed_size: 0,
        crc32c: 0,
    };
    for frame in frames(body) {
        let (header, _) = frame?;
        info.codec = match (info.frames, info.codec) {
            (0, _) => Some(header.codec),
            (_, Some(kind)) if kind == header.codec => Some(kind),
            _ => None,
        };
        info.frames += 1;
        info.crc32c = crate::codec::crc::combine(info.crc32c, header.crc32c, header.original_size);
        info.original_size = info.original_size.saturating_add(header.original_size);
        info.compressed_size = info.compressed_size.saturating_add(header.compressed_size);
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip_and_padding() {
        let codec = Codec::zstd(3);
        let mut body = Vec::new();
        encode_frame_append(&codec, b"hello ", &mut body).unwrap();
        body.extend_from_slice(&PADDING_MAGIC);
        body.extend_from_slice(&5u64.to_le_bytes());
        body.extend_from_slice(&[1, 2, 3, 4, 5]);
        encode_frame_append(&Codec::gzip(6), b"world", &mut body).unwrap();
        let parsed: Vec<_> = frames(&body).collect::<Result<_>>().unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].0.codec, CodecKind::CpuZstd);
        assert_eq!(parsed[1].0.original_size, 5);
        let info = body_info(&body).unwrap();
        assert_eq!(info.codec, None);
        for (a, b) in [(&b""[..], &b"xyz"[..]), (b"abc", b"")] {
            let joined = [a, b].concat();
            let got = crate::codec::crc::combine(crc32c(a), crc32c(b), b.len() as u64);
            assert_eq!(got, crc32c(&joined), "{a:?} + {b:?}");
        }
        // The shortcut for a zero `first` is what the full combination gives.
        for (second, len) in [(0x1234_5678, 1), (0xdead_beef, 1 << 20), (7, 3)] {
            assert_eq!(crc32c::crc32c_combine(0, second, len), second);
        }
        assert_eq!(info.original_size, 11);
        assert_eq!(info.crc32c, crc32c(b"hello world"));
    }

    #[test]
    fn parse_errors() {
        assert!(matches!(read_frame(b"S4F2\0"), Err(Error::Frame(_))));
        let mut frame = FrameHeader {
            codec: CodecKind::Passthrough,
            original_size: 3,
            compressed_size: 3,
            crc32c: crc32c(b"abc"),
        }
        .to_bytes()
        .to_vec();
        frame.extend_from_slice(b"abc");
        assert!(read_frame(&frame).is_ok());
        let mut unknown = frame.clone();
        unknown[4] = 9;
        assert!(read_frame(&unknown)
            .unwrap_err()
            .to_string()
            .contains("unknown codec id 9"));
        let mut truncated = frame.clone();
        truncated.pop();
        assert!(read_frame(&truncated).is_err());
        let mut garbage = frame.clone();
        garbage.extend_from_slice(b"xyz");
        let results: Vec<_> = frames(&garbage).collect();
        assert_eq!(results.len(), 2);
        assert!(results[1].is_err());
    }

    #[test]
    fn prefixes_decode_to_prefixes_of_the_original() {
        let original: Vec<u8> = (0..600_000u32)
            .flat_map(|i| {
                format!("line {} {}\n", i, i.wrapping_mul(2_654_435_761) % 977).into_bytes()
            })
            .collect();
        for codec in [Codec::zstd(3), Codec::Passthrough] {
            let mut frame = Vec::new();
            encode_frame_append(&codec, &original, &mut frame).unwrap();
            for cut in [
                FRAME_HEADER_BYTES,
                40,
                1000,
                65_536,
                frame.len() - 1,
                frame.len(),
            ] {
                let got = decode_prefix(&frame[..cut], None).unwrap();
                assert!(
                    original.starts_with(&got),
                    "{:?} cut at {cut}",
                    codec.kind()
                );
                assert!(cut < frame.len() / 2 || got.len() > original.len() / 4);
            }
            assert_eq!(decode_prefix(&frame, None).unwrap(), original);
            // A header that under-states the size is caught on the prefix too.
            let mut lying = frame[..frame.len() / 2].to_vec();
            lying[8..16].copy_from_slice(&100u64.to_le_bytes());
            assert!(decode_prefix(&lying, None).is_err());
        }
        let mut gzip = Vec::new();
        encode_frame_append(&Codec::gzip(6), &original, &mut gzip).unwrap();
        assert!(matches!(
            decode_prefix(&gzip[..1000], None),
            Err(Error::Frame(_))
        ));
        assert_eq!(decode_prefix(&gzip, None).unwrap(), original);
        let mut corrupt = gzip.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        assert!(decode_prefix(&corrupt, None).is_err());
        assert!(decode_prefix(&gzip[..10], None).is_err());
    }
}
