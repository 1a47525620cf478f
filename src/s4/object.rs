//! S4 objects as the gateway stores them (FORMAT.md §8.4–§8.6): chunked
//! S4F2 bodies with metadata and sidecars, and the GET-side decision.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use crate::codec::crc::crc32c;
use crate::codec::dict::ZstdDictionary;
use crate::codec::{check_limit, Codec, CodecKind, RESERVE_AHEAD_MAX, RESULT_RESERVE_MAX};
use crate::error::{try_reserve, Error, Result};
use crate::s4::frame::{self, FrameHeader, FRAME_HEADER_BYTES, FRAME_MAGIC, PADDING_MAGIC};
use crate::s4::index::{FrameIndex, IndexEntry};
use crate::threads;

pub const KEY_CODEC: &str = "s4-codec";
pub const KEY_ORIGINAL_SIZE: &str = "s4-original-size";
pub const KEY_COMPRESSED_SIZE: &str = "s4-compressed-size";
pub const KEY_CRC32C: &str = "s4-crc32c";
pub const KEY_FRAMED: &str = "s4-framed";
pub const KEY_MULTIPART: &str = "s4-multipart";
pub const KEY_DICT_ID: &str = "s4-dict-id";
pub const KEY_LOGICAL_ETAG: &str = "s4-logical-etag";

/// A multipart part whose original size reaches this is padded to it
/// (the gateway's UploadPart path, FORMAT.md §8.4).
pub const PART_PAD_MIN: usize = 5 << 20;

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

/// The metadata of a single PUT: the manifest (FORMAT.md §8.5) and, where
/// the gateway stamps one, the logical ETag its clients see.
fn manifest(
    kind: CodecKind,
    data: &[u8],
    crc: u32,
    md5_hex: Option<String>,
    body_len: usize,
) -> Vec<(&'static str, String)> {
    let mut metadata = vec![
        (KEY_CODEC, kind.name().to_owned()),
        (KEY_ORIGINAL_SIZE, data.len().to_string()),
        (KEY_COMPRESSED_SIZE, body_len.to_string()),
        (KEY_CRC32C, crc.to_string()),
    ];
    metadata.extend(md5_hex.map(|md5| (KEY_LOGICAL_ETAG, md5)));
    metadata
}

/// MD5 of `data` in lowercase hex: the ETag S3 gives a single PUT of it.
pub fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Encodes `data` as the gateway's single-PUT path would store it with
/// `codec`. Each input byte is read once for the CRC (object CRCs combine
/// the frames'); the MD5 for the logical ETag is one more task beside the
/// compression, all on at most `threads` threads. A passthrough object gets
/// no logical ETag: the gateway stores none, since its stored body is the
/// original and S3's own ETag (the body's MD5) is served.
pub fn encode(data: &[u8], codec: &Codec, threads: usize) -> Result<EncodedObject> {
    let threads = threads::clamp(threads);
    let md5 = OnceLock::new();
    let compute_md5 = || drop(md5.set(md5_hex(data)));
    let encoded = match codec {
        Codec::Zstd { level } => encode_chunked(data, *level, threads, Some(&md5)),
        Codec::Passthrough => encode_body(data, codec, threads),
        _ if threads == 1 => {
            compute_md5();
            encode_body(data, codec, 1)
        }
        _ => threads::join(compute_md5, || encode_body(data, codec, threads - 1)).1,
    };
    let (kind, body, sidecar, crc) = encoded?;
    let mut metadata = manifest(kind, data, crc, md5.into_inner(), body.len());
    match codec {
        Codec::Zstd { .. } => metadata.push((KEY_FRAMED, "true".into())),
        Codec::ZstdDict { dict, .. } => {
            metadata.push((KEY_FRAMED, "true".into()));
            metadata.push((KEY_DICT_ID, dict.s4_dict_id()));
        }
        Codec::Gzip { .. } | Codec::Passthrough => {}
    }
    Ok(EncodedObject {
        body,
        sidecar,
        metadata,
    })
}

type Body = (CodecKind, Vec<u8>, Option<Vec<u8>>, u32);

fn encode_body(data: &[u8], codec: &Codec, threads: usize) -> Result<Body> {
    match codec {
        Codec::Passthrough => Ok((CodecKind::Passthrough, data.to_vec(), None, crc32c(data))),
        // gzip (like the GPU codecs) takes the gateway's unframed path.
        Codec::Gzip { .. } => {
            let (body, _, crc) = codec.compress(data, threads)?;
            Ok((CodecKind::CpuGzip, body, None, crc))
        }
        // Dictionary objects are always exactly one frame.
        Codec::ZstdDict { .. } => {
            let mut body = Vec::new();
            let header = frame::encode_frame_append(codec, data, &mut body)?;
            Ok((CodecKind::CpuZstdDict, body, None, header.crc32c))
        }
        Codec::Zstd { level } => encode_chunked(data, *level, threads, None),
    }
}

