"""Checked by mypy in tests/test_arrow.py (with tests/typing/stubs for pyarrow):
the overloads of s4_codec.arrow and the buffer-typed dictionaries."""

from typing import assert_type

import polars as pl
import pyarrow as pa

import s4_codec
import s4_codec.arrow as s4a
from s4_codec.arrow import ArrowArrayExportable, ArrowStreamExportable


class Nano:
    """An array from another library: only the PyCapsule method."""

    def __arrow_c_array__(self, requested_schema: object | None = None) -> tuple[object, object]:
        raise NotImplementedError


class Stream:
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        raise NotImplementedError


arr = pa.array([b"a", b"b"])
chunked = pa.chunked_array([arr])
dictionary = s4_codec.train_dictionary([b"sample"] * 100)

# One array in: a pa.Array out.
assert_type(s4a.compress(arr), pa.Array)
assert_type(s4a.compress(Nano(), codec="cpu-gzip", level=9, threads=2), pa.Array)
assert_type(s4a.decompress(arr, on_error="null", as_string=True, threads=1), pa.Array)
assert_type(s4a.crc32c(arr, threads=2), pa.UInt32Array)
assert_type(s4a.frame_info(arr), pa.StructArray)
# A record batch exports both; the kernels read it as one array.
assert_type(s4a.compress(pa.RecordBatch()), pa.Array)

# A stream (ChunkedArray, polars Series, ...) in: a pa.ChunkedArray out.
assert_type(s4a.compress(chunked), pa.ChunkedArray)
assert_type(s4a.compress(pl.Series([b"x"])), pa.ChunkedArray)
assert_type(s4a.decompress(Stream(), max_output_size=1 << 20), pa.ChunkedArray)
assert_type(s4a.crc32c(chunked), pa.ChunkedArray)
assert_type(s4a.frame_info(chunked, on_error="null"), pa.ChunkedArray)

# The protocols are public, for callers' own signatures.
exportable: ArrowArrayExportable = arr
streamable: ArrowStreamExportable = chunked

# Dictionaries are any buffer.
s4a.compress(arr, dictionary=dictionary)
s4a.compress(arr, codec="zstd-dict", dictionary=memoryview(dictionary))
s4a.decompress(arr, dictionary=bytearray(dictionary))
s4a.compress_table(pa.table({"blob": arr}), "blob", dictionary=memoryview(dictionary))
s4a.decompress_table(pa.table({"blob": arr}), ["blob"], dictionary=dictionary, threads=2)

# Mistakes a type checker catches.
s4a.compress([b"not", b"arrow"])  # type: ignore[call-overload]
s4a.compress(arr, codec="lz4")  # type: ignore[call-overload]
s4a.compress(arr, dictionary="not a buffer")  # type: ignore[call-overload]
s4a.decompress(arr, on_error="skip")  # type: ignore[call-overload]

assert_type(s4_codec.S4_ERRORS, tuple[type[Exception], ...])
