"""zstd, gzip and CRC32C in the byte format of the S4 storage gateway.

The codecs run in Rust with the GIL released; see README.md for the API.
"""

from s4_codec._internal import (
    CpuGzip,
    CpuZstd,
    S4BackendError,
    S4CodecMismatchError,
    S4CrcMismatchError,
    S4Error,
    S4FrameError,
    S4IndexError,
    S4IoError,
    S4ManifestSizeExceedsLimitError,
    S4ManifestSizeMismatchError,
    S4SizeMismatchError,
    S4UnregisteredCodecError,
    __version__,
    crc32c,
    gpu_available,
)

__all__ = [
    "CpuGzip",
    "CpuZstd",
    "S4BackendError",
    "S4CodecMismatchError",
    "S4CrcMismatchError",
    "S4Error",
    "S4FrameError",
    "S4IndexError",
    "S4IoError",
    "S4ManifestSizeExceedsLimitError",
    "S4ManifestSizeMismatchError",
    "S4SizeMismatchError",
    "S4UnregisteredCodecError",
    "__version__",
    "crc32c",
    "gpu_available",
]
