//! The one error type of the core and the one table of the Python exception
//! classes it surfaces as (FORMAT.md §10). The pyo3 door builds the classes
//! from `CLASSES`; the Polars door, which can only pass text, names them from
//! it too.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Decoded bytes have the claimed length but another CRC32C.
    CrcMismatch { expected: u32, got: u32 },
    /// Decoding produced fewer bytes than the manifest claims.
    SizeMismatch { expected: u64, got: u64 },
    /// A manifest names another codec than the decoder's (codec names).
    CodecMismatch {
        expected: &'static str,
        got: &'static str,
    },
    /// A codec that exists on the wire but has no decoder in this build.
    UnregisteredCodec(&'static str),
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
    /// A caller's argument is invalid (a name, a level, a count).
    Argument(String),
    /// A valid request this library does not serve (e.g. writing GPU codecs).
    Unsupported(String),
    /// `source`, with where it happened (e.g. which frame of an object).
    At {
        context: Context,
        source: Box<Error>,
    },
}

/// Where an error happened: data, which the Python door sets as the
/// exception's attributes, and text, which the message puts in front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Context {
    /// A row of a column, counted from the start of the column as given.
    Row(usize),
    /// Frame `index` of an object, at stored (body) bytes `stored` and
    /// original bytes `original`, both `[start, end)`.
    Frame {
        index: usize,
        stored: (u64, u64),
        original: (u64, u64),
    },
    /// Frame `index`, whose header at stored byte `at` did not parse (so its
    /// extent is unknown).
    FrameHeader { index: usize, at: usize },
    /// The object (its key) an error concerns.
    Object(String),
}

/// An error's location gathered from its contexts; `None` where unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Location {
    pub row: Option<usize>,
    pub frame: Option<usize>,
    pub stored: Option<(u64, u64)>,
    pub original: Option<(u64, u64)>,
}

impl Error {
    pub(crate) fn io(msg: impl Into<String>) -> Self {
        Error::Io(msg.into())
    }

    /// This error, saying where it happened.
    pub fn at(self, context: Context) -> Self {
        Error::At {
            context,
            source: Box::new(self),
        }
    }

    pub(crate) fn argument(msg: impl Into<String>) -> Self {
        Error::Argument(msg.into())
    }

    /// The Python class this error surfaces as.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::CrcMismatch { .. } => ErrorClass::CrcMismatch,
            Error::SizeMismatch { .. } => ErrorClass::SizeMismatch,
            Error::CodecMismatch { .. } => ErrorClass::CodecMismatch,
            Error::UnregisteredCodec(_) => ErrorClass::UnregisteredCodec,
            Error::ManifestSizeExceedsLimit { .. } => ErrorClass::ManifestSizeExceedsLimit,
            Error::ManifestSizeMismatch { .. } => ErrorClass::ManifestSizeMismatch,
            Error::Io(_) => ErrorClass::Io,
            Error::Backend(_) => ErrorClass::Backend,
            Error::Frame(_) => ErrorClass::Frame,
            Error::Index(_) => ErrorClass::Index,
            Error::OutOfMemory { .. } => ErrorClass::Memory,
            Error::Argument(_) => ErrorClass::Argument,
            Error::Unsupported(_) => ErrorClass::Unsupported,
            Error::At { source, .. } => source.class(),
        }
    }

    /// Where this error happened, from every context it was given.
    pub fn location(&self) -> Location {
        let mut location = Location::default();
        let mut err = self;
        while let Error::At { context, source } = err {
            match *context {
                Context::Row(row) => location.row = Some(row),
                Context::Frame {
                    index,
                    stored,
                    original,
                } => {
                    location.frame = Some(index);
                    location.stored = Some(stored);
                    location.original = Some(original);
                }
                Context::FrameHeader { index, .. } => location.frame = Some(index),
                Context::Object(_) => {}
            }
            err = source;
        }
        location
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
            Error::Backend(msg) | Error::Frame(msg) | Error::Index(msg) => f.write_str(msg),
            Error::Argument(msg) | Error::Unsupported(msg) => f.write_str(msg),
            Error::At { context, source } => write!(f, "{context}: {source}"),
            Error::OutOfMemory { requested } => {
                write!(f, "cannot allocate {requested} more bytes for the output")
            }
        }
    }
}

