//! S4 objects as the gateway stores them (FORMAT.md §8.4–§8.6): chunked
//! S4F2 bodies with metadata and sidecars, and the GET-side decision.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::sync::Arc;

use rayon::prelude::*;

use crate::batch;
use crate::codec::{Codec, CodecKind};
use crate::crc::crc32c;
use crate::dict::ZstdDictionary;
use crate::error::{Error, Result};
use crate::frame::{self, FrameHeader, FRAME_HEADER_BYTES, FRAME_MAGIC, PADDING_MAGIC};
use crate::index::{FrameIndex, IndexEntry};

pub const KEY_CODEC: &str = "s4-codec";
pub const KEY_ORIGINAL_SIZE: &str = "s4-original-size";
pub const KEY_COMPRESSED_SIZE: &str = "s4-compressed-size";
pub const KEY_CRC32C: &str = "s4-crc32c";
pub const KEY_FRAMED: &str = "s4-framed";
pub const KEY_MULTIPART: &str = "s4-multipart";
pub const KEY_DICT_ID: &str = "s4-dict-id";

const MIB: u64 = 1 << 20;

/// The gateway's chunk size for a single-PUT body of `len` bytes.
pub fn pick_chunk_size(len: u64) -> u64 {
    match len {
        0..=MIB => MIB,
        _ if len <= 100 * MIB => 4 * MIB,
        _ => 16 * MIB,
    }
}

/// What a single PUT stores: the body, its sidecar (> 1 frame) and metadata.
#[derive(Debug)]
pub struct EncodedObject {
    pub body: Vec<u8>,
    pub sidecar: Option<Vec<u8>>,
    pub metadata: Vec<(&'static str, String)>,
}

fn manifest(kind: CodecKind, data: &[u8], body_len: usize) -> Vec<(&'static str, String)> {
    vec![
        (KEY_CODEC, kind.name().to_owned()),
        (KEY_ORIGINAL_SIZE, data.len().to_string()),
        (KEY_COMPRESSED_SIZE, body_len.to_string()),
        (KEY_CRC32C, crc32c(data).to_string()),
    ]
}

/// Encodes `data` as the gateway's single-PUT path would store it with `codec`.
pub fn encode(data: &[u8], codec: &Codec, threads: usize) -> Result<EncodedObject> {
    match codec {
        Codec::Passthrough => Ok(EncodedObject {
            body: data.to_vec(),
            sidecar: None,
            metadata: manifest(CodecKind::Passthrough, data, data.len()),
        }),
        // gzip (like the GPU codecs) takes the gateway's unframed path.
        Codec::Gzip { .. } => {
            let (body, ..) = codec.compress(data, threads)?;
            let metadata = manifest(CodecKind::CpuGzip, data, body.len());
            Ok(EncodedObject {
                body,
                sidecar: None,
                metadata,
            })
        }
        // Dictionary objects are always exactly one frame.
        Codec::ZstdDict { dict, .. } => {
            let mut body = Vec::new();
            frame::encode_frame_append(codec, data, &mut body)?;
            let mut metadata = manifest(CodecKind::CpuZstdDict, data, body.len());
            metadata.push((KEY_FRAMED, "true".into()));
            metadata.push((KEY_DICT_ID, dict.s4_dict_id()));
            Ok(EncodedObject {
                body,
                sidecar: None,
                metadata,
            })
        }
        Codec::Zstd { level } => encode_chunked(data, *level, threads),
    }
}

/// One S4F2 frame whose zstd payload is byte-identical to the gateway's.
fn gateway_frame(piece: &[u8], level: i32) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(FRAME_HEADER_BYTES + crate::zstd::compress_bound(piece.len()));
    out.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
    let written = crate::zstd::compress_like_gateway(piece, level, out.spare_capacity_mut())?;
    // SAFETY: the encoder initialised `written` bytes after the header.
    unsafe { out.set_len(FRAME_HEADER_BYTES + written) };
    let header = FrameHeader {
        codec: CodecKind::CpuZstd,
        original_size: piece.len() as u64,
        compressed_size: written as u64,
        crc32c: crc32c(piece),
    };
    out[..FRAME_HEADER_BYTES].copy_from_slice(&header.to_bytes());
    Ok(out)
}

