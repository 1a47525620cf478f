//! The words every door accepts, turned into core settings in one place:
//! codec names and their aliases, levels, cell formats, error policies and
//! thread counts. The scalar classes, objects, Arrow, Polars, Spark, DuckDB
//! and the CLI all go through here, so they accept and refuse the same
//! things with the same messages.
//!
//! Level policy: zstd levels are clamped to 1..=22 as the reference does (0
//! and negative levels mean 1). gzip levels are 0..=9; the reference's
//! `CpuGzip` clamps larger values to 9, and so do `CpuGzip` and
//! `encode_s4_object`, while the column doors (which have no reference to
//! follow) refuse them as likely mistakes.

use std::str::FromStr;
use std::sync::Arc;

use crate::codec::dict::ZstdDictionary;
use crate::codec::{gzip, zstd, Codec, CodecKind};
use crate::error::{Error, Result};

/// How a compressed cell is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellFormat {
    /// A complete S4 object body: S4F2 frame(s), self-describing, checksummed.
    S4,
    /// The bare codec payload (a zstd frame or a gzip member).
    Raw,
}

impl FromStr for CellFormat {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "s4" => Ok(CellFormat::S4),
            "raw" => Ok(CellFormat::Raw),
            other => Err(Error::argument(format!(
                "format must be 's4' or 'raw', got {other:?}"
            ))),
        }
    }
}

/// What a corrupt cell does to the whole call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    Raise,
    Null,
}

impl FromStr for OnError {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "raise" => Ok(OnError::Raise),
            "null" => Ok(OnError::Null),
            other => Err(Error::argument(format!(
                "on_error must be 'raise' or 'null', got {other:?}"
            ))),
        }
    }
}

/// A codec as callers name it: its FORMAT.md name (`cpu-zstd`, ...) or the
/// short alias (`zstd`, `gzip`, `zstd-dict`).
pub fn codec_kind(name: &str) -> Result<CodecKind> {
    match name {
        "zstd" => Ok(CodecKind::CpuZstd),
        "gzip" => Ok(CodecKind::CpuGzip),
        "zstd-dict" => Ok(CodecKind::CpuZstdDict),
        other => CodecKind::from_name(other).ok_or_else(|| unknown_codec(Some(other))),
    }
}

/// The error for a codec name nobody knows; `None` is a missing one (an
/// SQL NULL, a Python None).
pub fn unknown_codec(name: Option<&str>) -> Error {
    let got = name.map_or_else(|| "None".to_owned(), |name| format!("'{name}'"));
    Error::argument(format!(
        "codec must be one of 'zstd', 'gzip', 'zstd-dict', 'passthrough' \
         (or 'cpu-zstd', 'cpu-gzip', 'cpu-zstd-dict'), got {got}"
    ))
}

/// Whether levels out of a codec's range are clamped (the reference's
/// scalar and object API) or refused (the column doors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Levels {
    Clamp,
    Refuse,
}

/// The codec to compress with: `name` at `level` (the codec's default when
/// `None`), with `dictionary` for zstd (which makes it `cpu-zstd-dict`).
pub fn encoder(
    name: &str,
    level: Option<i32>,
    dictionary: Option<Arc<ZstdDictionary>>,
    levels: Levels,
) -> Result<Codec> {
    let kind = codec_kind(name)?;
    let zstd_level = level.unwrap_or(zstd::DEFAULT_LEVEL);
    match (kind, dictionary) {
        (CodecKind::CpuZstd | CodecKind::CpuZstdDict, Some(dict)) => {
            Ok(Codec::zstd_dict(dict, zstd_level))
        }
        (CodecKind::CpuZstd, None) => Ok(Codec::zstd(zstd_level)),
        (CodecKind::CpuZstdDict, None) => {
            Err(Error::argument(format!("codec {name:?} needs dictionary=")))
        }
        (_, Some(_)) => Err(Error::argument("dictionary= needs codec='zstd'")),
        (CodecKind::CpuGzip, None) => {
            let level = level.map_or(Ok(gzip::DEFAULT_LEVEL), |level| gzip_level(level, levels))?;
            Ok(Codec::gzip(level))
        }
        (CodecKind::Passthrough, None) => Ok(Codec::Passthrough),
        (other, None) => Err(Error::Unsupported(format!(
            "codec {other} is written by the S4 gateway, which owns the GPU codec paths; \
             s4-codec writes 'cpu-zstd', 'cpu-gzip', 'cpu-zstd-dict' and 'passthrough'"
        ))),
    }
}

