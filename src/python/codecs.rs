//! The codec classes `CpuZstd`, `CpuGzip` and `CpuZstdDict`: one base class
//! holds the codec and implements what they share (compress, decompress,
//! repr, equality, hashing, pickling); each subclass only builds its codec
//! and exposes its settings.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use super::buffers::{dictionary_arg, ByteView};
use super::scalar::{compress_with, decompress_with, Compressed};
use crate::codec::dict::ZstdDictionary;
use crate::codec::Codec;

/// The base of the codec classes; not constructed directly.
#[pyclass(module = "s4_codec", name = "_Codec", subclass, frozen)]
pub struct CodecClass {
    codec: Codec,
}

#[pymethods]
impl CodecClass {
    /// Compresses `data`: `(payload, original_size, crc32c)`.
    fn compress<'py>(&self, py: Python<'py>, data: ByteView<'py>) -> PyResult<Compressed<'py>> {
        compress_with(py, &self.codec, &data)
    }

    /// Decodes a payload described by `(original_size, crc32c)`, checking both.
    fn decompress<'py>(
        &self,
        py: Python<'py>,
        data: ByteView<'py>,
        original_size: u64,
        crc32c: u32,
    ) -> PyResult<Bound<'py, PyBytes>> {
        decompress_with(py, &self.codec, &data, original_size, crc32c)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let name = slf.get_type().name()?;
        Ok(match &slf.get().codec {
            Codec::ZstdDict { dict, level } => {
                format!("{name}(dict_len={}, level={level})", dict.bytes().len())
            }
            Codec::Zstd { level } => format!("{name}(level={level})"),
            Codec::Gzip { level } => format!("{name}(level={level})"),
            Codec::Passthrough => format!("{name}()"),
        })
    }

    /// Codecs are equal when they are the same class with the same settings.
    fn __eq__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> bool {
        other.get_type().is(slf.get_type())
            && other
                .cast::<Self>()
                .is_ok_and(|other| other.get().codec == slf.get().codec)
    }

    fn __hash__(&self) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        match &self.codec {
            Codec::ZstdDict { dict, level } => (dict.s4_dict_id(), level).hash(&mut hasher),
            Codec::Zstd { level } => ("zstd", level).hash(&mut hasher),
            Codec::Gzip { level } => ("gzip", level).hash(&mut hasher),
            Codec::Passthrough => "passthrough".hash(&mut hasher),
        }
        hasher.finish()
    }

    /// Pickles as the class and its constructor arguments.
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let args = match &slf.get().codec {
            Codec::ZstdDict { dict, level } => {
                (PyBytes::new(py, dict.bytes()), *level).into_pyobject(py)?
            }
            Codec::Zstd { level } => (*level,).into_pyobject(py)?,
            Codec::Gzip { level } => (*level,).into_pyobject(py)?,
            Codec::Passthrough => PyTuple::empty(py),
        };
        Ok((slf.get_type().into_any(), args))
    }
}

impl CodecClass {
    fn init(codec: Codec) -> PyClassInitializer<Self> {
        PyClassInitializer::from(CodecClass { codec })
    }

    fn zstd_level(&self) -> i32 {
        match self.codec {
            Codec::Zstd { level } | Codec::ZstdDict { level, .. } => level,
            _ => unreachable!("only zstd classes ask"),
        }
    }

    fn dictionary(&self) -> &Arc<ZstdDictionary> {
        match &self.codec {
            Codec::ZstdDict { dict, .. } => dict,
            _ => unreachable!("only CpuZstdDict asks"),
        }
    }
}

/// zstd (FORMAT.md §4). Levels are clamped to 1..=22 as the reference does.
#[pyclass(module = "s4_codec", extends = CodecClass, frozen)]
pub struct CpuZstd;

#[pymethods]
impl CpuZstd {
    #[new]
    #[pyo3(signature = (level = 3))]
    fn new(level: i32) -> PyClassInitializer<Self> {
        CodecClass::init(Codec::zstd(level)).add_subclass(CpuZstd)
    }

    /// The effective (clamped) compression level.
    #[getter]
    fn level(slf: &Bound<'_, Self>) -> i32 {
        slf.as_super().get().zstd_level()
    }
}

/// gzip (FORMAT.md §5). Levels 0..=9; larger values mean 9.
#[pyclass(module = "s4_codec", extends = CodecClass, frozen)]
pub struct CpuGzip;

#[pymethods]
impl CpuGzip {
    #[new]
    #[pyo3(signature = (level = 6))]
    fn new(level: u32) -> PyClassInitializer<Self> {
        CodecClass::init(Codec::gzip(level)).add_subclass(CpuGzip)
    }

    /// The effective (clamped) compression level.
    #[getter]
    fn level(slf: &Bound<'_, Self>) -> u32 {
        match slf.as_super().get().codec {
            Codec::Gzip { level } => level,
            _ => unreachable!("CpuGzip holds a gzip codec"),
        }
    }
}

/// zstd with a dictionary (FORMAT.md §6): structured (`zstd --train`,
/// `train_dictionary`) or raw content.
#[pyclass(module = "s4_codec", extends = CodecClass, frozen)]
pub struct CpuZstdDict;

#[pymethods]
impl CpuZstdDict {
    #[new]
    #[pyo3(signature = (dict_bytes, level = 3))]
    fn new(dict_bytes: ByteView<'_>, level: i32) -> PyResult<PyClassInitializer<Self>> {
        let dict = dictionary_arg(Some(dict_bytes))?.expect("given");
        Ok(CodecClass::init(Codec::zstd_dict(dict, level)).add_subclass(CpuZstdDict))
    }

    #[getter]
    fn level(slf: &Bound<'_, Self>) -> i32 {
        slf.as_super().get().zstd_level()
    }

    /// The dictionary's bytes.
    #[getter]
    fn dict_bytes<'py>(slf: &Bound<'py, Self>) -> Bound<'py, PyBytes> {
        PyBytes::new(slf.py(), slf.as_super().get().dictionary().bytes())
    }

    /// The zstd dictionary id frames carry (None for raw-content dictionaries).
    #[getter]
    fn dict_id(slf: &Bound<'_, Self>) -> Option<u32> {
        slf.as_super().get().dictionary().zstd_id()
    }

    /// The gateway's `s4-dict-id`: first 16 hex digits of SHA-256.
    #[getter]
    fn s4_dict_id(slf: &Bound<'_, Self>) -> String {
        slf.as_super().get().dictionary().s4_dict_id()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<CodecClass>()?;
    m.add_class::<CpuZstd>()?;
    m.add_class::<CpuGzip>()?;
    m.add_class::<CpuZstdDict>()
}