fn encode_chunked(data: &[u8], level: i32, threads: usize) -> Result<EncodedObject> {
    let chunk = pick_chunk_size(data.len() as u64) as usize;
    let frames: Vec<Vec<u8>> = batch::install(threads, || {
        data.par_chunks(chunk)
            .map(|piece| gateway_frame(piece, level))
            .collect::<Result<_>>()
    })?;
    let mut entries = Vec::with_capacity(frames.len());
    let (mut original_offset, mut compressed_offset) = (0u64, 0u64);
    for (frame, piece) in frames.iter().zip(data.chunks(chunk)) {
        entries.push(IndexEntry {
            original_offset,
            original_size: piece.len() as u64,
            compressed_offset,
            compressed_size: frame.len() as u64,
        });
        original_offset += piece.len() as u64;
        compressed_offset += frame.len() as u64;
    }
    let body = frames.concat();
    let sidecar = (entries.len() > 1)
        .then(|| {
            FrameIndex {
                total_padded_size: body.len() as u64,
                entries,
                ..Default::default()
            }
            .encode()
        })
        .transpose()?;
    let mut metadata = manifest(CodecKind::CpuZstd, data, body.len());
    metadata.push((KEY_FRAMED, "true".into()));
    Ok(EncodedObject {
        body,
        sidecar,
        metadata,
    })
}

/// The frames of a body, parsed and sized, ready to decode.
pub struct FramesPlan<'a> {
    frames: Vec<(FrameHeader, &'a [u8], Codec, usize)>,
    total: usize,
    exact: bool,
}

impl FramesPlan<'_> {
    /// Parses every header; each frame's output is sized by its claim, but
    /// never beyond what its payload can hold.
    pub fn new<'a>(body: &'a [u8], dict: Option<&Arc<ZstdDictionary>>) -> Result<FramesPlan<'a>> {
        let mut plan = FramesPlan {
            frames: Vec::new(),
            total: 0,
            exact: true,
        };
        for frame in frame::frames(body) {
            let (header, payload) = frame?;
            let codec = frame::decoder_for(header.codec, dict)?;
            let cap = codec.output_capacity(payload.len(), header.original_size)?;
            plan.exact &= cap as u64 == header.original_size;
            plan.total = plan
                .total
                .checked_add(cap)
                .ok_or_else(|| Error::Backend("object too large for this platform".into()))?;
            plan.frames.push((header, payload, codec, cap));
        }
        Ok(plan)
    }

    /// The output length if every frame keeps its claim.
    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Whether every claim is backed by its payload (else decoding fails).
    pub fn is_exact(&self) -> bool {
        self.exact
    }

    /// CRC32C of the whole output: the frames' checksums combined, which is
    /// exact once every frame has been verified against its own.
    pub fn crc32c(&self) -> u32 {
        self.frames.iter().fold(0, |crc, (header, ..)| {
            frame::combine_crc(crc, header.crc32c, header.original_size)
        })
    }

    /// Checks the object metadata's size and CRC against the headers.
    pub fn check_metadata(&self, metadata: &HashMap<String, String>) -> Result<()> {
        let claimed: u64 = self.frames.iter().map(|(h, ..)| h.original_size).sum();
        if let Some(size) = parsed::<u64>(metadata, KEY_ORIGINAL_SIZE) {
            if size != claimed {
                return Err(Error::SizeMismatch {
                    expected: size,
                    got: claimed,
                });
            }
        }
        if let Some(expected) = parsed::<u32>(metadata, KEY_CRC32C) {
            let got = self.crc32c();
            if got != expected {
                return Err(Error::CrcMismatch { expected, got });
            }
        }
        Ok(())
    }

    /// Decodes every frame into `dst` (`len()` bytes), frames in parallel,
    /// each checked for size and CRC32C.
    pub fn decode_into(&self, dst: &mut [MaybeUninit<u8>], threads: usize) -> Result<()> {
        let mut slots: Vec<&mut [MaybeUninit<u8>]> = Vec::with_capacity(self.frames.len());
        let mut rest = &mut dst[..self.total];
        for (.., cap) in &self.frames {
            let (slot, tail) = rest.split_at_mut(*cap);
            slots.push(slot);
            rest = tail;
        }
        batch::install(threads, || {
            self.frames
                .par_iter()
                .zip(slots.par_iter_mut())
                .try_for_each(|((header, payload, codec, _), slot)| {
                    codec.decompress_into(payload, header.original_size, header.crc32c, slot)
                })
        })
    }

    pub fn decode(&self, threads: usize) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.total);
        self.decode_into(out.spare_capacity_mut(), threads)?;
        // SAFETY: every frame succeeded, so each slot (of its claimed size)
        // was filled completely.
        unsafe { out.set_len(self.total) };
        Ok(out)
    }
}

