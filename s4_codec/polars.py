"""Polars expressions running the s4-codec column kernels as a plugin.

Importing this module (polars installed) registers the ``s4`` expression
namespace; so does the first use of ``s4_codec.col``. ``import s4_codec``
alone does not import polars::

    import s4_codec.polars  # registers pl.col(...).s4

    df.with_columns(pl.col("blob").s4.compress(codec="zstd", level=3))
    df.select(pl.col("blob").s4.decompress(as_string=True))

The same operations exist as functions taking any expression or column name
(``s4_codec.polars.compress("blob")``), and ``s4_codec.col`` is ``pl.col``
typed so that ``s4_codec.col("blob").s4.compress()`` type-checks.

Cells are byte-identical to ``s4_codec.arrow`` with the same options, which
are the options of the Arrow functions with the same defaults. The plugin is
elementwise, so lazy and streaming engines spread it over threads, and it
splits large chunks across cores itself in eager mode (over at most
``threads`` cores when given). Arguments are checked when the expression is
built (``ValueError``); errors while it runs surface as
``polars.exceptions.ComputeError`` whose message holds the S4 exception class,
e.g. ``S4CrcMismatchError: row 17: crc32c mismatch: ...``.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if find_spec("polars") is None:
    raise ImportError("s4_codec.polars needs polars: pip install 's4-codec[polars]'")

import polars as pl  # noqa: E402
from polars.plugins import register_plugin_function  # noqa: E402

from s4_codec import _internal
from s4_codec._options import Codec, Format, OnError

if TYPE_CHECKING:
    from s4_codec._options import Buffer

# The plugin speaks polars' plugin ABI as rust polars 0.55 does: polars 1.34 to 2.x load it
# (tested on both ends). Another polars may load it and crash, so it is refused here.
SUPPORTED_POLARS = ((1, 34), (3, 0))


def _check_polars_version(version: str) -> None:
    try:
        found = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        found = ()
    low, high = SUPPORTED_POLARS
    if not low <= found < high:
        raise ImportError(
            f"s4_codec.polars supports polars 1.34 to 2.x, found polars {version}: "
            "pip install 's4-codec[polars]' (or 'polars>=1.34,<3')"
        )


_check_polars_version(pl.__version__)

__all__ = ["S4Expr", "S4ExprNamespace", "col", "compress", "crc32c", "decompress", "frame_info"]

_LIBRARY = Path(_internal.__file__)


def _expr(value: pl.Expr | str) -> pl.Expr:
    if isinstance(value, str):
        return pl.col(value)
    if isinstance(value, pl.Expr):
        return value
    raise TypeError(f"expected a polars expression or a column name, got {type(value).__name__}")


def _hex(dictionary: Buffer | None) -> str | None:
    # Plugin kwargs are pickled for Rust; hex keeps bytes trivially portable.
    return None if dictionary is None else bytes(dictionary).hex()


def _plugin(name: str, expr: pl.Expr | str, kwargs: dict[str, Any]) -> pl.Expr:
    return register_plugin_function(
        plugin_path=_LIBRARY,
        function_name=name,
        args=_expr(expr),
        kwargs=kwargs,
        is_elementwise=True,
    )


def compress(
    expr: pl.Expr | str,
    *,
    codec: Codec = "zstd",
    level: int | None = None,
    format: Format = "s4",
    threads: int | None = None,
    dictionary: Buffer | None = None,
) -> pl.Expr:
    """Compresses every value of a Binary or String column into Binary
    (against ``dictionary``, zstd only, when given)."""
    _internal.check_compress_args(codec, level, format, dictionary, threads)
    kwargs = {
        "codec": codec,
        "level": level,
        "format": format,
        "dictionary": _hex(dictionary),
        "threads": threads,
    }
    return _plugin("s4_compress", expr, kwargs)


def decompress(
    expr: pl.Expr | str,
    *,
    codec: Codec | None = None,
    format: Format = "s4",
    max_output_size: int | None = None,
    on_error: OnError = "raise",
    as_string: bool = False,
    threads: int | None = None,
    dictionary: Buffer | None = None,
) -> pl.Expr:
    """Decompresses every value; String output with ``as_string=True``."""
    _internal.check_decompress_args(codec, format, dictionary, max_output_size, on_error, threads)
    kwargs = {
        "codec": codec,
        "format": format,
        "max_output_size": max_output_size,
        "on_error": on_error,
        "dictionary": _hex(dictionary),
        "threads": threads,
    }
    return _plugin("s4_decompress_str" if as_string else "s4_decompress", expr, kwargs)


def crc32c(expr: pl.Expr | str, *, threads: int | None = None) -> pl.Expr:
    """CRC32C of every value as UInt32."""
    _internal.check_compress_args(threads=threads)
    return _plugin("s4_crc32c", expr, {"threads": threads})


def frame_info(expr: pl.Expr | str, *, on_error: OnError = "raise") -> pl.Expr:
    """S4F2 header fields of every ``"s4"`` cell as a struct
    ``{codec, original_size, compressed_size, crc32c}``."""
    _internal.check_decompress_args(on_error=on_error)
    return _plugin("s4_frame_info", expr, {"on_error": on_error})


@pl.api.register_expr_namespace("s4")
class S4ExprNamespace:
    """``pl.col(...).s4``: the s4-codec column operations."""

    def __init__(self, expr: pl.Expr) -> None:
        self._expr = expr

    def compress(
        self,
        *,
        codec: Codec = "zstd",
        level: int | None = None,
        format: Format = "s4",
        threads: int | None = None,
        dictionary: Buffer | None = None,
    ) -> pl.Expr:
        return compress(
            self._expr,
            codec=codec,
            level=level,
            format=format,
            threads=threads,
            dictionary=dictionary,
        )

    def decompress(
        self,
        *,
        codec: Codec | None = None,
        format: Format = "s4",
        max_output_size: int | None = None,
        on_error: OnError = "raise",
        as_string: bool = False,
        threads: int | None = None,
        dictionary: Buffer | None = None,
    ) -> pl.Expr:
        return decompress(
            self._expr,
            codec=codec,
            format=format,
            max_output_size=max_output_size,
            on_error=on_error,
            as_string=as_string,
            threads=threads,
            dictionary=dictionary,
        )

    def crc32c(self, *, threads: int | None = None) -> pl.Expr:
        return crc32c(self._expr, threads=threads)

    def frame_info(self, *, on_error: OnError = "raise") -> pl.Expr:
        return frame_info(self._expr, on_error=on_error)


class S4Expr(pl.Expr):
    """``pl.Expr`` with the ``s4`` namespace visible to type checkers."""

    @property
    def s4(self) -> S4ExprNamespace:
        return S4ExprNamespace(self)


def col(name: str, *more_names: str) -> S4Expr:
    """``pl.col`` typed as :class:`S4Expr`."""
    return cast(S4Expr, pl.col(name, *more_names))