/// One multipart part as the gateway's UploadPart stores it: one S4F2 frame,
/// padded to `PART_PAD_MIN` when the part's original size reaches it.
pub fn encode_part(data: &[u8], codec: &Codec) -> Result<Vec<u8>> {
    framed_part(data, codec).map(|(part, _)| part)
}

/// A part and the length of its data frame (the rest is padding).
fn framed_part(data: &[u8], codec: &Codec) -> Result<(Vec<u8>, u64)> {
    let mut body = Vec::new();
    frame::encode_frame_append(codec, data, &mut body)?;
    let frame_len = body.len() as u64;
    if data.len() >= PART_PAD_MIN {
        frame::pad_to_minimum(&mut body, PART_PAD_MIN)?;
    }
    Ok((body, frame_len))
}

/// A multipart upload as the gateway stores it (FORMAT.md §8.4): each part
/// one frame (padded from 5 MiB), and at completion the metadata with the
/// composite logical ETag and the sidecar over the data frames.
pub struct MultipartLedger {
    codec: Codec,
    entries: Vec<IndexEntry>,
    /// MD5 of each part's original bytes: S3's composite ETag hashes them.
    part_md5s: Vec<u8>,
    original: u64,
    stored: u64,
}

impl MultipartLedger {
    pub fn new(codec: Codec) -> Self {
        MultipartLedger {
            codec,
            entries: Vec::new(),
            part_md5s: Vec::new(),
            original: 0,
            stored: 0,
        }
    }

    /// The next part's stored bytes, recorded.
    pub fn encode_part(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        use md5::{Digest, Md5};
        let (part, md5) = threads::join(|| framed_part(data, &self.codec), || Md5::digest(data));
        let (part, frame) = part?;
        self.entries.push(IndexEntry {
            original_offset: self.original,
            original_size: data.len() as u64,
            compressed_offset: self.stored,
            compressed_size: frame,
        });
        self.part_md5s.extend_from_slice(&md5);
        self.original += data.len() as u64;
        self.stored += part.len() as u64;
        Ok(part)
    }

    pub fn parts(&self) -> usize {
        self.entries.len()
    }

    pub fn original_size(&self) -> u64 {
        self.original
    }

    pub fn stored_size(&self) -> u64 {
        self.stored
    }

    /// What the upload starts with: the codec and the multipart flag.
    pub fn upload_metadata(&self) -> Vec<(&'static str, String)> {
        vec![
            (KEY_CODEC, self.codec.kind().name().to_owned()),
            (KEY_MULTIPART, "true".to_owned()),
        ]
    }

    /// What the gateway stamps at completion: sizes and S3's composite
    /// ETag of the original parts, `<md5 of the part MD5s>-<parts>`; no CRC.
    pub fn complete_metadata(&self) -> Vec<(&'static str, String)> {
        let mut metadata = self.upload_metadata();
        metadata.extend([
            (KEY_ORIGINAL_SIZE, self.original.to_string()),
            (KEY_COMPRESSED_SIZE, self.stored.to_string()),
            (
                KEY_LOGICAL_ETAG,
                format!("{}-{}", md5_hex(&self.part_md5s), self.parts()),
            ),
        ]);
        metadata
    }

    /// The sidecar of the completed object, bound to its stored ETag.
    pub fn sidecar(&self, stored_etag: Option<&str>) -> Result<Vec<u8>> {
        let mut index = FrameIndex {
            total_padded_size: self.stored,
            entries: self.entries.clone(),
            ..Default::default()
        };
        index.set_binding(Some(self.stored), stored_etag);
        index.encode()
    }
}

/// One S4F2 frame whose zstd payload is byte-identical to the gateway's,
/// and the CRC of `piece`.
fn gateway_frame(piece: &[u8], level: i32) -> Result<(Vec<u8>, u32)> {
    let mut out =
        Vec::with_capacity(FRAME_HEADER_BYTES + crate::codec::zstd::compress_bound(piece.len()));
    out.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
    let written =
        crate::codec::zstd::compress_like_gateway(piece, level, out.spare_capacity_mut())?;
    // SAFETY: the encoder initialised `written` bytes after the header.
    unsafe { out.set_len(FRAME_HEADER_BYTES + written) };
    let header = FrameHeader {
        codec: CodecKind::CpuZstd,
        original_size: piece.len() as u64,
        compressed_size: written as u64,
        crc32c: crc32c(piece),
    };
    out[..FRAME_HEADER_BYTES].copy_from_slice(&header.to_bytes());
    Ok((out, header.crc32c))
}

