//! `.s4index` sidecars (FORMAT.md §9): the map from original byte ranges to
//! frames in a stored body, for range reads.

use crate::error::{Error, Result};
use crate::s4::frame::{self, FrameHeader};

pub const INDEX_MAGIC: [u8; 4] = *b"S4IX";
pub const SIDECAR_SUFFIX: &str = ".s4index";
pub const MAX_FRAMES: u64 = 16_777_216;
pub const MAX_ETAG_BYTES: usize = 4096;
const FIXED_HEADER: usize = 32;
const ENTRY_BYTES: usize = 32;
const SSE_BYTES: usize = 30;

/// One frame: where its original bytes sit and where the frame is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub original_offset: u64,
    pub original_size: u64,
    pub compressed_offset: u64,
    /// The whole frame: 28-byte header plus payload.
    pub compressed_size: u64,
}

/// The SSE binding of a v3 sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseBinding {
    pub enc_chunk_size: u32,
    pub enc_chunk_count: u32,
    pub enc_key_id: u16,
    pub enc_salt: [u8; 8],
    pub enc_plaintext_len: u64,
    pub enc_header_bytes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FrameIndex {
    pub total_padded_size: u64,
    pub source_compressed_size: Option<u64>,
    pub source_etag: Option<String>,
    pub sse: Option<SseBinding>,
    pub entries: Vec<IndexEntry>,
}

fn index_err(msg: String) -> Error {
    Error::Index(msg)
}

/// Reads little-endian fields off a byte slice, failing with TooShort.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let remaining = self.data.len() - self.pos;
        if remaining < n {
            return Err(index_err(format!(
                "index too short: {remaining} bytes left, need {n}"
            )));
        }
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
}

/// The entry rules of FORMAT.md §9.2 (6–7): no `offset + size` overflows
/// u64, and entries never go backwards (gaps are allowed).
fn check_entries(entries: &[IndexEntry]) -> Result<()> {
    let mut prev: Option<&IndexEntry> = None;
    for (i, entry) in entries.iter().enumerate() {
        let overflow = entry
            .original_offset
            .checked_add(entry.original_size)
            .is_none()
            || entry
                .compressed_offset
                .checked_add(entry.compressed_size)
                .is_none();
        if overflow {
            return Err(index_err(format!("frame index entry {i} overflows u64")));
        }
        if let Some(prev) = prev {
            if entry.original_offset < prev.original_offset + prev.original_size
                || entry.compressed_offset < prev.compressed_offset + prev.compressed_size
            {
                return Err(index_err(format!(
                    "frame index entries {} and {i} are not in increasing order",
                    i - 1
                )));
            }
        }
        prev = Some(entry);
    }
    Ok(())
}

impl FrameIndex {
    /// End of the last entry: the original object's size (FORMAT.md §9.2.8).
    pub fn total_original_size(&self) -> u64 {
        self.entries
            .last()
            .map_or(0, |e| e.original_offset + e.original_size)
    }

    /// Refuses a sidecar that leaves original bytes to no frame: a reader of
    /// the whole object needs every byte of `[0, total)` in some entry
    /// (§9.2 lets a sidecar have gaps; the gateway never writes one), and
    /// every entry's stored bytes to hold at least a frame header.
    pub fn check_contiguous(&self) -> Result<()> {
        let mut covered = 0;
        for (k, entry) in self.entries.iter().enumerate() {
            if entry.original_offset != covered {
                return Err(index_err(format!(
                    "sidecar entries do not add up to the object: original bytes [{covered}, {}) \
                     before frame {k} are in no frame",
                    entry.original_offset
                )));
            }
            if entry.compressed_size < crate::s4::frame::FRAME_HEADER_BYTES as u64 {
                return Err(index_err(format!(
                    "sidecar entry {k} says frame {k} is {} stored bytes, less than a frame \
                     header",
                    entry.compressed_size
                )));
            }
            covered += entry.original_size;
        }
        Ok(())
    }

