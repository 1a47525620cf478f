"""Argument checks shared by the column doors (Arrow, Polars, Spark), so a bad
argument fails with a clear ValueError before any work starts."""

from __future__ import annotations

from typing import Literal, TypeAlias

Codec: TypeAlias = Literal["zstd", "gzip", "passthrough"]
Format: TypeAlias = Literal["s4", "raw"]
OnError: TypeAlias = Literal["raise", "null"]

CODECS = {"zstd", "gzip", "passthrough", "cpu-zstd", "cpu-gzip"}
FORMATS = {"s4", "raw"}
ON_ERROR = {"raise", "null"}


def check_choice(name: str, value: object, allowed: set[str]) -> None:
    if value not in allowed:
        choices = ", ".join(repr(a) for a in sorted(allowed))
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def check_int(name: str, value: object, minimum: int | None = None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int or None, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def check_compress_args(codec: object, level: object, format: object, threads: object) -> None:
    check_choice("codec", codec, CODECS)
    check_int("level", level)
    if codec in ("gzip", "cpu-gzip") and isinstance(level, int) and not 0 <= level <= 9:
        raise ValueError(f"gzip level must be in 0..=9, got {level}")
    check_choice("format", format, FORMATS)
    check_int("threads", threads, 1)


def check_decompress_args(
    codec: object, format: object, max_output_size: object, on_error: object, threads: object
) -> None:
    if codec is not None:
        check_choice("codec", codec, CODECS)
    check_choice("format", format, FORMATS)
    if format == "raw" and codec is None:
        raise ValueError("format='raw' needs codec= ('zstd' or 'gzip'): raw cells do not name it")
    check_int("max_output_size", max_output_size, 0)
    check_choice("on_error", on_error, ON_ERROR)
    check_int("threads", threads, 1)