/// Every frame of a chunked zstd object, as tasks on up to `threads`
/// threads; with `md5`, its MD5 is one more (task 0: the longest, so it
/// starts first).
fn encode_chunked(
    data: &[u8],
    level: i32,
    threads: usize,
    md5: Option<&OnceLock<String>>,
) -> Result<Body> {
    let chunk = pick_chunk_size(data.len() as u64) as usize;
    let pieces: Vec<&[u8]> = data.chunks(chunk).collect();
    let first = usize::from(md5.is_some());
    let frames = threads::try_map_indexed(first + pieces.len(), threads, |i| {
        match i.checked_sub(first) {
            Some(piece) => gateway_frame(pieces[piece], level).map(Some),
            None => {
                md5.map(|md5| md5.set(md5_hex(data)));
                Ok(None)
            }
        }
    })?;
    let frames: Vec<(Vec<u8>, u32)> = frames.into_iter().flatten().collect();
    let mut entries = Vec::with_capacity(frames.len());
    let (mut original_offset, mut compressed_offset, mut crc) = (0u64, 0u64, 0u32);
    for ((frame, piece_crc), piece) in frames.iter().zip(&pieces) {
        crc = crate::codec::crc::combine(crc, *piece_crc, piece.len() as u64);
        entries.push(IndexEntry {
            original_offset,
            original_size: piece.len() as u64,
            compressed_offset,
            compressed_size: frame.len() as u64,
        });
        original_offset += piece.len() as u64;
        compressed_offset += frame.len() as u64;
    }
    let body = frames
        .into_iter()
        .map(|(frame, _)| frame)
        .collect::<Vec<_>>()
        .concat();
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
    Ok((CodecKind::CpuZstd, body, sidecar, crc))
}

/// The frames of a body, parsed and sized, ready to decode: the one body
/// planner behind whole objects, ranges and `"s4"` column cells.
pub struct FramesPlan<'a> {
    frames: PlannedFrames<'a>,
    total: usize,
    exact: bool,
}

