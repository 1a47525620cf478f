"""The words the column doors (Arrow, Polars, Spark, DuckDB) accept, as types.

The rules behind them live once, in Rust (``src/spec.rs``): the kernels check
their arguments themselves, and doors that build work to run later (Polars
expressions, Spark jobs and UDFs, DuckDB functions, batch iterators) call
``_internal.check_compress_args`` / ``check_decompress_args`` so a mistake
fails where it is written, with the message the kernel would give.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Literal, TypeAlias

if TYPE_CHECKING:  # dictionaries are typed as buffers (bytes, memoryview, mmap, ...)
    if sys.version_info >= (3, 12):
        from collections.abc import Buffer as Buffer
    else:
        from typing_extensions import Buffer as Buffer

# Short names and their FORMAT.md spellings; "zstd-dict" needs dictionary=.
Codec: TypeAlias = Literal[
    "zstd", "gzip", "zstd-dict", "passthrough", "cpu-zstd", "cpu-gzip", "cpu-zstd-dict"
]
Format: TypeAlias = Literal["s4", "raw"]
OnError: TypeAlias = Literal["raise", "null"]
