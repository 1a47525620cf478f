//! Fuzz checks for whole S4 objects (`s4_codec::s4::object`): the GET decision,
//! ranged reads through a sidecar, and encode/decode round trips. Kept apart
//! from `checks.rs` (which it builds on) because it targets the object API.

use std::collections::HashMap;
use std::sync::Arc;

use s4_codec::codec::dict::ZstdDictionary;
use s4_codec::s4::frame;
use s4_codec::s4::index::{FrameIndex, IndexEntry};
use s4_codec::s4::object::{
    self, KEY_CODEC, KEY_COMPRESSED_SIZE, KEY_CRC32C, KEY_FRAMED, KEY_MULTIPART, KEY_ORIGINAL_SIZE,
};
use s4_codec::{crc32c, Codec};

use crate::checks::{
    decode_body_ref, decode_bound, decode_frame_ref, dictionary, frame_size, measured, model_frame,
    roundtrip_bound, roundtrip_codec, threads, Bytes, LIMIT,
};

/// Codec names for `s4-codec`: every wire name and one that is not.
const CODEC_NAMES: [&str; 10] = [
    "passthrough",
    "cpu-zstd",
    "nvcomp-zstd",
    "nvcomp-bitcomp",
    "nvcomp-gans",
    "dietgpu-ans",
    "nvcomp-gdeflate",
    "cpu-gzip",
    "cpu-zstd-dict",
    "CPU-ZSTD",
];

fn is_true(metadata: &HashMap<String, String>, key: &str) -> bool {
    metadata.get(key).is_some_and(|v| v == "true")
}

fn parsed<T: std::str::FromStr>(metadata: &HashMap<String, String>, key: &str) -> Option<T> {
    metadata.get(key)?.parse().ok()
}

/// `object_decode`: `flags: u8 | codec: u8 | size: u64 | crc: u32 | csize:
/// i8 | limit: u16 | body`. `flags & 1` passes metadata, made of: `& 2`
/// s4-framed=true, `& 4` s4-multipart=true, `& 8` s4-codec (`codec % 64 %
/// 10` of `CODEC_NAMES`), `& 16` s4-original-size = `size`, `& 32`
/// s4-compressed-size = body length + `csize`, `& 64` s4-crc32c = `crc`;
/// `flags & 128` passes the dictionary; `codec & 128` asks for 2 threads.
/// The limit is `LIMIT`, or `limit - 1` when `limit != 0`. The output must
/// follow the GET decision of FORMAT.md §8.5 and never exceed the limit.
pub fn object_decode(data: &[u8]) {
    let mut b = Bytes(data);
    let (flags, codec) = (b.u8(), b.u8());
    let (size, crc, csize) = (b.u64(), b.u32(), b.u8() as i8);
    let limit = match b.u16() {
        0 => LIMIT,
        small => u64::from(small - 1),
    };
    let body = b.rest();
    let metadata = (flags & 1 != 0).then(|| {
        let mut m = HashMap::new();
        let mut put = |on: u8, key: &str, value: String| {
            if flags & on != 0 {
                m.insert(key.to_owned(), value);
            }
        };
        put(2, KEY_FRAMED, "true".into());
        put(4, KEY_MULTIPART, "true".into());
        put(8, KEY_CODEC, CODEC_NAMES[(codec % 64) as usize % 10].into());
        put(16, KEY_ORIGINAL_SIZE, size.to_string());
        let claimed = body.len() as i64 + i64::from(csize);
        put(32, KEY_COMPRESSED_SIZE, claimed.to_string());
        put(64, KEY_CRC32C, crc.to_string());
        m
    });
    let dict = (flags & 128 != 0).then(dictionary);
    let threads = threads(codec & 0x80 != 0);
    let result = measured("object::decode", decode_bound(data.len()), || {
        object::decode(body, metadata.as_ref(), dict, limit, threads)
    });
    if let Ok(out) = &result {
        let len = out.len();
        assert!(len as u64 <= limit, "{len} bytes is over the limit {limit}");
    }

    let framed = match &metadata {
        Some(m) => is_true(m, KEY_FRAMED) || is_true(m, KEY_MULTIPART),
        None => body.starts_with(b"S4F2") || body.starts_with(b"S4P1"),
    };
    if framed {
        let want = decode_body_ref(body, dict, limit);
        // Metadata that states a size or CRC must match the frames.
        let agrees = |out: &[u8]| {
            metadata.as_ref().is_none_or(|m| {
                parsed::<u64>(m, KEY_ORIGINAL_SIZE).is_none_or(|s| s == out.len() as u64)
                    && parsed::<u32>(m, KEY_CRC32C).is_none_or(|c| c == crc32c(out))
            })
        };
        match (result, want) {
            (Ok(out), Some(want)) => {
                assert!(out == want, "framed output differs from its frames");
                assert!(agrees(&out), "served output the metadata contradicts");
            }
            (Ok(_), None) => panic!("served a framed body whose frames do not decode"),
            (Err(err), Some(want)) => {
                assert!(!agrees(&want), "refused a body that decodes: {err}");
            }
            (Err(_), None) => {}
        }
        return;
    }
    let manifest = metadata.as_ref().and_then(|m| {
        Some((
            s4_codec::CodecKind::from_name(m.get(KEY_CODEC)?)?,
            parsed::<u64>(m, KEY_ORIGINAL_SIZE)?,
            parsed::<u64>(m, KEY_COMPRESSED_SIZE)?,
            parsed::<u32>(m, KEY_CRC32C)?,
        ))
    });
    let Some((kind, size, stored, crc)) = manifest else {
        // Not S4-managed: the body comes back untouched (within the limit).
        if body.len() as u64 <= limit {
            assert!(result.expect("an unmanaged body is served") == body);
        }
        return;
    };
    let want = (stored == body.len() as u64 && size <= limit)
        .then(|| frame::decoder_for(kind, dict).ok())
        .flatten()
        .and_then(|codec| codec.decompress(body, size, crc).ok());
    match (result, want) {
        (Ok(out), Some(want)) => assert!(out == want, "manifest output differs"),
        (Ok(_), None) => panic!("served a payload its manifest does not describe"),
        (Err(err), Some(_)) => panic!("refused a payload its manifest describes: {err}"),
        (Err(_), None) => {}
    }
}