/// Most bodies hold one frame (every column cell does): that one is kept
/// inline, so planning a cell allocates nothing.
enum PlannedFrames<'a> {
    One(PlannedFrame<'a>),
    Many(Vec<PlannedFrame<'a>>),
}

impl<'a> std::ops::Deref for PlannedFrames<'a> {
    type Target = [PlannedFrame<'a>];

    fn deref(&self) -> &Self::Target {
        match self {
            PlannedFrames::One(frame) => std::slice::from_ref(frame),
            PlannedFrames::Many(frames) => frames,
        }
    }
}

/// One data frame: where it is, its header, payload, decoder and the most
/// output it may produce (its claim, unless the payload cannot back that much).
struct PlannedFrame<'a> {
    /// Its index among the body's data frames.
    index: usize,
    /// Where its header starts in the stored body.
    stored_offset: u64,
    /// Where its output starts in the object.
    original_offset: u64,
    header: FrameHeader,
    payload: &'a [u8],
    codec: Codec,
    cap: usize,
}

impl<'a> PlannedFrame<'a> {
    fn new(
        index: usize,
        stored_offset: u64,
        original_offset: u64,
        header: FrameHeader,
        payload: &'a [u8],
        dict: Option<&Arc<ZstdDictionary>>,
    ) -> Result<Self> {
        let mut frame = PlannedFrame {
            index,
            stored_offset,
            original_offset,
            header,
            payload,
            codec: Codec::Passthrough,
            cap: 0,
        };
        let sized = frame::decoder_for(header.codec, dict).and_then(|codec| {
            let cap = codec.output_capacity(payload.len(), header.original_size)?;
            Ok((codec, cap))
        });
        (frame.codec, frame.cap) = sized.map_err(|err| frame.context(err))?;
        Ok(frame)
    }

    fn decode_into(&self, dst: &mut [MaybeUninit<u8>]) -> Result<()> {
        let header = &self.header;
        self.codec
            .decompress_into(self.payload, header.original_size, header.crc32c, dst)
            .map_err(|err| self.context(err))
    }

    fn decode_append(&self, out: &mut Vec<u8>) -> Result<()> {
        let header = &self.header;
        self.codec
            .decompress_append(self.payload, header.original_size, header.crc32c, out)
            .map_err(|err| self.context(err))
    }

    /// `err`, saying which frame and which bytes it concerns.
    fn context(&self, err: Error) -> Error {
        let stored_end = self.stored_offset + (FRAME_HEADER_BYTES + self.payload.len()) as u64;
        let original_end = self
            .original_offset
            .saturating_add(self.header.original_size);
        err.at(crate::error::Context::Frame {
            index: self.index,
            stored: (self.stored_offset, stored_end),
            original: (self.original_offset, original_end),
        })
    }
}

impl<'a> FramesPlan<'a> {
    /// The plan of `frames`, whose claims the caller checked against a
    /// limit (so their capacities, never above the claims, sum without overflow).
    fn from_frames(frames: Vec<PlannedFrame<'a>>) -> Self {
        Self::from_planned(PlannedFrames::Many(frames))
    }

    fn from_planned(frames: PlannedFrames<'a>) -> Self {
        FramesPlan {
            total: frames.iter().map(|f| f.cap).sum(),
            exact: frames
                .iter()
                .all(|f| f.cap as u64 == f.header.original_size),
            frames,
        }
    }
}

impl FramesPlan<'_> {
    /// Parses every header and checks the total claim against the
    /// metadata's size, if given, and `limit` before anything else is
    /// computed or allocated; then the metadata's CRC, if given.
    pub fn new<'a>(
        body: &'a [u8],
        metadata: Option<&HashMap<String, String>>,
        dict: Option<&Arc<ZstdDictionary>>,
        limit: u64,
    ) -> Result<FramesPlan<'a>> {
        // First the claims alone (headers parse in nanoseconds; nothing is
        // allocated), so the size and limit checks come before anything else.
        let mut claimed = 0u64;
        let mut frames = frame::frames(body);
        for index in 0.. {
            let at = body.len() - frames.remaining().len();
            let Some(frame) = frames.next() else { break };
            let (header, _) =
                frame.map_err(|err| err.at(crate::error::Context::FrameHeader { index, at }))?;
            claimed = claimed.saturating_add(header.original_size);
        }
        let checks = MetadataChecks::new(metadata);
        checks.check_size(claimed)?;
        check_limit(claimed, limit)?;
        let mut planned = PlannedFrames::Many(Vec::new());
        let (mut frames, mut original_offset) = (frame::frames(body), 0u64);
        for index in 0.. {
            let Some(frame) = frames.next() else { break };
            let (header, payload) = frame?;
            let stored_offset = body.len() - frames.remaining().len() - payload.len();
            let stored_offset = (stored_offset - FRAME_HEADER_BYTES) as u64;
            let frame =
                PlannedFrame::new(index, stored_offset, original_offset, header, payload, dict)?;
            original_offset += header.original_size;
            planned = match planned {
                PlannedFrames::Many(v) if v.is_empty() && frames.remaining().is_empty() => {
                    PlannedFrames::One(frame)
                }
                PlannedFrames::Many(mut v) => {
                    v.push(frame);
                    PlannedFrames::Many(v)
                }
                PlannedFrames::One(first) => PlannedFrames::Many(vec![first, frame]),
            };
        }
        let plan = FramesPlan::from_planned(planned);
        checks.check_crc(
            plan.frames
                .iter()
                .map(|f| (f.header.crc32c, f.header.original_size)),
        )?;
        Ok(plan)
    }

    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }

    /// The output length if every frame keeps its claim.
    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Whether every claim is backed by its payload (else decoding fails)
    /// and the whole output may be reserved before decoding (see
    /// `RESULT_RESERVE_MAX`): then `decode_into` may write it into one buffer
    /// of `len()` bytes.
    pub fn fits_ahead(&self) -> bool {
        self.exact && self.total <= RESULT_RESERVE_MAX
    }

    /// Whether `decode_into` may write exactly `len` bytes: every claim is
    /// backed by its payload and they add up to `len`.
    pub fn fills(&self, len: usize) -> bool {
        self.exact && self.total == len
    }

    /// Decodes every frame into `dst` (`len()` bytes, only when
    /// `fits_ahead()`), frames in parallel, each checked for size and CRC32C.
    pub fn decode_into(&self, dst: &mut [MaybeUninit<u8>], threads: usize) -> Result<()> {
        decode_frames_into(&self.frames, dst, threads)
    }

    /// Decodes every frame onto `out`, in waves: each wave's frames decode in
    /// parallel straight into their place, and a wave reserves at most
    /// `RESERVE_AHEAD_MAX` or as much as is already decoded, so claims are
    /// trusted only as far as real output backs them.
    /// On error `out` is left as it was.
    pub fn decode_append(&self, out: &mut Vec<u8>, threads: usize) -> Result<()> {
        let start = out.len();
        let result = self.decode_waves(out, threads);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn decode_waves(&self, out: &mut Vec<u8>, threads: usize) -> Result<()> {
        let start = out.len();
        let mut rest = &self.frames[..];
        while let Some(first) = rest.first() {
            let budget = (out.len() - start).max(RESERVE_AHEAD_MAX);
            if first.cap > budget {
                // One frame claims more than is backed yet: let it grow.
                first.decode_append(out)?;
                rest = &rest[1..];
                continue;
            }
            let mut wave = 0;
            let mut count = 0;
            for f in rest {
                if wave + f.cap > budget {
                    break;
                }
                wave += f.cap;
                count += 1;
            }
            try_reserve(out, wave)?;
            let at = out.len();
            decode_frames_into(
                &rest[..count],
                &mut out.spare_capacity_mut()[..wave],
                threads,
            )?;
            // SAFETY: every frame of the wave filled its slot completely
            // (each was checked to produce exactly its claim, its `cap`).
            unsafe { out.set_len(at + wave) };
            rest = &rest[count..];
        }
        Ok(())
    }

    pub fn decode(&self, threads: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.decode_append(&mut out, threads)?;
        Ok(out)
    }
}

