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

from collections.abc import Callable, Iterable, Sequence
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any, Protocol, overload

from s4_codec import _internal
from s4_codec._options import Codec, Format, OnError

if find_spec("pyarrow") is None:  # results are pyarrow arrays
    raise ImportError("s4_codec.arrow needs pyarrow: pip install 's4-codec[arrow]'")

if TYPE_CHECKING:
    import pyarrow as pa

    from s4_codec._options import Buffer

__all__ = [
    "ArrowArrayExportable",
    "ArrowStreamExportable",
    "compress",
    "compress_table",
    "crc32c",
    "decompress",
    "decompress_table",
    "frame_info",
    "register_compute_functions",
]


class ArrowArrayExportable(Protocol):
    """One array through the Arrow PyCapsule interface: a pyarrow Array, an
    arro3 or nanoarrow array. Results are a ``pa.Array``."""

    def __arrow_c_array__(
        self, requested_schema: object | None = None
    ) -> tuple[object, object]: ...


class ArrowStreamExportable(Protocol):
    """A stream of arrays through the Arrow PyCapsule interface: a pyarrow
    ChunkedArray, a polars Series, an arro3 ChunkedArray. Results are a
    ``pa.ChunkedArray`` with one chunk per input chunk."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...


# An object with both methods is read as one array, as the kernels do.
@overload
def compress(
    values: ArrowArrayExportable,
    *,
    codec: Codec = "zstd",
    level: int | None = None,
    format: Format = "s4",
    threads: int | None = None,
    dictionary: Buffer | None = None,
) -> pa.Array: ...
@overload
def compress(
    values: ArrowStreamExportable,
    *,
    codec: Codec = "zstd",
    level: int | None = None,
    format: Format = "s4",
    threads: int | None = None,
    dictionary: Buffer | None = None,
) -> pa.ChunkedArray: ...
def compress(
    values: ArrowArrayExportable | ArrowStreamExportable,
    *,
    codec: Codec = "zstd",
    level: int | None = None,
    format: Format = "s4",
    threads: int | None = None,
    dictionary: Buffer | None = None,
) -> pa.Array | pa.ChunkedArray:
    """Compresses every value. Nulls stay null.

    binary/large_binary/binary_view input keeps its layout; string input gives
    the binary type of the same layout. ``level`` defaults to 3 (zstd) or 6
    (gzip); zstd levels are clamped to 1..=22. ``threads`` defaults to all cores.
    ``dictionary`` (zstd only; e.g. from :func:`s4_codec.train_dictionary`)
    compresses against it: ``"s4"`` cells then carry codec ``cpu-zstd-dict``.
    """
    return _internal.arrow_compress(values, codec, level, format, threads, dictionary)


@overload
def decompress(
    values: ArrowArrayExportable,
    *,
    codec: Codec | None = None,
    format: Format = "s4",
    max_output_size: int | None = None,
    on_error: OnError = "raise",
    as_string: bool = False,
    threads: int | None = None,
    dictionary: Buffer | None = None,
) -> pa.Array: ...
@overload
def decompress(
    values: ArrowStreamExportable,
    *,
    codec: Codec | None = None,
    format: Format = "s4",
    max_output_size: int | None = None,
    on_error: OnError = "raise",
    as_string: bool = False,
    threads: int | None = None,
    dictionary: Buffer | None = None,
) -> pa.ChunkedArray: ...
def decompress(
    values: ArrowArrayExportable | ArrowStreamExportable,
    *,
    codec: Codec | None = None,
    format: Format = "s4",
    max_output_size: int | None = None,
    on_error: OnError = "raise",
    as_string: bool = False,
    threads: int | None = None,
    dictionary: Buffer | None = None,
) -> pa.Array | pa.ChunkedArray:
    """Decompresses every value. Nulls stay null.

    A corrupt cell raises the S4 exception of its fault with its row index in
    the message (``on_error="raise"``) or becomes null (``on_error="null"``).
    ``max_output_size`` bounds each cell (default 5 GiB): a cell claiming more
    raises ``S4ManifestSizeExceedsLimitError`` before anything is allocated.
    ``as_string=True`` returns UTF-8 strings, validated. ``dictionary`` is
    needed for cells compressed with one.
    """
    return _internal.arrow_decompress(
        values, codec, format, max_output_size, on_error, bool(as_string), threads, dictionary
    )


@overload
def crc32c(values: ArrowArrayExportable, *, threads: int | None = None) -> pa.UInt32Array: ...
@overload
def crc32c(values: ArrowStreamExportable, *, threads: int | None = None) -> pa.ChunkedArray: ...
def crc32c(
    values: ArrowArrayExportable | ArrowStreamExportable, *, threads: int | None = None
) -> pa.UInt32Array | pa.ChunkedArray:
    """CRC32C of every value as a uint32 array (null for null)."""
    return _internal.arrow_crc32c(values, threads)


@overload
def frame_info(values: ArrowArrayExportable, *, on_error: OnError = "raise") -> pa.StructArray: ...
@overload
def frame_info(
    values: ArrowStreamExportable, *, on_error: OnError = "raise"
) -> pa.ChunkedArray: ...
def frame_info(
    values: ArrowArrayExportable | ArrowStreamExportable, *, on_error: OnError = "raise"
) -> pa.StructArray | pa.ChunkedArray:
    """Reads the S4F2 headers of every ``"s4"`` cell without decompressing.

    Returns a struct array ``{codec: string, original_size: uint64,
    compressed_size: uint64, crc32c: uint32}``; ``codec`` is a FORMAT.md name
    such as ``"cpu-zstd"`` (``"mixed"`` for bodies whose frames differ), the
    sizes are totals over the cell's frames (payload bytes, headers excluded)
    and ``crc32c`` covers the whole original value.
    """
    return _internal.arrow_frame_info(values, on_error)


def _column_names(columns: str | Sequence[str]) -> list[str]:
    names = [columns] if isinstance(columns, str) else list(columns)
    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"columns must be a column name or a list of names, got {columns!r}")
    return names


def _replace_columns(data: Any, names: list[str], transform: Callable[[Any], Any]) -> Any:
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
    data: pa.Table | pa.RecordBatch | Iterable[pa.RecordBatch],
    columns: str | Sequence[str],
    *,
    codec: Codec = "zstd",
    level: int | None = None,
    format: Format = "s4",
    threads: int | None = None,
    dictionary: Buffer | None = None,
) -> Any:
    """Compresses the named columns of a Table or RecordBatch and keeps the rest,
    with the options of :func:`compress`.

    Returns the same kind of object: Table, RecordBatch, or an iterator of
    RecordBatches for an iterable input, so
    ``df.mapInArrow(lambda it: compress_table(it, ["blob"]), schema)`` works.
    Arguments are checked here, before the first batch is read.
    """
    names = _column_names(columns)
    _internal.check_compress_args(codec, level, format, dictionary, threads)

    def transform(column: Any) -> Any:
        return _internal.arrow_compress(column, codec, level, format, threads, dictionary)

    return _replace_columns(data, names, transform)


def decompress_table(
    data: pa.Table | pa.RecordBatch | Iterable[pa.RecordBatch],
    columns: str | Sequence[str],
    *,
    codec: Codec | None = None,
    format: Format = "s4",
    max_output_size: int | None = None,
    on_error: OnError = "raise",
    as_string: bool = False,
    threads: int | None = None,
    dictionary: Buffer | None = None,
) -> Any:
    """Decompresses the named columns of a Table, RecordBatch or batch iterator,
    with the options of :func:`decompress`."""
    names = _column_names(columns)
    _internal.check_decompress_args(codec, format, dictionary, max_output_size, on_error, threads)

    def transform(column: Any) -> Any:
        return _internal.arrow_decompress(
            column, codec, format, max_output_size, on_error, bool(as_string), threads, dictionary
        )

    return _replace_columns(data, names, transform)


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