/// A body of `data` cut into `chunk`-byte frames (at most 64; codec `sel + i` for frame
/// `i`, see `roundtrip_codec`), an S4P1 padding frame after each if `pad`,
/// and the sidecar that maps it.
pub fn build_multiframe(
    data: &[u8],
    chunk: usize,
    sel: usize,
    level: u8,
    pad: bool,
) -> (Vec<u8>, FrameIndex) {
    let (mut body, mut entries, mut original) = (Vec::new(), Vec::new(), 0);
    for (i, piece) in data.chunks(frame_size(data, chunk - 1)).enumerate() {
        let at = body.len();
        frame::encode_frame_append(&roundtrip_codec(sel + i, level), piece, &mut body)
            .expect("encode");
        entries.push(IndexEntry {
            original_offset: original,
            original_size: piece.len() as u64,
            compressed_offset: at as u64,
            compressed_size: (body.len() - at) as u64,
        });
        original += piece.len() as u64;
        if pad {
            body.extend_from_slice(b"S4P1\x03\0\0\0\0\0\0\0\0\0\0");
        }
    }
    let index = FrameIndex {
        total_padded_size: body.len() as u64,
        entries,
        ..Default::default()
    };
    (body, index)
}

/// `object_range`: `mode: u8 | start: u64 | end: u64 | ...`; `mode & 0x80`
/// asks for 2 threads.
///
/// * `mode & 1 == 0`, forged: `... | off: u32 | len: u32 | sidecar_len: u16
///   | sidecar | body`. The fetched bytes are `body[off..][..len]` (both
///   wrapped into range) at `body_offset = Some(off)`, or (`mode & 16`) the
///   whole body with `body_offset = None`; the sidecar is the carved
///   bytes, or (`mode & 2`) one built from the body's own frames; `mode & 4`
///   wraps `start`/`end` into the sidecar's size; `mode & 8` passes the
///   dictionary. Whatever comes back must be, byte for byte, what the frames
///   the sidecar names (found at its offsets, inside the fetched bytes, with
///   matching sizes) decode to at the sidecar's original offsets.
/// * `mode & 1 == 1`, valid: `... | chunk: u8 | level: u8 | slack: u8 |
///   data`: `data` in `chunk + 1`-byte frames (`mode & 2`: with padding),
///   read back through several fetch windows; each must equal the slice.
pub fn object_range(data: &[u8]) {
    let mut b = Bytes(data);
    let mode = b.u8();
    let (start, end) = (b.u64(), b.u64());
    let threads = threads(mode & 0x80 != 0);
    if mode & 1 != 0 {
        let (chunk, level, slack) = (b.u8(), b.u8(), b.u8());
        let input = b.rest();
        let (body, index) = build_multiframe(
            input,
            chunk as usize + 1,
            mode as usize,
            level,
            mode & 2 != 0,
        );
        let reread = FrameIndex::decode(&index.encode().unwrap()).unwrap();
        assert_eq!(reread, index);
        let (s, e) = ordered_range(start, end, input.len());
        check_valid_range(
            &body,
            &index,
            input,
            s,
            e,
            slack as u64,
            threads,
            data.len(),
        );
        let past = object::decode_range(
            &body,
            None,
            &index,
            s,
            input.len() as u64 + 1,
            None,
            LIMIT,
            threads,
        );
        assert!(past.is_err(), "a range past the end must fail");
        return;
    }
    let (off, fetch_len, sidecar_len) = (b.u32(), b.u32(), b.u16());
    let carved = b.take(sidecar_len as usize);
    let body = b.rest();
    let index = if mode & 2 != 0 {
        sidecar_of(body)
    } else {
        match FrameIndex::decode(carved) {
            Ok(index) => index,
            Err(_) => return,
        }
    };
    let total = index.total_original_size();
    let wrap = |v: u64| v.checked_rem(total.wrapping_add(1)).unwrap_or(v);
    let (start, end) = if mode & 4 != 0 {
        (wrap(start), wrap(end))
    } else {
        (start, end)
    };
    let (window, body_offset) = if mode & 16 != 0 {
        (0..body.len(), None)
    } else {
        let off = off as usize % (body.len() + 1);
        let fetch_len = fetch_len as usize % (body.len() - off + 1);
        (off..off + fetch_len, Some(off as u64))
    };
    let fetched = &body[window.clone()];
    let dict = (mode & 8 != 0).then(dictionary);
    let result = measured("object::decode_range", decode_bound(data.len()), || {
        object::decode_range(
            fetched,
            body_offset,
            &index,
            start,
            end,
            dict,
            LIMIT,
            threads,
        )
    });
    if let Ok(out) = result {
        check_pieces(
            &out,
            fetched,
            body_offset.unwrap_or(0),
            &index,
            start,
            end,
            dict,
        );
        check_served(&out, body, window, &index, start, end, dict);
    }
}

