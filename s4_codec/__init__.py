"""zstd, gzip and CRC32C in the byte format of the S4 storage gateway.

The codecs run in Rust with the GIL released; see README.md for the API.
Column operations live in ``s4_codec.arrow`` and, with polars installed, in
``s4_codec.polars`` and the ``pl.col(...).s4`` namespace, which importing
``s4_codec.polars`` registers (so does the first call of ``s4_codec.col``).
``import s4_codec`` itself imports neither polars nor pyarrow.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from s4_codec.polars import col as col
else:

    def col(name, *more_names):
        """``s4_codec.polars.col``, which imports polars (and registers
        ``pl.col(...).s4``) on the first call."""
        from s4_codec.polars import col

        return col(name, *more_names)


# The bases of every S4 exception class: `except S4_ERRORS` catches any failure
# to decode (bad bytes, wrong checksum or size, a refused limit, an engine error).
S4_ERRORS: tuple[type[Exception], ...] = (S4Error, S4IoError, S4BackendError)

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
    "S4_ERRORS",
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

if find_spec("polars") is not None:  # finds polars without importing it
    __all__ += ["col"]