/// The codec `encode_s4_object` writes with. As in the reference, a name it
/// does not write (a GPU codec, another spelling, "") is a job for the
/// gateway rather than a typo: `NotImplementedError`.
pub fn object_encoder(
    name: &str,
    level: i32,
    dictionary: Option<Arc<ZstdDictionary>>,
) -> Result<Codec> {
    object_kind(name)?;
    encoder(name, Some(level), dictionary, Levels::Clamp)
}

/// The kind of object a writer is asked for by `name` (FORMAT name or alias).
pub fn object_kind(name: &str) -> Result<CodecKind> {
    let writable = [
        CodecKind::CpuZstd,
        CodecKind::CpuGzip,
        CodecKind::CpuZstdDict,
        CodecKind::Passthrough,
    ];
    let kind = codec_kind(name).ok().filter(|kind| writable.contains(kind));
    kind.ok_or_else(|| {
        Error::Unsupported(format!(
            "encode_s4_object writes 'cpu-zstd' ('zstd'), 'cpu-gzip' ('gzip'), \
             'cpu-zstd-dict' and 'passthrough'; {name:?} objects are written by the S4 gateway"
        ))
    })
}

fn gzip_level(level: i32, levels: Levels) -> Result<u32> {
    match (u32::try_from(level), levels) {
        (Ok(level), Levels::Clamp) => Ok(level.min(gzip::MAX_LEVEL)),
        (Err(_), Levels::Clamp) => Ok(0),
        (Ok(level), Levels::Refuse) if level <= gzip::MAX_LEVEL => Ok(level),
        _ => Err(Error::argument(format!(
            "gzip level must be in 0..=9, got {level}"
        ))),
    }
}

/// The codec that decodes cells of `format`: S4 cells name their own (the
/// given codec, if any, only supplies the dictionary); raw cells need one.
pub fn decoder(
    format: CellFormat,
    name: Option<&str>,
    dictionary: Option<Arc<ZstdDictionary>>,
) -> Result<Codec> {
    let name =
        match (format, name) {
            (_, Some(name)) => name,
            (CellFormat::S4, None) => "zstd",
            (CellFormat::Raw, None) => return Err(Error::argument(
                "format='raw' needs codec= ('zstd' or 'gzip'): raw cells do not name their codec",
            )),
        };
    match codec_kind(name)? {
        // Decoding never depends on the level.
        CodecKind::CpuGzip => Ok(Codec::gzip(gzip::DEFAULT_LEVEL)),
        _ => encoder(name, None, dictionary, Levels::Clamp),
    }
}

/// A `threads=` argument: at least 1, clamped to the shared pool (the
/// thread policy of `crate::threads`); the whole pool when `None`.
pub fn threads(threads: Option<usize>) -> Result<usize> {
    match threads {
        Some(0) => Err(Error::argument("threads must be at least 1")),
        Some(n) => Ok(crate::threads::clamp(n)),
        None => Ok(crate::threads::max_threads()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_names_agree() {
        for (alias, name) in [("zstd", "cpu-zstd"), ("gzip", "cpu-gzip")] {
            assert_eq!(codec_kind(alias).unwrap(), codec_kind(name).unwrap());
        }
        assert!(matches!(codec_kind("ZSTD"), Err(Error::Argument(_))));
        assert!(matches!(
            encoder("nvcomp-zstd", None, None, Levels::Clamp),
            Err(Error::Unsupported(_))
        ));
    }

    #[test]
    fn one_level_policy() {
        assert_eq!(
            encoder("zstd", Some(99), None, Levels::Refuse),
            Ok(Codec::zstd(22))
        );
        assert_eq!(
            encoder("gzip", Some(12), None, Levels::Clamp),
            Ok(Codec::gzip(9))
        );
        assert!(encoder("gzip", Some(12), None, Levels::Refuse).is_err());
        assert!(encoder("gzip", Some(-1), None, Levels::Refuse).is_err());
        assert!(matches!(
            decoder(CellFormat::Raw, None, None),
            Err(Error::Argument(m)) if m.contains("codec=")
        ));
        assert!(threads(Some(0)).is_err());
    }
}