impl std::error::Error for Error {}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Context::Row(row) => write!(f, "row {row}"),
            Context::Frame {
                index,
                stored: (stored_start, stored_end),
                original: (original_start, original_end),
            } => write!(
                f,
                "frame {index} (stored bytes [{stored_start}, {stored_end}), \
                 original bytes [{original_start}, {original_end}))"
            ),
            Context::FrameHeader { index, at } => write!(f, "frame {index} at stored byte {at}"),
            Context::Object(key) => f.write_str(key),
        }
    }
}

/// The Python exception classes, in the order of `CLASSES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    S4Error,
    CrcMismatch,
    SizeMismatch,
    CodecMismatch,
    UnregisteredCodec,
    ManifestSizeExceedsLimit,
    ManifestSizeMismatch,
    Frame,
    Index,
    Backend,
    Io,
    Memory,
    Argument,
    Unsupported,
}

/// One Python exception class: its name, the class it derives from (a
/// builtin or an earlier row) and its docstring. Rows whose `parent` is
/// `None` are builtins used as they are.
pub struct ClassSpec {
    pub name: &'static str,
    pub parent: Option<&'static str>,
    pub doc: &'static str,
}

const fn class(name: &'static str, parent: &'static str, doc: &'static str) -> ClassSpec {
    ClassSpec {
        name,
        parent: Some(parent),
        doc,
    }
}

const fn builtin(name: &'static str) -> ClassSpec {
    ClassSpec {
        name,
        parent: None,
        doc: "",
    }
}

/// Indexed by `ErrorClass`; parents come before their children.
pub const CLASSES: [ClassSpec; 14] = [
    class("S4Error", "ValueError", "Base class of S4 format errors."),
    class(
        "S4CrcMismatchError",
        "S4Error",
        "Decoded bytes fail the CRC32C check.",
    ),
    class(
        "S4SizeMismatchError",
        "S4Error",
        "Decoded output is shorter than the manifest claims.",
    ),
    class(
        "S4CodecMismatchError",
        "S4Error",
        "A manifest names another codec than the decoder's.",
    ),
    class(
        "S4UnregisteredCodecError",
        "S4Error",
        "The codec has no decoder in this build.",
    ),
    class(
        "S4ManifestSizeExceedsLimitError",
        "S4Error",
        "A manifest claims more than the size limit.",
    ),
    class(
        "S4ManifestSizeMismatchError",
        "S4Error",
        "A manifest's compressed size disagrees with the payload.",
    ),
    class(
        "S4FrameError",
        "S4Error",
        "An S4F2/S4P1 frame cannot be parsed.",
    ),
    class(
        "S4IndexError",
        "S4Error",
        "A .s4index sidecar cannot be parsed or disagrees with its object.",
    ),
    class(
        "S4BackendError",
        "RuntimeError",
        "The codec engine failed or refused an operation.",
    ),
    class(
        "S4IoError",
        "OSError",
        "The payload is not a valid stream for its codec.",
    ),
    builtin("MemoryError"),
    builtin("ValueError"),
    builtin("NotImplementedError"),
];

impl ErrorClass {
    pub fn spec(self) -> &'static ClassSpec {
        &CLASSES[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_read_as_text_and_as_a_location() {
        let err = Error::CrcMismatch {
            expected: 1,
            got: 2,
        }
        .at(Context::Frame {
            index: 1,
            stored: (679, 1358),
            original: (4194304, 8388608),
        })
        .at(Context::Row(5));
        assert_eq!(
            err.to_string(),
            "row 5: frame 1 (stored bytes [679, 1358), original bytes [4194304, 8388608)): \
             crc32c mismatch: expected 0x00000001, got 0x00000002"
        );
        let location = Location {
            row: Some(5),
            frame: Some(1),
            stored: Some((679, 1358)),
            original: Some((4194304, 8388608)),
        };
        assert_eq!(err.location(), location);
        assert_eq!(err.class(), ErrorClass::CrcMismatch);
        let header = Error::Frame("bad".into()).at(Context::FrameHeader { index: 2, at: 9 });
        assert_eq!(header.to_string(), "frame 2 at stored byte 9: bad");
        assert_eq!(header.location().frame, Some(2));
        assert_eq!(Error::Io("x".into()).location(), Location::default());
    }
}