/// Whether the GET decision reads `body` as frames: metadata says framed or
/// multipart, or, with no metadata at all, the body starts with a frame magic.
pub fn is_framed(body: &[u8], metadata: Option<&HashMap<String, String>>) -> bool {
    match metadata {
        Some(metadata) => is_true(metadata, KEY_FRAMED) || is_true(metadata, KEY_MULTIPART),
        None => body.starts_with(&FRAME_MAGIC) || body.starts_with(&PADDING_MAGIC),
    }
}

/// Decodes every data frame of `body` (see [`FramesPlan`]).
pub fn decode_frames(
    body: &[u8],
    dict: Option<&Arc<ZstdDictionary>>,
    threads: usize,
) -> Result<Vec<u8>> {
    FramesPlan::new(body, dict)?.decode(threads)
}

fn parsed<T: std::str::FromStr>(metadata: &HashMap<String, String>, key: &str) -> Option<T> {
    metadata.get(key).and_then(|v| v.parse().ok())
}

fn is_true(metadata: &HashMap<String, String>, key: &str) -> bool {
    metadata.get(key).is_some_and(|v| v == "true")
}

/// The gateway's GET decision (§8.5). With no metadata at all, a body that
/// starts with an S4F2/S4P1 magic is decoded as frames and anything else is
/// returned unchanged; with metadata, it alone decides.
pub fn decode(
    body: &[u8],
    metadata: Option<&HashMap<String, String>>,
    dict: Option<&Arc<ZstdDictionary>>,
    threads: usize,
) -> Result<Vec<u8>> {
    if is_framed(body, metadata) {
        let plan = FramesPlan::new(body, dict)?;
        if let Some(metadata) = metadata {
            plan.check_metadata(metadata)?;
        }
        return plan.decode(threads);
    }
    let Some(metadata) = metadata else {
        return Ok(body.to_vec()); // not S4-managed
    };
    let manifest = (
        metadata
            .get(KEY_CODEC)
            .and_then(|name| CodecKind::from_name(name)),
        parsed::<u64>(metadata, KEY_ORIGINAL_SIZE),
        parsed::<u64>(metadata, KEY_COMPRESSED_SIZE),
        parsed::<u32>(metadata, KEY_CRC32C),
    );
    let (Some(kind), Some(original_size), Some(compressed_size), Some(crc)) = manifest else {
        return Ok(body.to_vec()); // not S4-managed
    };
    if compressed_size != body.len() as u64 {
        return Err(Error::ManifestSizeMismatch {
            manifest: compressed_size,
            actual: body.len() as u64,
        });
    }
    frame::decoder_for(kind, dict)?.decompress(body, original_size, crc)
}

/// Decodes original bytes `[start, end)` of a framed object from the frames
/// that cover them. `body` is the whole stored body or just the stored
/// bytes `plan_range` named.
pub fn decode_range(
    body: &[u8],
    sidecar: &FrameIndex,
    start: u64,
    end: u64,
    dict: Option<&Arc<ZstdDictionary>>,
    threads: usize,
) -> Result<Vec<u8>> {
    let (first, last, skip) = sidecar.plan_range(start, end)?;
    if start == end {
        return Ok(Vec::new());
    }
    let fetched = if body.len() as u64 == last - first {
        body
    } else {
        body.get(first as usize..last as usize).ok_or_else(|| {
            Error::Frame(format!(
                "body of {} bytes holds neither the whole object nor stored bytes [{first}, {last})",
                body.len()
            ))
        })?
    };
    let decoded = decode_frames(fetched, dict, threads)?;
    let want = (end - start) as usize;
    decoded
        .get(skip as usize..skip as usize + want)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| Error::SizeMismatch {
            expected: skip + want as u64,
            got: decoded.len() as u64,
        })
}
