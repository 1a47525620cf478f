//! `.s4index` sidecars (FORMAT.md §9): the map from original byte ranges to
//! frames in a stored body, for range reads.

use crate::error::{Error, Result};

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

impl FrameIndex {
    /// End of the last entry: the original object's size (FORMAT.md §9.2.8).
    pub fn total_original_size(&self) -> u64 {
        self.entries
            .last()
            .map_or(0, |e| e.original_offset + e.original_size)
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
        for i in 0..count as usize {
            let entry = IndexEntry {
                original_offset: r.u64()?,
                original_size: r.u64()?,
                compressed_offset: r.u64()?,
                compressed_size: r.u64()?,
            };
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
            if let Some(prev) = index.entries.last() {
                if entry.original_offset < prev.original_offset + prev.original_size
                    || entry.compressed_offset < prev.compressed_offset + prev.compressed_size
                {
                    return Err(index_err(format!(
                        "frame index entries {} and {i} are not in increasing order",
                        i - 1
                    )));
                }
            }
            index.entries.push(entry);
        }
        Ok(index)
    }

    /// Writes the sidecar: v2, or v3 when an SSE binding is present.
    pub fn encode(&self) -> Result<Vec<u8>> {
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
        index.source_compressed_size =
            (source_compressed_size != 0).then_some(source_compressed_size);
        index.source_etag = source_etag.filter(|e| !e.is_empty()).map(str::to_owned);
        index.encode()
    }

    /// Entries covering original bytes `[start, end)`, as an index range.
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
        let first = containing(start);
        let last = containing(end - 1);
        if last >= self.entries.len() || self.entries[first].original_offset > start {
            return Err(index_err(format!(
                "range [{start}, {end}) falls in a gap between frames"
            )));
        }
        Ok(first..last + 1)
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
