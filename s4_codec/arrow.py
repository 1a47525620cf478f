"""Compress, decompress and checksum whole Arrow binary/string columns in Rust.

Every function takes anything exporting the Arrow C Data Interface
(``__arrow_c_array__`` or ``__arrow_c_stream__``): a pyarrow Array or
ChunkedArray, a RecordBatch column, a polars Series, arro3 or nanoarrow arrays.
Input is read in place; results are pyarrow arrays (a ChunkedArray for stream
input). Work runs with the GIL released, split across cores by bytes.

Cell formats (``format=``):

* ``"s4"`` (default): each cell is a complete S4 object body, an S4F2 frame
  with codec id, sizes and CRC32C. Decompression needs no arguments and
  verifies size and CRC32C of every cell; multi-frame bodies and S4P1 padding
  decode too, and an empty body decodes to an empty value.
* ``"raw"``: each cell is the bare payload (a zstd frame with its content size,
  or a gzip member), readable by any zstd/gzip tool. Decompression then needs
  ``codec=``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from s4_codec import _internal
from s4_codec._options import (
    ON_ERROR,
    Codec,
    Format,
    OnError,
    check_choice,
    check_compress_args,
    check_decompress_args,
    check_int,
)

__all__ = [
    "compress",
    "compress_table",
    "crc32c",
    "decompress",
    "decompress_table",
    "frame_info",
    "register_compute_functions",
]


def compress(
    values: Any,
    *,
    codec: Codec = "zstd",
    level: int | None = None,
    format: Format = "s4",
    threads: int | None = None,
    dictionary: bytes | None = None,
) -> Any:
    """Compresses every value. Nulls stay null.

    binary/large_binary/binary_view input keeps its layout; string input gives
    the binary type of the same layout. ``level`` defaults to 3 (zstd) or 6
    (gzip); zstd levels are clamped to 1..=22. ``threads`` defaults to all cores.
    ``dictionary`` (zstd only; e.g. from :func:`s4_codec.train_dictionary`)
    compresses against it: ``"s4"`` cells then carry codec ``cpu-zstd-dict``.
    """
    check_compress_args(codec, level, format, threads)
    if dictionary is not None and codec not in ("zstd", "cpu-zstd"):
        raise ValueError("dictionary= needs codec='zstd'")
    return _internal.arrow_compress(values, codec, level, format, threads, dictionary)


def decompress(
    values: Any,
    *,
    codec: Codec | None = None,
    format: Format = "s4",
    max_output_size: int | None = None,
    on_error: OnError = "raise",
    as_string: bool = False,
    threads: int | None = None,
    dictionary: bytes | None = None,
) -> Any:
    """Decompresses every value. Nulls stay null.

    A corrupt cell raises the S4 exception of its fault with its row index in
    the message (``on_error="raise"``) or becomes null (``on_error="null"``).
    ``max_output_size`` bounds each cell (default 5 GiB): a cell claiming more
    raises ``S4ManifestSizeExceedsLimitError`` before anything is allocated.
    ``as_string=True`` returns UTF-8 strings, validated. ``dictionary`` is
    needed for cells compressed with one.
    """
    check_decompress_args(codec, format, max_output_size, on_error, threads)
    return _internal.arrow_decompress(
        values, codec, format, max_output_size, on_error, bool(as_string), threads, dictionary
    )


def crc32c(values: Any, *, threads: int | None = None) -> Any:
    """CRC32C of every value as a uint32 array (null for null)."""
    check_int("threads", threads, 1)
    return _internal.arrow_crc32c(values, threads)


def frame_info(values: Any, *, on_error: OnError = "raise") -> Any:
    """Reads the S4F2 headers of every ``"s4"`` cell without decompressing.

    Returns a struct array ``{codec: string, original_size: uint64,
    compressed_size: uint64, crc32c: uint32}``; ``codec`` is a FORMAT.md name
    such as ``"cpu-zstd"`` (``"mixed"`` for bodies whose frames differ), the
    sizes are totals over the cell's frames (payload bytes, headers excluded)
    and ``crc32c`` covers the whole original value.
    """
    check_choice("on_error", on_error, ON_ERROR)
    return _internal.arrow_frame_info(values, on_error)


def _column_names(columns: str | Sequence[str]) -> list[str]:
    names = [columns] if isinstance(columns, str) else list(columns)
    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"columns must be a column name or a list of names, got {columns!r}")
    return names


def _replace_columns(data: Any, names: list[str], transform: Any) -> Any:
    import pyarrow as pa

    if not isinstance(data, pa.Table | pa.RecordBatch):
        # An iterator of record batches, as Spark's mapInArrow passes.
        return (_replace_columns(batch, names, transform) for batch in data)
    schema = data.schema
    missing = [n for n in names if schema.get_field_index(n) < 0]
    if missing:
        raise ValueError(f"no such column(s): {missing}; the data has {schema.names}")
    byte_types = (
        pa.types.is_binary,
        pa.types.is_large_binary,
        pa.types.is_binary_view,
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_string_view,
    )
    wrong = [
        f"{n} ({schema.field(n).type})"
        for n in names
        if not any(check(schema.field(n).type) for check in byte_types)
    ]
    if wrong:
        raise ValueError(f"columns must be binary or string, got {wrong}")
    columns = list(data.columns)
    fields = list(schema)
    for name in names:
        index = schema.get_field_index(name)
        columns[index] = transform(columns[index])
        fields[index] = fields[index].with_type(columns[index].type)
    new_schema = pa.schema(fields, metadata=schema.metadata)
    if isinstance(data, pa.Table):
        return pa.Table.from_arrays(columns, schema=new_schema)
    return pa.RecordBatch.from_arrays(columns, schema=new_schema)


def compress_table(
    data: Any,
    columns: str | Sequence[str],
    *,
    codec: Codec = "zstd",
    level: int | None = None,
    format: Format = "s4",
    threads: int | None = None,
) -> Any:
    """Compresses the named columns of a Table or RecordBatch and keeps the rest.

    Returns the same kind of object: Table, RecordBatch, or an iterator of
    RecordBatches for an iterable input.

    Given an iterator of RecordBatches it returns an iterator, so
    ``df.mapInArrow(lambda it: compress_table(it, ["blob"]), schema)`` works.
    """
    names = _column_names(columns)
    check_compress_args(codec, level, format, threads)
    return _replace_columns(
        data,
        names,
        lambda col: _internal.arrow_compress(col, codec, level, format, threads),
    )


def decompress_table(
    data: Any,
    columns: str | Sequence[str],
    *,
    codec: Codec | None = None,
    format: Format = "s4",
    max_output_size: int | None = None,
    on_error: OnError = "raise",
    as_string: bool = False,
    threads: int | None = None,
) -> Any:
    """Decompresses the named columns of a Table, RecordBatch or batch iterator."""
    names = _column_names(columns)
    check_decompress_args(codec, format, max_output_size, on_error, threads)
    return _replace_columns(
        data,
        names,
        lambda col: _internal.arrow_decompress(
            col, codec, format, max_output_size, on_error, bool(as_string), threads
        ),
    )


_COMPUTE_LAYOUTS = (("", "binary"), ("_large", "large_binary"), ("_view", "binary_view"))


def register_compute_functions() -> None:
    """Registers pyarrow compute functions (idempotent).

    For each layout — no suffix for ``binary``, ``_large`` for
    ``large_binary``, ``_view`` for ``binary_view`` (pyarrow allows one
    signature per name and never casts between them):

    * ``s4_compress{suffix}(values, codec: string, level: int64)`` → same type,
      ``"s4"`` cells, e.g. ``pc.call_function("s4_compress", [arr, "zstd", 3])``;
    * ``s4_decompress{suffix}(values)`` → same type, from ``"s4"`` cells;
    * ``s4_crc32c{suffix}(values)`` → uint32.

    They work in ``pyarrow.dataset`` / Acero projections through
    ``pc.Expression._call("s4_decompress", [pc.field("blob")])``.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    def scalar_value(arg: Any) -> Any:
        return arg.as_py() if isinstance(arg, pa.Scalar) else arg

    def udf_compress(ctx: Any, values: Any, codec: Any, level: Any) -> Any:
        codec, level = scalar_value(codec), scalar_value(level)
        return compress(values, codec=codec, level=level)

    def udf_decompress(ctx: Any, values: Any) -> Any:
        return decompress(values)

    def udf_crc32c(ctx: Any, values: Any) -> Any:
        return crc32c(values)

    for suffix, type_name in _COMPUTE_LAYOUTS:
        layout = getattr(pa, type_name)()
        functions = (
            (
                "s4_compress",
                udf_compress,
                {"values": layout, "codec": pa.string(), "level": pa.int64()},
                layout,
                "Compresses every value into an S4 frame with the given codec and level.",
            ),
            (
                "s4_decompress",
                udf_decompress,
                {"values": layout},
                layout,
                "Decompresses S4-framed values, verifying size and CRC32C.",
            ),
            (
                "s4_crc32c",
                udf_crc32c,
                {"values": layout},
                pa.uint32(),
                "CRC32C (Castagnoli) of every value.",
            ),
        )
        for base, func, in_types, out_type, summary in functions:
            name = base + suffix
            try:
                pc.get_function(name)
                continue  # already registered (by an earlier call or import)
            except pa.ArrowKeyError:
                pass
            doc = {"summary": summary, "description": f"s4-codec: {summary} ({type_name})"}
            pc.register_scalar_function(func, name, doc, in_types, out_type)
