"""Spark helpers: compress and decompress DataFrame columns through Arrow.

``compress_columns`` / ``decompress_columns`` run ``DataFrame.mapInArrow``
with :func:`s4_codec.arrow.compress_table`; the UDF factories return
Arrow-native UDFs (``pyspark.sql.functions.arrow_udf``, Spark ≥ 4.1; a
``pandas_udf`` on older Spark) for ``select`` / ``withColumn``. Whole Arrow
batches go to the Rust kernels; no Python object is made per row (except in
the pandas fallback, where pandas makes them).

The options are those of the Arrow functions, with the same defaults;
``threads`` caps the cores each Spark task's batches are split across (default
all the executor's cores: with several tasks per executor, set it to
``spark.task.cpus``). A ``dictionary`` travels to the executors with the job.
Arguments are checked on the driver, before any job starts.

Importing this module works without pyspark; using it without pyspark raises
``ImportError`` naming the extra: ``pip install 's4-codec[spark]'``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

from s4_codec import _internal
from s4_codec._options import Codec, Format, OnError

if TYPE_CHECKING:
    from s4_codec._options import Buffer

if find_spec("pyspark") is None:  # fail on import, not on first use
    raise ImportError("s4_codec.spark needs pyspark: pip install 's4-codec[spark]'")

__all__ = [
    "compress_columns",
    "compress_udf",
    "crc32c_udf",
    "decompress_columns",
    "decompress_udf",
    "register_data_source",
]


def _pyspark() -> Any:
    try:
        import pyspark.sql.functions as functions
        import pyspark.sql.types as types
    except ImportError as exc:
        raise ImportError("s4_codec.spark needs pyspark: pip install 's4-codec[spark]'") from exc
    return functions, types


def _checked_columns(df: Any, columns: str | Sequence[str]) -> list[str]:
    _, types = _pyspark()
    names = [columns] if isinstance(columns, str) else list(columns)
    if not names:
        raise ValueError("columns must name at least one column")
    fields = {f.name: f for f in df.schema.fields}
    missing = [n for n in names if n not in fields]
    if missing:
        raise ValueError(f"no such column(s): {missing}; the DataFrame has {list(fields)}")
    wrong = [
        f"{n} ({fields[n].dataType.simpleString()})"
        for n in names
        if not isinstance(fields[n].dataType, types.BinaryType | types.StringType)
    ]
    if wrong:
        raise ValueError(f"columns must be binary or string, got {wrong}")
    return names


def _with_types(df: Any, names: list[str], new_type: Any) -> Any:
    _, types = _pyspark()
    return types.StructType(
        [
            types.StructField(f.name, new_type, f.nullable, f.metadata) if f.name in names else f
            for f in df.schema.fields
        ]
    )


def _portable(dictionary: Buffer | None) -> bytes | None:
    """The dictionary as ``bytes``, which pickle to the executors (a memoryview
    or mmap would not)."""
    return None if dictionary is None else bytes(dictionary)


def compress_columns(
    df: Any,
    columns: str | Sequence[str],
    *,
    codec: Codec = "zstd",
    level: int | None = None,
    format: Format = "s4",
    threads: int | None = None,
    dictionary: Buffer | None = None,
) -> Any:
    """Returns ``df`` with the named binary/string columns compressed into
    BinaryType; other columns and the column order are kept."""
    _internal.check_compress_args(codec, level, format, dictionary, threads)
    names = _checked_columns(df, columns)
    _, types = _pyspark()
    schema = _with_types(df, names, types.BinaryType())
    dictionary = _portable(dictionary)

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        from s4_codec.arrow import compress_table

        yield from compress_table(
            batches,
            names,
            codec=codec,
            level=level,
            format=format,
            threads=threads,
            dictionary=dictionary,
        )

    return df.mapInArrow(run, schema)


def decompress_columns(
    df: Any,
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
    """Returns ``df`` with the named columns decompressed: BinaryType, or
    StringType with ``as_string=True``. A corrupt cell fails the job with the
    S4 exception class and row in the Spark error, or becomes null with
    ``on_error="null"``."""
    _internal.check_decompress_args(codec, format, dictionary, max_output_size, on_error, threads)
    names = _checked_columns(df, columns)
    _, types = _pyspark()
    schema = _with_types(df, names, types.StringType() if as_string else types.BinaryType())
    dictionary = _portable(dictionary)

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        from s4_codec.arrow import decompress_table

        yield from decompress_table(
            batches,
            names,
            codec=codec,
            format=format,
            max_output_size=max_output_size,
            on_error=on_error,
            as_string=as_string,
            threads=threads,
            dictionary=dictionary,
        )

    return df.mapInArrow(run, schema)


def _arrow_udf(kernel: Any, return_type: str) -> Any:
    """Wraps ``kernel(pa.Array) -> pa.Array`` as the most Arrow-native UDF
    this Spark offers."""
    import pyarrow as pa

    functions, _ = _pyspark()
    if hasattr(functions, "arrow_udf"):
        # Spark picks the UDF kind from the annotations: Array -> Array.
        kernel.__annotations__ = {"values": pa.Array, "return": pa.Array}
        return functions.arrow_udf(kernel, return_type)

    import pandas as pd

    def via_pandas(values: pd.Series) -> pd.Series:  # Spark < 4.1
        return kernel(pa.Array.from_pandas(values)).to_pandas()

    return functions.pandas_udf(via_pandas, return_type)


def compress_udf(
    *,
    codec: Codec = "zstd",
    level: int | None = None,
    format: Format = "s4",
    threads: int | None = None,
    dictionary: Buffer | None = None,
) -> Any:
    """A UDF compressing a binary or string column into binary."""
    _internal.check_compress_args(codec, level, format, dictionary, threads)
    dictionary = _portable(dictionary)

    def kernel(values: Any) -> Any:
        from s4_codec.arrow import compress

        return compress(
            values,
            codec=codec,
            level=level,
            format=format,
            threads=threads,
            dictionary=dictionary,
        )

    return _arrow_udf(kernel, "binary")


def decompress_udf(
    *,
    codec: Codec | None = None,
    format: Format = "s4",
    max_output_size: int | None = None,
    on_error: OnError = "raise",
    as_string: bool = False,
    threads: int | None = None,
    dictionary: Buffer | None = None,
) -> Any:
    """A UDF decompressing a binary column (into string with ``as_string``)."""
    _internal.check_decompress_args(codec, format, dictionary, max_output_size, on_error, threads)
    dictionary = _portable(dictionary)

    def kernel(values: Any) -> Any:
        from s4_codec.arrow import decompress

        return decompress(
            values,
            codec=codec,
            format=format,
            max_output_size=max_output_size,
            on_error=on_error,
            as_string=as_string,
            threads=threads,
            dictionary=dictionary,
        )

    return _arrow_udf(kernel, "string" if as_string else "binary")


def crc32c_udf(*, threads: int | None = None) -> Any:
    """A UDF giving the CRC32C of every value as a long (Spark has no uint32)."""
    _internal.check_compress_args(threads=threads)

    def kernel(values: Any) -> Any:
        from s4_codec.arrow import crc32c

        return crc32c(values, threads=threads).cast("int64")

    return _arrow_udf(kernel, "long")


def register_data_source(spark: Any) -> None:
    """Registers the ``s4`` data source with `spark` (a SparkSession):
    ``spark.read.format("s4").load("s3://bucket/prefix/")`` reads S4 objects
    as lines (or whole objects with ``option("mode", "objects")``), split by
    frames; ``df.write.format("s4").mode("append").save(...)`` writes them as
    the gateway stores them. Needs the ``io`` extra as well. See the README,
    "Spark: S4 objects in buckets"."""
    if find_spec("obstore") is None:
        raise ImportError("the s4 data source needs the io extra: pip install 's4-codec[spark,io]'")
    from s4_codec._spark_source import S4DataSource

    spark.dataSource.register(S4DataSource)