/// Decodes `frames` in parallel into consecutive slots of `dst`, one `cap`
/// each. Succeeds only if every frame filled its slot exactly.
fn decode_frames_into(
    frames: &[PlannedFrame<'_>],
    dst: &mut [MaybeUninit<u8>],
    threads: usize,
) -> Result<()> {
    if let [frame] = frames {
        return frame.decode_into(dst);
    }
    let slots = threads::Slots::new(dst, frames.iter().map(|f| f.cap));
    threads::try_map_indexed(frames.len(), threads, |i| {
        // SAFETY: `try_map_indexed` runs each index once.
        // Success means exactly the claim came out, and the claim is `cap`.
        frames[i].decode_into(unsafe { slots.part(i) })
    })
    .map(drop)
}

/// Whether the GET decision reads `body` as frames: metadata says framed or
/// multipart, or, with no metadata at all, the body starts with a frame magic.
/// How the gateway's GET serves an object (FORMAT.md §8.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// S4F2 frames (single PUT or multipart), each decoded by its own header.
    Framed,
    /// One bare payload described by the metadata manifest.
    Whole,
    /// Not S4-managed: served as stored.
    Plain,
}

/// The GET decision from the metadata alone; `head` (the body's first bytes,
/// may be empty) decides only when there is no metadata at all, as for
/// stores that keep none.
pub fn layout(metadata: Option<&HashMap<String, String>>, head: &[u8]) -> Layout {
    if is_framed(head, metadata) {
        Layout::Framed
    } else if metadata.and_then(manifest_of).is_some() {
        Layout::Whole
    } else {
        Layout::Plain
    }
}

/// The original size of a framed object whose metadata says it is one frame
/// and so has no sidecar (FORMAT.md §8.4, §9.3): a single PUT of at most one
/// chunk, or a dictionary object. Multipart objects never are, and without a
/// numeric `s4-original-size` the frames themselves must tell.
pub fn single_frame_size(metadata: &HashMap<String, String>) -> Option<u64> {
    let size = parsed::<u64>(metadata, KEY_ORIGINAL_SIZE)?;
    let one_frame = metadata.contains_key(KEY_DICT_ID) || size <= pick_chunk_size(size);
    (one_frame && !is_true(metadata, KEY_MULTIPART)).then_some(size)
}

/// Whether an object of `kind` can be told from plain bytes by its body
/// alone, as in a store that keeps no user metadata (local files): framed
/// `cpu-zstd` bodies start with the frame magic, and a passthrough body is
/// the original. A gzip body looks like a `.gz` file, and a dictionary
/// object needs its `s4-dict-id`.
pub fn readable_without_metadata(kind: CodecKind) -> bool {
    matches!(kind, CodecKind::CpuZstd | CodecKind::Passthrough)
}

/// What a reader opening an object needs first: the GET decision, with a
/// one-frame framed object read whole, and the original size where the
/// metadata alone tells it (`None`: the stored size for plain objects, the
/// sidecar or the frames for framed ones).
pub fn open_layout(
    metadata: Option<&HashMap<String, String>>,
    head: &[u8],
) -> (Layout, Option<u64>) {
    match (layout(metadata, head), metadata) {
        (Layout::Whole, Some(metadata)) => (Layout::Whole, manifest_of(metadata).map(|m| m.1)),
        (Layout::Framed, Some(metadata)) => match single_frame_size(metadata) {
            Some(size) => (Layout::Whole, Some(size)),
            None => (Layout::Framed, None),
        },
        (layout, _) => (layout, None),
    }
}

/// The checks a framed object's metadata adds to its frames' own, for a
/// reader that assembles it from pieces: the size it declares, and its CRC
/// against the frames' CRCs combined.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetadataChecks {
    size: Option<u64>,
    crc32c: Option<u32>,
}

