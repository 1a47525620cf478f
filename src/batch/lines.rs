//! Text lines as a byte column: decoded object bytes cut at `\n` into the
//! values and offsets of an Arrow string or binary array, for readers that
//! turn line-oriented objects into rows (the Spark data source).

use crate::error::{try_reserve, Error, Result};

/// Lines, end to end without their terminators, and where each ends.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Lines {
    pub values: Vec<u8>,
    /// Arrow offsets into `values`: 0, then the end of every line.
    pub offsets: Vec<usize>,
    /// The unfinished line after the last `\n`, to carry into the next piece.
    pub rest: Vec<u8>,
}

/// Splits `carry` followed by `data` into lines ended by `\n`, dropping a
/// `\r` just before it (so CRLF text reads as LF text). The bytes after the
/// last `\n` are returned as `rest`, or become a last line when `last` is set
/// and they are not empty. Lines are copied once; memory grows with the
/// bytes given, never from a claim.
pub fn split(carry: &[u8], data: &[u8], last: bool) -> Result<Lines> {
    let rows = memchr::memchr_iter(b'\n', data).count();
    let mut out = Lines::default();
    try_reserve(&mut out.values, carry.len() + data.len())?;
    out.offsets
        .try_reserve(rows + 2)
        .map_err(|_| Error::OutOfMemory {
            requested: (rows + 2) * size_of::<usize>(),
        })?;
    out.offsets.push(0);
    let mut start = 0;
    let mut pending = carry;
    for end in memchr::memchr_iter(b'\n', data) {
        out.values.extend_from_slice(pending);
        pending = &[];
        out.values.extend_from_slice(&data[start..end]);
        out.end_line();
        start = end + 1;
    }
    let tail = &data[start..];
    if last {
        if !pending.is_empty() || !tail.is_empty() {
            out.values.extend_from_slice(pending);
            out.values.extend_from_slice(tail);
            out.end_line();
        }
    } else {
        try_reserve(&mut out.rest, pending.len() + tail.len())?;
        out.rest.extend_from_slice(pending);
        out.rest.extend_from_slice(tail);
    }
    Ok(out)
}

impl Lines {
    fn end_line(&mut self) {
        let begin = *self.offsets.last().expect("offsets start with 0");
        if self.values.len() > begin && self.values.last() == Some(&b'\r') {
            self.values.pop();
        }
        self.offsets.push(self.values.len());
    }

    /// The index of the first line that is not UTF-8, if any.
    pub fn first_invalid_utf8(&self) -> Option<usize> {
        let valid_up_to = match std::str::from_utf8(&self.values) {
            Ok(_) => return None,
            Err(err) => err.valid_up_to(),
        };
        // `\n` and `\r` are ASCII: no UTF-8 sequence spans two lines, so the
        // first bad byte lies in the first bad line.
        Some(self.offsets.partition_point(|&end| end <= valid_up_to) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(l: &Lines) -> Vec<&[u8]> {
        l.offsets
            .windows(2)
            .map(|w| &l.values[w[0]..w[1]])
            .collect()
    }

    #[test]
    fn splits_like_text_readers() {
        let got = split(b"", b"a\nbb\r\n\nccc", false).unwrap();
        assert_eq!(lines(&got), [&b"a"[..], b"bb", b""]);
        assert_eq!(got.rest, b"ccc");
        let got = split(b"cc", b"c\r", true).unwrap();
        assert_eq!(lines(&got), [&b"ccc"[..]]);
        assert!(got.rest.is_empty());
        // A CR ending the carry, LF opening the next piece.
        let got = split(b"x\r", b"\ny", false).unwrap();
        assert_eq!(lines(&got), [&b"x"[..]]);
        assert_eq!(got.rest, b"y");
        // No terminator at all: everything carries on.
        let got = split(b"ab", b"cd", false).unwrap();
        assert!(lines(&got).is_empty());
        assert_eq!(got.rest, b"abcd");
        assert!(lines(&split(b"", b"", true).unwrap()).is_empty());
        assert_eq!(lines(&split(b"", b"\n", true).unwrap()), [&b""[..]]);
        assert_eq!(lines(&split(b"", b"\r", true).unwrap()), [&b""[..]]);
    }

    #[test]
    fn matches_a_naive_split_everywhere() {
        let text: Vec<u8> = (0..3000u32)
            .flat_map(|i| match i % 5 {
                0 => b"\r\n".to_vec(),
                1 => b"\n".to_vec(),
                _ => format!("{}", i * 7919 % 1000).into_bytes(),
            })
            .collect();
        let naive: Vec<Vec<u8>> = {
            let trimmed = text.strip_suffix(b"\n").unwrap_or(&text);
            trimmed
                .split(|&b| b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
                .collect()
        };
        for piece in [1, 2, 7, 64, 1000, text.len()] {
            let (mut all, mut carry) = (Vec::new(), Vec::new());
            let chunks: Vec<&[u8]> = text.chunks(piece).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                let got = split(&carry, chunk, i + 1 == chunks.len()).unwrap();
                all.extend(lines(&got).into_iter().map(<[u8]>::to_vec));
                carry = got.rest;
            }
            assert_eq!(all, naive, "pieces of {piece}");
        }
    }

    #[test]
    fn finds_the_first_line_that_is_not_utf8() {
        let got = split(b"", "ok\né\n€\nz\n".as_bytes(), false).unwrap();
        assert_eq!(got.first_invalid_utf8(), None);
        let got = split(b"", b"ok\n\xc3\xa9\nbad\xff\nz\n", false).unwrap();
        assert_eq!(got.first_invalid_utf8(), Some(2));
    }
}