/// Decoding the range entry by entry (as `RangeDecoder` does with pieces
/// fetched apart) gives what `decode_range` served in one call.
fn check_pieces(
    out: &[u8],
    fetched: &[u8],
    body_offset: u64,
    index: &FrameIndex,
    start: u64,
    end: u64,
    dict: Option<&Arc<ZstdDictionary>>,
) {
    let mut assembled = vec![std::mem::MaybeUninit::<u8>::uninit(); out.len()];
    for k in index.covering(start, end).expect("decode_range covered it") {
        let dst = &mut assembled[object::entry_share(index, k, start, end)];
        object::decode_entry_into(index, k, fetched, body_offset, start, end, dict, dst)
            .expect("a frame decode_range served decodes alone");
    }
    // SAFETY: the covering entries tile `[start, end)` and each filled its part.
    let assembled: Vec<u8> = assembled
        .into_iter()
        .map(|b| unsafe { b.assume_init() })
        .collect();
    assert_eq!(assembled, out, "pieces assemble what decode_range serves");
}

/// The sidecar a writer would build for `body`'s frames (padding skipped),
/// up to the first frame that does not parse.
fn sidecar_of(body: &[u8]) -> FrameIndex {
    let (frames, _) = crate::checks::model_body(body);
    let mut entries = Vec::new();
    let mut original = 0u64;
    for f in frames {
        let Some(next) = original.checked_add(f.original_size) else {
            break;
        };
        entries.push(IndexEntry {
            original_offset: original,
            original_size: f.original_size,
            compressed_offset: f.at as u64,
            compressed_size: (f.payload.end - f.at) as u64,
        });
        original = next;
    }
    FrameIndex {
        total_padded_size: body.len() as u64,
        entries,
        ..Default::default()
    }
}