impl MetadataChecks {
    pub fn new(metadata: Option<&HashMap<String, String>>) -> Self {
        MetadataChecks {
            size: metadata.and_then(|m| parsed(m, KEY_ORIGINAL_SIZE)),
            crc32c: metadata.and_then(|m| parsed(m, KEY_CRC32C)),
        }
    }

    /// The declared size against what the frames hold.
    pub fn check_size(&self, frames_hold: u64) -> Result<()> {
        match self.size {
            Some(expected) if expected != frames_hold => Err(Error::SizeMismatch {
                expected,
                got: frames_hold,
            }),
            _ => Ok(()),
        }
    }

    /// The declared CRC against the CRC of every frame, in order, combined.
    pub fn check_crc(&self, frames: impl IntoIterator<Item = (u32, u64)>) -> Result<()> {
        let Some(expected) = self.crc32c else {
            return Ok(());
        };
        let got = frames.into_iter().fold(0, |crc, (frame_crc, len)| {
            crate::codec::crc::combine(crc, frame_crc, len)
        });
        match got == expected {
            true => Ok(()),
            false => Err(Error::CrcMismatch { expected, got }),
        }
    }
}

pub fn is_framed(body: &[u8], metadata: Option<&HashMap<String, String>>) -> bool {
    match metadata {
        Some(metadata) => is_true(metadata, KEY_FRAMED) || is_true(metadata, KEY_MULTIPART),
        None => body.starts_with(&FRAME_MAGIC) || body.starts_with(&PADDING_MAGIC),
    }
}

fn parsed<T: std::str::FromStr>(metadata: &HashMap<String, String>, key: &str) -> Option<T> {
    metadata.get(key).and_then(|v| v.parse().ok())
}

fn is_true(metadata: &HashMap<String, String>, key: &str) -> bool {
    metadata.get(key).is_some_and(|v| v == "true")
}

/// The four manifest keys of §8.5 (codec, original size, stored size, CRC),
/// when all are present and parse.
fn manifest_of(metadata: &HashMap<String, String>) -> Option<(CodecKind, u64, u64, u32)> {
    Some((
        CodecKind::from_name(metadata.get(KEY_CODEC)?)?,
        parsed(metadata, KEY_ORIGINAL_SIZE)?,
        parsed(metadata, KEY_COMPRESSED_SIZE)?,
        parsed(metadata, KEY_CRC32C)?,
    ))
}

/// How the GET decision reads a body.
pub enum Get<'a> {
    /// S4F2 frames, planned.
    Framed(FramesPlan<'a>),
    /// One bare payload described by the metadata manifest.
    Manifest {
        codec: Codec,
        original_size: u64,
        crc32c: u32,
    },
    /// Not S4-managed: the body is the object.
    Passthrough,
}

impl<'a> Get<'a> {
    /// The gateway's GET decision (§8.5), with every claim checked against
    /// `limit` before anything is allocated. With no metadata at all, a body
    /// that starts with an S4F2/S4P1 magic is read as frames and anything
    /// else is returned unchanged; with metadata, it alone decides.
    pub fn decide(
        body: &'a [u8],
        metadata: Option<&HashMap<String, String>>,
        dict: Option<&Arc<ZstdDictionary>>,
        limit: u64,
    ) -> Result<Self> {
        let manifest = match layout(metadata, body) {
            Layout::Framed => {
                return Ok(Get::Framed(FramesPlan::new(body, metadata, dict, limit)?));
            }
            Layout::Whole => metadata.and_then(manifest_of),
            Layout::Plain => None,
        };
        let Some((kind, original_size, compressed_size, crc32c)) = manifest else {
            check_limit(body.len() as u64, limit)?;
            return Ok(Get::Passthrough);
        };
        check_limit(original_size, limit)?;
        if compressed_size != body.len() as u64 {
            return Err(Error::ManifestSizeMismatch {
                manifest: compressed_size,
                actual: body.len() as u64,
            });
        }
        Ok(Get::Manifest {
            codec: frame::decoder_for(kind, dict)?,
            original_size,
            crc32c,
        })
    }

    /// Decodes the object onto `out`.
    pub fn decode_append(&self, body: &[u8], out: &mut Vec<u8>, threads: usize) -> Result<()> {
        match self {
            Get::Framed(plan) => plan.decode_append(out, threads),
            Get::Manifest {
                codec,
                original_size,
                crc32c,
            } => codec.decompress_append(body, *original_size, *crc32c, out),
            Get::Passthrough => {
                try_reserve(out, body.len())?;
                out.extend_from_slice(body);
                Ok(())
            }
        }
    }
}