    /// Parses a sidecar of any version, enforcing every §9.2 rule.
    pub fn decode(data: &[u8]) -> Result<Self> {
        if data.len() < FIXED_HEADER {
            return Err(index_err(format!(
                "index too short: {} bytes, need at least {FIXED_HEADER}",
                data.len()
            )));
        }
        if data[..4] != INDEX_MAGIC {
            return Err(index_err(format!(
                "bad index magic: {:?}, expected {:?}",
                &data[..4],
                INDEX_MAGIC
            )));
        }
        let mut r = Reader { data, pos: 4 };
        let version = r.u32()?;
        let count = r.u64()?;
        let _total_original = r.u64()?;
        let total_padded_size = r.u64()?;
        if count > MAX_FRAMES {
            return Err(index_err(format!(
                "frame index entry count {count} exceeds the limit {MAX_FRAMES}"
            )));
        }
        let mut index = FrameIndex {
            total_padded_size,
            ..Default::default()
        };
        match version {
            1 => {}
            2 | 3 => {
                let source_size = r.u64()?;
                let etag_len = r.u32()? as usize;
                if etag_len > MAX_ETAG_BYTES {
                    return Err(index_err(format!(
                        "sidecar etag_len {etag_len} exceeds {MAX_ETAG_BYTES}"
                    )));
                }
                let etag = r.take(etag_len)?;
                index.source_compressed_size = (source_size != 0).then_some(source_size);
                index.source_etag = std::str::from_utf8(etag)
                    .ok()
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned);
                if version == 3 {
                    let sse = SseBinding {
                        enc_chunk_size: r.u32()?,
                        enc_chunk_count: r.u32()?,
                        enc_key_id: r.u16()?,
                        enc_salt: r.take(8)?.try_into().expect("8 bytes"),
                        enc_plaintext_len: r.u64()?,
                        enc_header_bytes: r.u32()?,
                    };
                    index.sse =
                        (sse.enc_chunk_size != 0 && sse.enc_chunk_count != 0).then_some(sse);
                }
            }
            other => return Err(index_err(format!("unsupported index version {other}"))),
        }
        let table = &data[r.pos..];
        if table.len() as u64 != count * ENTRY_BYTES as u64 {
            return Err(index_err(format!(
                "entry count {count} does not match the {} bytes of entries",
                table.len()
            )));
        }
        // The table's length was checked against the count: this allocation is
        // backed by input bytes.
        index.entries.reserve_exact(count as usize);
        let mut r = Reader {
            data: table,
            pos: 0,
        };
        for _ in 0..count {
            index.entries.push(IndexEntry {
                original_offset: r.u64()?,
                original_size: r.u64()?,
                compressed_offset: r.u64()?,
                compressed_size: r.u64()?,
            });
        }
        check_entries(&index.entries)?;
        Ok(index)
    }

    /// Writes the sidecar: v2, or v3 when an SSE binding is present. Entries
    /// a reader would refuse are refused here.
    pub fn encode(&self) -> Result<Vec<u8>> {
        check_entries(&self.entries)?;
        let etag = self.source_etag.as_deref().unwrap_or("");
        if etag.len() > MAX_ETAG_BYTES {
            return Err(index_err(format!(
                "sidecar etag of {} bytes exceeds {MAX_ETAG_BYTES}: readers would refuse it",
                etag.len()
            )));
        }
        let mut out = Vec::with_capacity(
            FIXED_HEADER + 12 + etag.len() + SSE_BYTES + ENTRY_BYTES * self.entries.len(),
        );
        out.extend_from_slice(&INDEX_MAGIC);
        out.extend_from_slice(&(if self.sse.is_some() { 3u32 } else { 2 }).to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.total_original_size().to_le_bytes());
        out.extend_from_slice(&self.total_padded_size.to_le_bytes());
        out.extend_from_slice(&self.source_compressed_size.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&(etag.len() as u32).to_le_bytes());
        out.extend_from_slice(etag.as_bytes());
        if let Some(sse) = &self.sse {
            out.extend_from_slice(&sse.enc_chunk_size.to_le_bytes());
            out.extend_from_slice(&sse.enc_chunk_count.to_le_bytes());
            out.extend_from_slice(&sse.enc_key_id.to_le_bytes());
            out.extend_from_slice(&sse.enc_salt);
            out.extend_from_slice(&sse.enc_plaintext_len.to_le_bytes());
            out.extend_from_slice(&sse.enc_header_bytes.to_le_bytes());
        }
        for e in &self.entries {
            for field in [
                e.original_offset,
                e.original_size,
                e.compressed_offset,
                e.compressed_size,
            ] {
                out.extend_from_slice(&field.to_le_bytes());
            }
        }
        Ok(out)
    }

    /// Re-encodes `sidecar` bound to a stored object: both binding fields are
    /// replaced (0 / "" / `None` mean absent).
    pub fn bind(
        sidecar: &[u8],
        source_compressed_size: u64,
        source_etag: Option<&str>,
    ) -> Result<Vec<u8>> {
        let mut index = FrameIndex::decode(sidecar)?;
        index.set_binding(Some(source_compressed_size), source_etag);
        index.encode()
    }

    /// Binds this index to a stored body, replacing both binding fields;
    /// 0, "" and `None` mean absent (the format's sentinels).
    pub fn set_binding(&mut self, source_compressed_size: Option<u64>, source_etag: Option<&str>) {
        self.source_compressed_size = source_compressed_size.filter(|&size| size != 0);
        self.source_etag = source_etag.filter(|e| !e.is_empty()).map(str::to_owned);
    }

    /// Entries covering original bytes `[start, end)`, as an index range.
    /// The range must lie inside the object and must not touch a gap
    /// between entries (FORMAT.md §9.2 allows gaps; no frame holds them).
    pub fn covering(&self, start: u64, end: u64) -> Result<std::ops::Range<usize>> {
        let total = self.total_original_size();
        if start > end || end > total {
            return Err(index_err(format!(
                "range [{start}, {end}) is outside the object's {total} bytes"
            )));
        }
        if start == end {
            return Ok(0..0);
        }
        let containing = |offset: u64| {
            self.entries
                .partition_point(|e| e.original_offset + e.original_size <= offset)
        };
        let span = containing(start)..containing(end - 1) + 1;
        let mut covered = start;
        for k in span.clone() {
            let entry = &self.entries[k];
            if entry.original_offset > covered {
                return Err(index_err(format!(
                    "range [{start}, {end}) touches the gap [{covered}, {}) before frame {k}, \
                     which no frame holds",
                    entry.original_offset
                )));
            }
            covered = entry.original_offset + entry.original_size;
        }
        Ok(span)
    }

    /// Frame `k` of the stored body, parsed from `fetched` (the body's bytes
    /// from `body_offset` on) and checked against entry `k`: it must sit at
    /// the entry's offset, span its stored size, and hold its original size.
    pub fn frame_at<'a>(
        &self,
        k: usize,
        fetched: &'a [u8],
        body_offset: u64,
    ) -> Result<(FrameHeader, &'a [u8])> {
        let entry = &self.entries[k];
        let (from, to) = (
            entry.compressed_offset,
            entry.compressed_offset + entry.compressed_size,
        );
        let bytes = from
            .checked_sub(body_offset)
            .and_then(|at| {
                let at = usize::try_from(at).ok()?;
                fetched.get(at..at.checked_add(usize::try_from(to - from).ok()?)?)
            })
            .ok_or_else(|| {
                index_err(format!(
                    "frame {k} at stored bytes [{from}, {to}) is not within the {} bytes \
                     given from stored byte {body_offset}",
                    fetched.len()
                ))
            })?;
        let stale = |what: String| {
            index_err(format!(
                "stale sidecar: frame {k} at stored bytes [{from}, {to}): {what}"
            ))
        };
        let (header, payload, rest) =
            frame::read_frame(bytes).map_err(|err| stale(format!("no frame there ({err})")))?;
        if !rest.is_empty() {
            return Err(stale(format!(
                "the frame there is {} bytes long",
                bytes.len() - rest.len()
            )));
        }
        if header.original_size != entry.original_size {
            return Err(stale(format!(
                "the sidecar says {} original bytes, the frame header {}",
                entry.original_size, header.original_size
            )));
        }
        Ok((header, payload))
    }

    /// Checks every entry against the data frames of the whole stored body:
    /// entry `k` must be the `k`-th data frame, at its offset, with its stored
    /// and original sizes (original offsets may leave gaps, FORMAT.md §9.2).
    pub fn check_body(&self, body: &[u8]) -> Result<()> {
        let stale = |what: String| index_err(format!("stale sidecar: {what}"));
        let mut frames = frame::frames(body);
        let mut k = 0;
        while let Some(item) = frames.next() {
            let (header, payload) =
                item.map_err(|err| stale(format!("the body does not parse as frames ({err})")))?;
            let end = (body.len() - frames.remaining().len()) as u64;
            let stored = (frame::FRAME_HEADER_BYTES + payload.len()) as u64;
            let Some(entry) = self.entries.get(k) else {
                return Err(stale(format!(
                    "it lists {} frames, the body has more",
                    self.entries.len()
                )));
            };
            let actual = (end - stored, stored, header.original_size);
            let listed = (
                entry.compressed_offset,
                entry.compressed_size,
                entry.original_size,
            );
            if actual != listed {
                return Err(stale(format!(
                    "frame {k} is at stored bytes [{}, {end}) with {} original bytes; \
                     the sidecar says [{}, {}) with {}",
                    actual.0,
                    actual.2,
                    listed.0,
                    listed.0 + listed.1,
                    listed.2
                )));
            }
            k += 1;
        }
        if k != self.entries.len() {
            return Err(stale(format!(
                "it lists {} frames, the body has {k}",
                self.entries.len()
            )));
        }
        Ok(())
    }

    /// Refuses a sidecar bound to another object than the one at hand: the
    /// stored size and ETag given (quotes ignored) must match what the
    /// sidecar records, where both sides know them, and with the size given
    /// every entry must lie within the stored body.
    pub fn check_source(&self, size: Option<u64>, etag: Option<&str>) -> Result<()> {
        let recorded = [self.source_compressed_size, Some(self.total_padded_size)];
        if let Some(size) = size {
            for bound in recorded.into_iter().flatten().filter(|&b| b != 0) {
                if bound != size {
                    return Err(index_err(format!(
                        "stale sidecar: it describes a stored body of {bound} bytes, \
                         the object has {size}"
                    )));
                }
            }
            let outside = self.entries.iter().enumerate().find(|(_, e)| {
                e.compressed_offset
                    .checked_add(e.compressed_size)
                    .is_none_or(|end| end > size)
            });
            if let Some((k, e)) = outside {
                return Err(index_err(format!(
                    "stale sidecar: frame {k} at stored bytes [{}, +{}) ends past the \
                     object's {size} stored bytes",
                    e.compressed_offset, e.compressed_size
                )));
            }
        }
        let unquote = |e: &str| e.trim_matches('"').to_owned();
        if let (Some(bound), Some(etag)) = (self.source_etag.as_deref(), etag) {
            if unquote(bound) != unquote(etag) {
                return Err(index_err(format!(
                    "stale sidecar: it is bound to ETag {bound:?}, the object has {etag:?}"
                )));
            }
        }
        Ok(())
    }

    /// Which stored bytes to fetch for original bytes `[start, end)`:
    /// `(first_byte, last_byte_exclusive, skip)`, `skip` being how many
    /// decoded bytes precede `start`.
    pub fn plan_range(&self, start: u64, end: u64) -> Result<(u64, u64, u64)> {
        let span = self.covering(start, end)?;
        if span.is_empty() {
            return Ok((0, 0, 0));
        }
        let (first, last) = (self.entries[span.start], self.entries[span.end - 1]);
        Ok((
            first.compressed_offset,
            last.compressed_offset + last.compressed_size,
            start - first.original_offset,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;

    fn entry(original: (u64, u64), compressed: (u64, u64)) -> IndexEntry {
        IndexEntry {
            original_offset: original.0,
            original_size: original.1,
            compressed_offset: compressed.0,
            compressed_size: compressed.1,
        }
    }

    /// Two passthrough frames of 10 bytes, listed at original [0, 10) and
    /// [20, 30): a gap the sidecar format allows.
    fn gapped() -> (Vec<u8>, FrameIndex) {
        let mut body = Vec::new();
        frame::encode_frame_append(&Codec::Passthrough, &[b'A'; 10], &mut body).unwrap();
        frame::encode_frame_append(&Codec::Passthrough, &[b'B'; 10], &mut body).unwrap();
        let index = FrameIndex {
            total_padded_size: body.len() as u64,
            entries: vec![entry((0, 10), (0, 38)), entry((20, 10), (38, 38))],
            ..Default::default()
        };
        (body, index)
    }

    #[test]
    fn a_gap_or_a_late_first_entry_is_not_contiguous() {
        let (_, index) = gapped();
        let err = index.check_contiguous().unwrap_err().to_string();
        assert!(
            err.contains("original bytes [10, 20) before frame 1"),
            "{err}"
        );
        let late = FrameIndex {
            entries: vec![entry((5, 10), (0, 38))],
            ..Default::default()
        };
        assert!(late.check_contiguous().is_err());
        let whole = FrameIndex {
            entries: vec![
                entry((0, 10), (0, 38)),
                entry((10, 0), (38, 28)),
                entry((10, 5), (66, 33)),
            ],
            ..Default::default()
        };
        whole.check_contiguous().unwrap();
    }

    #[test]
    fn ranges_that_touch_a_gap_are_refused() {
        let (_, index) = gapped();
        assert_eq!(index.covering(0, 10).unwrap(), 0..1);
        assert_eq!(index.covering(20, 30).unwrap(), 1..2);
        assert_eq!(index.covering(3, 7).unwrap(), 0..1);
        for (start, end) in [(5, 20), (12, 15), (5, 25), (10, 21), (0, 30)] {
            let err = index.covering(start, end).unwrap_err();
            assert!(err.to_string().contains("gap"), "[{start}, {end}): {err}");
        }
    }

    #[test]
    fn frames_are_checked_against_their_entries() {
        let (body, index) = gapped();
        assert!(index.check_body(&body).is_ok());
        assert_eq!(index.frame_at(1, &body, 0).unwrap().1, [b'B'; 10]);
        assert_eq!(index.frame_at(1, &body[38..], 38).unwrap().1, [b'B'; 10]);
        // The fetched bytes must hold the frame where the entry says.
        assert!(index.frame_at(1, &body[38..], 0).is_err());
        assert!(index.frame_at(0, &body[38..], 38).is_err());
        let mut lying = index.clone();
        lying.entries[1].original_size = 9;
        lying.entries[1].original_offset = 21;
        assert!(lying
            .frame_at(1, &body, 0)
            .unwrap_err()
            .to_string()
            .contains("stale"));
        assert!(lying.check_body(&body).is_err());
        let mut moved = index.clone();
        moved.entries[0].compressed_size = 37;
        assert!(moved.frame_at(0, &body, 0).is_err());
        assert!(moved.check_body(&body).is_err());
        let mut short = index.clone();
        short.entries.pop();
        assert!(short.check_body(&body).is_err());
    }

    #[test]
    fn bindings_are_checked() {
        let (body, mut index) = gapped();
        index.source_compressed_size = Some(body.len() as u64);
        index.source_etag = Some("abc".into());
        assert!(index
            .check_source(Some(body.len() as u64), Some("\"abc\""))
            .is_ok());
        assert!(index.check_source(None, None).is_ok());
        assert!(index.check_source(Some(1), None).is_err());
        assert!(index.check_source(None, Some("abd")).is_err());
    }

    #[test]
    fn unreadable_entries_are_never_written() {
        let overflow = FrameIndex {
            entries: vec![entry((u64::MAX, 2), (0, 1))],
            ..Default::default()
        };
        assert!(matches!(overflow.encode(), Err(Error::Index(_))));
        let backwards = FrameIndex {
            entries: vec![entry((10, 10), (0, 30)), entry((0, 10), (30, 30))],
            ..Default::default()
        };
        assert!(matches!(backwards.encode(), Err(Error::Index(_))));
    }
}
