//! zstd with an external dictionary (`cpu-zstd-dict`, FORMAT.md §6), and
//! dictionary training.

use std::collections::HashMap;
use std::fmt;
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex};

use zstd_safe::{CDict, DDict};

use crate::codec::zstd::{self, UninitBuf};
use crate::error::{Error, Result};

const STRUCTURED_MAGIC: [u8; 4] = [0x37, 0xA4, 0x30, 0xEC];

/// A dictionary prepared for both directions; compression tables are built
/// once per level and shared by all threads.
pub struct ZstdDictionary {
    bytes: Vec<u8>,
    ddict: DDict<'static>,
    cdicts: Mutex<HashMap<i32, Arc<CDict<'static>>>>,
}

impl fmt::Debug for ZstdDictionary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ZstdDictionary({} bytes, id {:?})",
            self.bytes.len(),
            self.zstd_id()
        )
    }
}

impl PartialEq for ZstdDictionary {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for ZstdDictionary {}

impl ZstdDictionary {
    /// Loads a structured (`zstd --train`) or raw-content dictionary. An
    /// empty one, or a structured one whose tables do not parse, is refused.
    pub fn new(bytes: Vec<u8>) -> Result<Self> {
        if bytes.is_empty() {
            return Err(Error::Backend("zstd dictionary is empty (0 bytes)".into()));
        }
        let len = bytes.len();
        let corrupt = move || {
            Error::Backend(format!(
                "corrupt structured zstd dictionary ({len} bytes): its entropy tables do not load"
            ))
        };
        let ddict = DDict::try_create(&bytes).ok_or_else(corrupt)?;
        let dict = Self {
            ddict,
            cdicts: Mutex::new(HashMap::new()),
            bytes,
        };
        if dict.is_structured() {
            // Building the compression tables is what fails on a bad dictionary.
            dict.cdict(zstd::DEFAULT_LEVEL).map_err(|_| corrupt())?;
        }
        Ok(dict)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The decoding tables, for streaming decoders.
    pub(crate) fn ddict(&self) -> &DDict<'static> {
        &self.ddict
    }

    pub fn is_structured(&self) -> bool {
        self.bytes.starts_with(&STRUCTURED_MAGIC)
    }

    /// The zstd dictionary id carried by frames (structured dictionaries).
    pub fn zstd_id(&self) -> Option<u32> {
        zstd_safe::get_dict_id_from_dict(&self.bytes).map(|id| id.get())
    }

    /// The gateway's content address: first 16 hex digits of SHA-256.
    pub fn s4_dict_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(&self.bytes);
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn cdict(&self, level: i32) -> Result<Arc<CDict<'static>>> {
        let mut cache = self
            .cdicts
            .lock()
            .map_err(|_| Error::Backend("dictionary cache poisoned".into()))?;
        if let Some(cdict) = cache.get(&level) {
            return Ok(cdict.clone());
        }
        let cdict = CDict::try_create(&self.bytes, level)
            .ok_or_else(|| Error::Backend("zstd could not build the dictionary tables".into()))?;
        let cdict = Arc::new(cdict);
        cache.insert(level, cdict.clone());
        Ok(cdict)
    }

    /// One frame with content size, compressed against the dictionary.
    pub fn compress(&self, src: &[u8], level: i32, dst: &mut [MaybeUninit<u8>]) -> Result<usize> {
        let cdict = self.cdict(level)?;
        let mut out = UninitBuf::new(dst);
        zstd::with_cctx(|cctx| cctx.compress_using_cdict(&mut out, src, &cdict))
    }

    /// Decodes into `dst`; `None` when the output does not fit.
    pub fn decompress(&self, src: &[u8], dst: &mut [MaybeUninit<u8>]) -> Result<Option<usize>> {
        if src.is_empty() {
            return Err(Error::io(zstd::INCOMPLETE));
        }
        zstd::check_windows(src)?;
        let mut out = UninitBuf::new(dst);
        zstd::decode_result(zstd::with_dctx(|dctx| {
            dctx.decompress_using_ddict(&mut out, src, &self.ddict)
        }))
    }
}

/// Trains a structured dictionary of at most `size` bytes from samples laid
/// end to end in `samples` with lengths `sizes` (zstd's trainer).
pub fn train(samples: &[u8], sizes: &[usize], size: usize) -> Result<Vec<u8>> {
    if sizes.iter().sum::<usize>() != samples.len() {
        return Err(Error::Backend(
            "sample sizes do not add up to the samples".into(),
        ));
    }
    let mut dict = Vec::new();
    crate::error::try_reserve(&mut dict, size)?;
    zstd_safe::train_from_buffer(&mut dict, samples, sizes).map_err(|code| {
        Error::Backend(format!(
            "zstd could not train a dictionary from {} samples ({} bytes): {}",
            sizes.len(),
            samples.len(),
            zstd_safe::get_error_name(code)
        ))
    })?;
    Ok(dict)
}