/// Decodes a stored body as the gateway's GET would (see [`Get::decide`]),
/// refusing objects of more than `limit` bytes.
pub fn decode(
    body: &[u8],
    metadata: Option<&HashMap<String, String>>,
    dict: Option<&Arc<ZstdDictionary>>,
    limit: u64,
    threads: usize,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    Get::decide(body, metadata, dict, limit)?.decode_append(body, &mut out, threads)?;
    Ok(out)
}

/// Decodes original bytes `[start, end)` of a framed object from the frames
/// its sidecar names. `fetched` holds the stored body from byte
/// `body_offset` on, or the whole body when `body_offset` is `None` (then
/// every entry is checked against the body's frames). Every frame used is
/// checked against its entry (position, stored size, original size) before
/// it is decoded, so a stale or lying sidecar is refused, never served.
#[allow(clippy::too_many_arguments)]
pub fn decode_range(
    fetched: &[u8],
    body_offset: Option<u64>,
    sidecar: &FrameIndex,
    start: u64,
    end: u64,
    dict: Option<&Arc<ZstdDictionary>>,
    limit: u64,
    threads: usize,
) -> Result<Vec<u8>> {
    if body_offset.is_none() {
        sidecar.check_source(Some(fetched.len() as u64), None)?;
        sidecar.check_body(fetched)?;
    }
    let body_offset = body_offset.unwrap_or(0);
    let span = sidecar.covering(start, end)?;
    let entries = &sidecar.entries[span.clone()];
    let claimed = entries
        .iter()
        .fold(0u64, |sum, e| sum.saturating_add(e.original_size));
    check_limit(claimed, limit)?;
    let frames = span
        .map(|k| planned_entry(sidecar, k, fetched, body_offset, dict))
        .collect::<Result<Vec<_>>>()?;
    let mut decoded = FramesPlan::from_frames(frames).decode(threads)?;
    let skip = (start - entries.first().map_or(start, |e| e.original_offset)) as usize;
    let want = (end - start) as usize;
    decoded.truncate(skip + want);
    decoded.drain(..skip);
    Ok(decoded)
}

