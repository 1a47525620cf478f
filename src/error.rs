//! The one error type of the codec core. Each variant maps to one Python
//! exception class (FORMAT.md §10); the mapping lives in `python/errors.rs`.

use std::fmt;

use crate::codec::CodecKind;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Decoded bytes have the claimed length but another CRC32C.
    CrcMismatch { expected: u32, got: u32 },
    /// Decoding produced fewer bytes than the manifest claims.
    SizeMismatch { expected: u64, got: u64 },
    /// A manifest names another codec than the decoder's.
    CodecMismatch { expected: CodecKind, got: CodecKind },
    /// A codec that exists on the wire but has no decoder in this build.
    UnregisteredCodec(CodecKind),
    /// A manifest claims more than `MAX_DECOMPRESSED_BYTES` (or a caller's lower cap).
    ManifestSizeExceedsLimit { requested: u64, limit: u64 },
    /// A manifest's compressed size disagrees with the payload handed over.
    ManifestSizeMismatch { manifest: u64, actual: u64 },
    /// The payload is not a valid stream for its codec (truncated, corrupt, bomb).
    Io(String),
    /// The codec engine refused an operation (e.g. an empty dictionary).
    Backend(String),
    /// An S4F2 / S4P1 frame could not be parsed.
    Frame(String),
    /// A `.s4index` sidecar could not be parsed or written, or disagrees
    /// with the object it describes.
    Index(String),
    /// A legitimate output does not fit in memory.
    OutOfMemory { requested: usize },
    /// `source`, with where it happened (e.g. which frame of an object).
    At { context: String, source: Box<Error> },
}

impl Error {
    pub(crate) fn io(msg: impl Into<String>) -> Self {
        Error::Io(msg.into())
    }

    /// This error, saying where it happened.
    pub fn at(self, context: String) -> Self {
        Error::At {
            context,
            source: Box::new(self),
        }
    }

    /// The error itself, whatever context it was given: what decides its class.
    pub fn root(&self) -> &Error {
        match self {
            Error::At { source, .. } => source.root(),
            other => other,
        }
    }
}

/// Grows `out` by at least `additional` bytes of capacity (amortised, like
/// `Vec::reserve`), failing with `OutOfMemory` instead of aborting.
pub fn try_reserve(out: &mut Vec<u8>, additional: usize) -> Result<()> {
    out.try_reserve(additional).map_err(|_| Error::OutOfMemory {
        requested: additional,
    })
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::CrcMismatch { expected, got } => {
                write!(
                    f,
                    "crc32c mismatch: expected 0x{expected:08x}, got 0x{got:08x}"
                )
            }
            Error::SizeMismatch { expected, got } => {
                write!(f, "size mismatch: expected {expected}, got {got}")
            }
            Error::CodecMismatch { expected, got } => {
                write!(f, "codec mismatch: expected {expected}, got {got}")
            }
            Error::UnregisteredCodec(kind) => write!(
                f,
                "no decoder for codec {kind} here (GPU codecs need the S4 gateway; \
                 cpu-zstd-dict needs its dictionary)"
            ),
            Error::ManifestSizeExceedsLimit { requested, limit } => {
                write!(f, "manifest claims {requested} bytes but limit is {limit}")
            }
            Error::ManifestSizeMismatch { manifest, actual } => write!(
                f,
                "manifest compressed_size {manifest} does not match payload length {actual}"
            ),
            Error::Io(msg) => write!(f, "io: {msg}"),
            Error::Backend(msg) => write!(f, "backend: {msg}"),
            Error::Frame(msg) => write!(f, "frame error: {msg}"),
            Error::Index(msg) => write!(f, "index error: {msg}"),
            Error::At { context, source } => write!(f, "{context}: {source}"),
            Error::OutOfMemory { requested } => {
                write!(f, "cannot allocate {requested} more bytes for the output")
            }
        }
    }
}

impl std::error::Error for Error {}
