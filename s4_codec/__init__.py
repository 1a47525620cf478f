"""zstd, gzip and CRC32C in the byte format of the S4 storage gateway.

The codecs run in Rust with the GIL released; see README.md for the API.
Column operations live in ``s4_codec.arrow`` and, with polars installed, in
the ``pl.col(...).s4`` namespace (registered on import) and ``s4_codec.polars``.
"""

from importlib.util import find_spec

from s4_codec._internal import (
    FRAME_HEADER_BYTES,
    FRAME_MAGIC,
    PADDING_MAGIC,
    SIDECAR_SUFFIX,
    CpuGzip,
    CpuZstd,
    CpuZstdDict,
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
    bind_index,
    crc32c,
    decode_index,
    decode_s4_object,
    encode_index,
    encode_s4_object,
    frame_iter,
    gpu_available,
    pick_chunk_size,
    plan_range,
    read_frame,
    train_dictionary,
)

__all__ = [
    "FRAME_HEADER_BYTES",
    "FRAME_MAGIC",
    "PADDING_MAGIC",
    "SIDECAR_SUFFIX",
    "CpuGzip",
    "CpuZstd",
    "CpuZstdDict",
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
    "bind_index",
    "crc32c",
    "decode_index",
    "decode_s4_object",
    "encode_index",
    "encode_s4_object",
    "frame_iter",
    "gpu_available",
    "pick_chunk_size",
    "plan_range",
    "read_frame",
    "train_dictionary",
]

if find_spec("polars") is not None:
    # Registers the `s4` expression namespace.
    from s4_codec.polars import col

    __all__ += ["col"]