/// Asserts that `out`, served for `[start, end)`, is what the sidecar's
/// frames hold there.
fn check_served(
    out: &[u8],
    body: &[u8],
    window: std::ops::Range<usize>,
    index: &FrameIndex,
    start: u64,
    end: u64,
    dict: Option<&Arc<ZstdDictionary>>,
) {
    assert!(
        start <= end && end <= index.total_original_size(),
        "served [{start}, {end})"
    );
    assert_eq!(out.len() as u64, end - start, "served the wrong length");
    let mut covered = 0u64;
    for e in &index.entries {
        let (lo, hi) = (
            start.max(e.original_offset),
            end.min(e.original_offset + e.original_size),
        );
        if lo >= hi {
            continue;
        }
        let at = e.compressed_offset as usize;
        let (frame, next) = usize::try_from(e.compressed_offset)
            .ok()
            .and_then(|at| model_frame(body, at))
            .expect("served bytes from an entry whose offset holds no frame");
        assert!(
            window.start <= at && next <= window.end,
            "served a frame at [{at}, {next}) outside the fetched {window:?}"
        );
        assert!(
            (next - at) as u64 <= e.compressed_size,
            "frame longer than its entry"
        );
        assert_eq!(
            frame.original_size, e.original_size,
            "frame and entry sizes differ"
        );
        let bytes = decode_frame_ref(body, &frame, dict)
            .expect("served bytes from a frame that does not decode within the limit");
        let want = &bytes[(lo - e.original_offset) as usize..(hi - e.original_offset) as usize];
        let got = &out[(lo - start) as usize..(hi - start) as usize];
        assert!(got == want, "served other bytes for [{lo}, {hi})");
        covered += hi - lo;
    }
    assert_eq!(covered, end - start, "served bytes no frame holds (a gap)");
}

/// Reads `[s, e)` of a valid body through four fetch windows: the whole
/// body (checked against the sidecar, `None`), the whole body as bytes from
/// 0, exactly the planned bytes, and the planned bytes with `slack` more on
/// each side. Every read must give `input[s..e]`.
#[allow(clippy::too_many_arguments)]
fn check_valid_range(
    body: &[u8],
    index: &FrameIndex,
    input: &[u8],
    s: u64,
    e: u64,
    slack: u64,
    threads: usize,
    input_len: usize,
) {
    let want = &input[s as usize..e as usize];
    let bound = roundtrip_bound(input_len);
    let read = |fetched: &[u8], offset: Option<u64>| {
        measured("object::decode_range", bound, || {
            object::decode_range(fetched, offset, index, s, e, None, LIMIT, threads)
        })
        .unwrap_or_else(|err| panic!("valid range [{s}, {e}) at offset {offset:?}: {err}"))
    };
    assert!(read(body, None) == want, "whole-body read of [{s}, {e})");
    assert!(
        read(body, Some(0)) == want,
        "read of [{s}, {e}) from byte 0"
    );
    let (first, last, _) = index.plan_range(s, e).expect("a valid range plans");
    if s == e {
        return;
    }
    let exact = &body[first as usize..last as usize];
    assert!(
        read(exact, Some(first)) == want,
        "planned read of [{s}, {e})"
    );
    let (lo, hi) = (
        first.saturating_sub(slack),
        (last + slack).min(body.len() as u64),
    );
    let padded = &body[lo as usize..hi as usize];
    assert!(
        read(padded, Some(lo)) == want,
        "read of [{s}, {e}) with slack"
    );
}

