"""DuckDB door: S4 compression as SQL functions over BLOB and VARCHAR columns.

:func:`register` adds vectorised Arrow UDFs to a DuckDB connection. DuckDB
hands each one whole vectors (about 2 048 rows) as Arrow arrays, which go to
the column kernels of :mod:`s4_codec.arrow`: Rust, GIL released, split across
cores. Cells are byte-identical to ``s4_codec.arrow.compress``'s.

Importing this module works without duckdb; :func:`register` without duckdb
raises ``ImportError`` naming the extra: ``pip install 's4-codec[duckdb]'``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any, NamedTuple

from s4_codec import _internal, arrow
from s4_codec._options import Format, OnError

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

    from s4_codec._options import Buffer

if find_spec("duckdb") is None:  # fail on import, not on first use
    raise ImportError("s4_codec.duckdb needs duckdb: pip install 's4-codec[duckdb]'")

__all__ = ["register"]

_FRAME_INFO_TYPE = (
    "STRUCT(codec VARCHAR, original_size UBIGINT, compressed_size UBIGINT, crc32c UINTEGER)"
)

# (extra macro parameters, what the macro passes for them); every overload also
# comes in a BLOB and a VARCHAR flavour of the first parameter.
_COMPRESS_OVERLOADS = [
    ("", "'zstd', NULL"),
    ("codec VARCHAR", "codec, NULL"),
    ("codec VARCHAR, level BIGINT", "codec, level"),
]
_RAW_COMPRESS_OVERLOADS = _COMPRESS_OVERLOADS[1:]
_NO_ARGS = [("", "")]
_CODEC_ARG = [("codec VARCHAR", "codec")]

_FORMATS: tuple[tuple[Format, str], ...] = (("s4", ""), ("raw", "_raw"))
_ON_ERRORS: tuple[tuple[OnError, str], ...] = (("raise", ""), ("null", "try_"))
_ARROW_UDF: dict[str, Any] = {
    # Strings, which every version takes: the enums moved from duckdb.functional
    # (1.4.0) to duckdb.func (1.4.1).
    "type": "arrow",
    # The kernels keep NULL values NULL themselves; a NULL level means the codec's
    # default; try_ functions return NULL for non-NULL input.
    "null_handling": "special",
}


class _Function(NamedTuple):
    name: str  # the SQL macro; the UDF behind it is "__" + name
    udf: Callable[..., Any]
    params: list[str]  # the UDF's parameter types
    returns: str
    operand: str  # the macros' first parameter, BLOB or VARCHAR
    overloads: list[tuple[str, str]]


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError as exc:
        raise ImportError("s4_codec.duckdb needs duckdb: pip install 's4-codec[duckdb]'") from exc
    return duckdb


def _constant(name: str, values: Any) -> Any:
    """The value of an argument meant to be an SQL constant. DuckDB hands it in
    as a column like any other, so a varying one is refused, not misread."""
    distinct = values.unique()
    if len(distinct) != 1:
        shown = ", ".join(repr(v) for v in distinct.to_pylist()[:3])
        raise ValueError(
            f"{name} must be a constant, got {len(distinct)} different values in one batch: "
            f"{shown}{', ...' if len(distinct) > 3 else ''}"
        )
    return distinct[0].as_py()


def _restated(function: str, exc: Exception, values: Any) -> Exception:
    """Names the SQL function in an error, and restates a kernel error's
    ``row N`` as a row of the batch: DuckDB hands a UDF one vector at a time
    and does not say where it lies in the table. The class and the location
    attributes (``row`` is the batch's) are kept."""
    # Builtin classes (a ValueError for bad UTF-8) carry `row` only when located.
    row = getattr(exc, "row", None)
    if row is None:
        message = f"{function}(): {exc}"
    else:
        message = (
            f"{function}(): row {row} of a {len(values)}-row batch "
            f"(a {len(values[row].as_py())}-byte cell): {str(exc).removeprefix(f'row {row}: ')}"
        )
    exc.args = (message,)
    return exc


def _compress_udf(
    function: str, format: Format, threads: int | None, dictionary: Buffer | None
) -> Callable[..., Any]:
    def udf(values: Any, codec: Any, level: Any) -> Any:
        try:
            return arrow.compress(
                values,
                codec=_constant("codec", codec),
                level=_constant("level", level),
                format=format,
                threads=threads,
                dictionary=dictionary,
            )
        except (ValueError, OSError) as exc:
            raise _restated(function, exc, values) from None

    return udf


def _decompress_udf(
    function: str,
    format: Format,
    on_error: OnError,
    as_string: bool,
    max_output_size: int | None,
    threads: int | None,
    dictionary: Buffer | None,
) -> Callable[..., Any]:
    def decode(values: Any, codec: Any) -> Any:
        try:
            return arrow.decompress(
                values,
                codec=None if codec is None else _constant("codec", codec),
                format=format,
                max_output_size=max_output_size,
                on_error=on_error,
                as_string=as_string,
                threads=threads,
                dictionary=dictionary,
            )
        except (ValueError, OSError) as exc:
            raise _restated(function, exc, values) from None

    # DuckDB calls a UDF with exactly as many arguments as it declares.
    def framed(values: Any) -> Any:
        return decode(values, None)

    return decode if format == "raw" else framed


def _frame_info_udf(function: str) -> Callable[..., Any]:
    def udf(values: Any) -> Any:
        try:
            return arrow.frame_info(values)
        except (ValueError, OSError) as exc:
            raise _restated(function, exc, values) from None

    return udf


def register(
    con: DuckDBPyConnection | None = None,
    *,
    prefix: str = "s4_",
    dictionary: Buffer | None = None,
    max_output_size: int | None = None,
    threads: int | None = None,
) -> DuckDBPyConnection:
    """Registers the S4 SQL functions on ``con`` (the default connection when
    None) and returns it. Registering again replaces them.

    With the default ``prefix``:

    * ``s4_compress(value[, codec[, level]])`` → BLOB of ``"s4"`` cells (zstd-3
      by default; ``level`` NULL means the codec's default);
      ``s4_compress_raw(value, codec[, level])`` → bare zstd/gzip payloads;
    * ``s4_decompress(cell)`` → BLOB, ``s4_decompress_text(cell)`` → VARCHAR
      (validated UTF-8), ``s4_decompress_raw(cell, codec)``,
      ``s4_decompress_raw_text(cell, codec)``, and ``try_`` + each of these,
      which gives NULL for a corrupt cell instead of failing the query;
    * ``s4_crc32c(value)`` → UINTEGER, ``s4_frame_info(cell)`` → ``STRUCT(codec
      VARCHAR, original_size UBIGINT, compressed_size UBIGINT, crc32c UINTEGER)``.

    Every function takes BLOB or VARCHAR; NULL stays NULL. ``codec`` and
    ``level`` must be constants. ``dictionary`` (zstd, e.g. from
    :func:`s4_codec.train_dictionary`) is used by every function here;
    ``max_output_size`` bounds each decompressed cell (default 5 GiB);
    ``threads`` caps the cores each batch is split across (default all).
    The SQL names are temporary macros over UDFs named ``__`` + the same name.
    """
    duckdb = _duckdb()
    if not (prefix.isidentifier() and prefix.isascii()):
        raise ValueError(f"prefix must be an ASCII SQL identifier such as 's4_', got {prefix!r}")
    # Refuses a bad limit, thread count or corrupt dictionary now, not at the first query.
    _internal.check_decompress_args(
        dictionary=dictionary, max_output_size=max_output_size, threads=threads
    )
    con = duckdb.default_connection() if con is None else con

    functions: list[_Function] = []
    for format, suffix in _FORMATS:
        name = f"{prefix}compress{suffix}"
        overloads = _COMPRESS_OVERLOADS if format == "s4" else _RAW_COMPRESS_OVERLOADS
        functions.append(
            _Function(
                name,
                _compress_udf(name, format, threads, dictionary),
                ["BLOB", "VARCHAR", "BIGINT"],
                "BLOB",
                "value",
                overloads,
            )
        )
        for as_string, returns in ((False, "BLOB"), (True, "VARCHAR")):
            for on_error, try_ in _ON_ERRORS:
                name = f"{try_}{prefix}decompress{suffix}{'_text' if as_string else ''}"
                udf = _decompress_udf(
                    name, format, on_error, as_string, max_output_size, threads, dictionary
                )
                if format == "s4":
                    functions.append(_Function(name, udf, ["BLOB"], returns, "cell", _NO_ARGS))
                else:
                    params = ["BLOB", "VARCHAR"]
                    functions.append(_Function(name, udf, params, returns, "cell", _CODEC_ARG))

    def crc32c(values: Any) -> Any:
        return arrow.crc32c(values, threads=threads)

    functions.append(_Function(f"{prefix}crc32c", crc32c, ["BLOB"], "UINTEGER", "value", _NO_ARGS))
    name = f"{prefix}frame_info"
    functions.append(
        _Function(name, _frame_info_udf(name), ["BLOB"], _FRAME_INFO_TYPE, "cell", _NO_ARGS)
    )

    for function in functions:
        internal = f"__{function.name}"
        try:
            con.remove_function(internal)
        except duckdb.InvalidInputException:
            pass  # not registered on this connection yet
        con.create_function(
            internal,
            function.udf,
            [duckdb.sqltype(p) for p in function.params],
            duckdb.sqltype(function.returns),
            **_ARROW_UDF,
        )
        # DuckDB never casts VARCHAR to BLOB implicitly; encode() reinterprets, no copy.
        operand = function.operand
        macros = []
        for extra_params, extra_args in function.overloads:
            for operand_type, arg in (("BLOB", operand), ("VARCHAR", f"encode({operand})")):
                params_sql = ", ".join(p for p in (f"{operand} {operand_type}", extra_params) if p)
                args_sql = ", ".join(a for a in (arg, extra_args) if a)
                macros.append(f"({params_sql}) AS {internal}({args_sql})")
        con.execute(f"CREATE OR REPLACE TEMP MACRO {function.name}{', '.join(macros)}")
    return con