/// Decodes sidecar entry `k` from `fetched` (the stored body from byte
/// `body_offset` on), checked against its entry like [`decode_range`], and
/// writes the part of its output inside original bytes `[start, end)` to
/// `dst`, which is exactly that part's place in a range's result. A frame
/// wholly inside the range decodes straight into `dst`. Returns the
/// frame's CRC32C (of its whole output, which was checked against it).
#[allow(clippy::too_many_arguments)]
pub fn decode_entry_into(
    sidecar: &FrameIndex,
    k: usize,
    fetched: &[u8],
    body_offset: u64,
    start: u64,
    end: u64,
    dict: Option<&Arc<ZstdDictionary>>,
    dst: &mut [MaybeUninit<u8>],
) -> Result<u32> {
    let frame = planned_entry(sidecar, k, fetched, body_offset, dict)?;
    let (first, crc) = (frame.original_offset, frame.header.crc32c);
    let skip = start.saturating_sub(first) as usize;
    let whole = skip == 0 && end >= first + frame.header.original_size;
    if whole && frame.cap == dst.len() {
        return frame.decode_into(dst).map(|()| crc);
    }
    let mut out = Vec::new();
    frame.decode_append(&mut out)?;
    let part = out.get(skip..skip + dst.len()).ok_or_else(|| {
        Error::Index(format!(
            "sidecar entry {k} does not cover its share of the range"
        ))
    })?;
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`; `part` fills `dst`.
    unsafe { std::ptr::copy_nonoverlapping(part.as_ptr(), dst.as_mut_ptr().cast(), part.len()) };
    Ok(crc)
}

/// The part of sidecar entry `k`'s output that falls in original bytes
/// `[start, end)`, as offsets into that range's result.
pub fn entry_share(sidecar: &FrameIndex, k: usize, start: u64, end: u64) -> Range<usize> {
    let entry = &sidecar.entries[k];
    let lo = start.max(entry.original_offset);
    let hi = end.min(entry.original_offset + entry.original_size);
    (lo - start) as usize..(hi - start) as usize
}

/// Sidecar entry `k`'s frame in `fetched` (stored bytes from `body_offset`),
/// checked against the entry, ready to decode.
fn planned_entry<'a>(
    sidecar: &FrameIndex,
    k: usize,
    fetched: &'a [u8],
    body_offset: u64,
    dict: Option<&Arc<ZstdDictionary>>,
) -> Result<PlannedFrame<'a>> {
    let entry = &sidecar.entries[k];
    let (header, payload) = sidecar.frame_at(k, fetched, body_offset)?;
    let (stored, original) = (entry.compressed_offset, entry.original_offset);
    PlannedFrame::new(k, stored, original, header, payload, dict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_DECOMPRESSED_BYTES;

    fn text(len: usize) -> Vec<u8> {
        (0..len / 20 + 1)
            .flat_map(|i| format!("line {i:>8} of text\n").into_bytes())
            .take(len)
            .collect()
    }

    #[test]
    fn parts_are_one_frame_padded_like_the_gateway() {
        let small = encode_part(b"abc", &Codec::zstd(3)).unwrap();
        assert_eq!(frame::frames(&small).count(), 1);
        let data = text(PART_PAD_MIN);
        let part = encode_part(&data, &Codec::zstd(3)).unwrap();
        assert!(part.len() >= PART_PAD_MIN && part.len() < PART_PAD_MIN + 12);
        let frames: Vec<_> = frame::frames(&part).collect::<Result<_>>().unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0.crc32c, crc32c(&data));
        // Concatenated parts are a multipart body the GET decision decodes.
        let body = [part.clone(), small].concat();
        let metadata = HashMap::from([(KEY_MULTIPART.to_owned(), "true".to_owned())]);
        let out = decode(&body, Some(&metadata), None, u64::MAX, 2).unwrap();
        assert_eq!(out, [&data[..], b"abc"].concat());
    }

    #[test]
    fn single_puts_carry_the_logical_etag_and_one_crc() {
        let data = text(9 << 20);
        let encoded = encode(&data, &Codec::zstd(1), 2).unwrap();
        let meta: HashMap<_, _> = encoded.metadata.into_iter().collect();
        assert_eq!(meta[KEY_CRC32C], crc32c(&data).to_string());
        assert_eq!(meta[KEY_LOGICAL_ETAG], md5_hex(&data));
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn large_objects_decode_in_waves_and_respect_the_limit() {
        let data = text(70 << 20); // 5 frames of 16 MiB and a short one
        let encoded = encode(&data, &Codec::zstd(1), 2).unwrap();
        for threads in [1, 2] {
            let decoded = decode(&encoded.body, None, None, MAX_DECOMPRESSED_BYTES, threads);
            assert!(decoded.unwrap() == data);
        }
        let limited = decode(&encoded.body, None, None, data.len() as u64 - 1, 2);
        assert!(matches!(
            limited,
            Err(Error::ManifestSizeExceedsLimit { .. })
        ));
    }

    #[test]
    fn a_body_of_lying_frames_fails_without_reserving_its_claims() {
        // 20 000 frames of 100 garbage bytes, each claiming 100 * 32768 bytes:
        // 65 GB claimed in 2.5 MB of body.
        let mut body = Vec::new();
        for _ in 0..20_000 {
            let header = FrameHeader {
                codec: CodecKind::CpuZstd,
                original_size: 100 * 32_768,
                compressed_size: 100,
                crc32c: 0,
            };
            body.extend_from_slice(&header.to_bytes());
            body.extend_from_slice(&[0x42; 100]);
        }
        let err = decode(&body, None, None, MAX_DECOMPRESSED_BYTES, 2).unwrap_err();
        assert!(
            matches!(err, Error::ManifestSizeExceedsLimit { .. }),
            "{err}"
        );
        // Under the limit, the first frame's decode error comes back.
        let few = &body[..(FRAME_HEADER_BYTES + 100) * 1000];
        let err = decode(few, None, None, MAX_DECOMPRESSED_BYTES, 2).unwrap_err();
        assert!(matches!(err.root(), Error::Io(_)), "{err}");
        assert!(
            err.to_string()
                .starts_with("frame 0 (stored bytes [0, 128)"),
            "{err}"
        );
    }

    #[test]
    fn ranges_come_from_fetched_bytes_or_the_whole_body() {
        let data = text(9 << 20);
        let encoded = encode(&data, &Codec::zstd(1), 2).unwrap();
        let index = FrameIndex::decode(encoded.sidecar.as_ref().unwrap()).unwrap();
        for (start, end) in [
            (0, 1),
            (5, 4 << 20),
            ((4 << 20) - 3, (8 << 20) + 7),
            (0, 9 << 20),
        ] {
            let (first, last, _) = index.plan_range(start, end).unwrap();
            let fetched = &encoded.body[first as usize..last as usize];
            let limit = MAX_DECOMPRESSED_BYTES;
            let got = decode_range(fetched, Some(first), &index, start, end, None, limit, 2);
            assert!(got.unwrap() == data[start as usize..end as usize]);
            let whole = decode_range(&encoded.body, None, &index, start, end, None, limit, 1);
            assert!(whole.unwrap() == data[start as usize..end as usize]);
            if first > 0 {
                // Fetched bytes passed off as the whole body are refused.
                assert!(decode_range(fetched, None, &index, start, end, None, limit, 1).is_err());
            }
        }
    }
}