/// `object_roundtrip`: `sel: u8 | level: u8 | mode: u8 | start: u64 | end:
/// u64 | data`. `object::encode` with codec `sel % 3` (level `% 10`) must write the
/// metadata of FORMAT.md §8.6 and decode back (and fail under a limit one
/// byte short); then `data` in `mode % 64 + 1`-byte frames (`mode & 64`:
/// padded) must decode whole, with and without metadata, and every range
/// `[start, end)` (wrapped, ordered) must equal the slice.
pub fn object_roundtrip(data: &[u8]) {
    let mut b = Bytes(data);
    let (sel, level, mode) = (b.u8(), b.u8(), b.u8());
    let (start, end) = (b.u64(), b.u64());
    let input = b.rest();
    // The gateway's unknown-size zstd encoder sets up tables for the level's
    // full window on every call (level 22: ~0.5 s and ~700 MB, more under
    // ASan), whatever the input: levels above 9 would stall the fuzzer and
    // exercise nothing else (codec_roundtrip covers every level).
    let level = level % 10;
    let codec = roundtrip_codec(sel as usize, level);
    let threads = threads(mode & 0x80 != 0);
    let bound = roundtrip_bound(data.len());
    let encoded = measured("object::encode", bound, || {
        object::encode(input, &codec, threads)
    })
    .expect("encoding cannot fail");
    let metadata: HashMap<String, String> = encoded
        .metadata
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let is_zstd = matches!(codec, Codec::Zstd { .. });
    assert_eq!(metadata[KEY_CODEC], codec.kind().name());
    assert_eq!(metadata[KEY_ORIGINAL_SIZE], input.len().to_string());
    assert_eq!(
        metadata[KEY_COMPRESSED_SIZE],
        encoded.body.len().to_string()
    );
    assert_eq!(metadata[KEY_CRC32C], crc32c(input).to_string());
    assert_eq!(metadata.contains_key(KEY_FRAMED), is_zstd);
    if is_zstd && input.len() <= 1 << 20 {
        let info = frame::body_info(&encoded.body).expect("an encoded body parses");
        assert_eq!(
            info.frames,
            usize::from(!input.is_empty()),
            "one 1 MiB chunk"
        );
        assert!(encoded.sidecar.is_none(), "no sidecar for one frame");
    }
    if matches!(codec, Codec::Passthrough) {
        assert!(encoded.body == input);
    }
    let out = measured("object::decode", bound, || {
        object::decode(&encoded.body, Some(&metadata), None, LIMIT, threads)
    })
    .expect("an encoded object decodes");
    assert!(out == input, "object round trip changed the bytes");
    if !input.is_empty() {
        let short = input.len() as u64 - 1;
        let capped = object::decode(&encoded.body, Some(&metadata), None, short, threads);
        assert!(
            capped.is_err(),
            "decoded {} bytes under a limit of {short}",
            input.len()
        );
    }

    let chunk = (mode % 64) as usize + 1;
    let (body, index) = build_multiframe(input, chunk, sel as usize, level, mode & 64 != 0);
    let framed: HashMap<String, String> = [
        (KEY_FRAMED, "true".to_owned()),
        (KEY_ORIGINAL_SIZE, input.len().to_string()),
        (KEY_CRC32C, crc32c(input).to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for metadata in [Some(&framed), None] {
        let out = measured("object::decode", bound, || {
            object::decode(&body, metadata, None, LIMIT, threads)
        })
        .expect("a multi-frame body decodes");
        assert!(out == input, "multi-frame round trip changed the bytes");
    }
    let (s, e) = ordered_range(start, end, input.len());
    check_valid_range(
        &body,
        &index,
        input,
        s,
        e,
        mode as u64 % 7,
        threads,
        data.len(),
    );
}

/// A range `[s, e)` within `0..=len` made from two arbitrary fuzz numbers.
fn ordered_range(start: u64, end: u64, len: usize) -> (u64, u64) {
    let len = len as u64;
    let (s, e) = (start % (len + 1), end % (len + 1));
    (s.min(e), s.max(e))
}
