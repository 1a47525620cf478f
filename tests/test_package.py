"""The package surface: what `import s4_codec` costs and pulls in, and the
exception tuple for callers who catch every decode failure."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from subproc import assert_clean, run_code

import s4_codec
from s4_codec import _internal

IMPORT_ONLY = """
import json, sys, time
start = time.perf_counter()
import s4_codec
took = time.perf_counter() - start
heavy = ("polars", "pyarrow", "duckdb", "pyspark", "pandas", "numpy")
print(json.dumps({"loaded": [m for m in heavy if m in sys.modules], "ms": took * 1000}))
"""


def test_import_s4_codec_imports_no_dataframe_library():
    child = run_code(IMPORT_ONLY)
    assert_clean(child)
    report = json.loads(child.stdout)
    assert report["loaded"] == [], report


def test_col_imports_polars_on_first_use():
    pytest.importorskip("polars")
    child = run_code(
        "import sys, s4_codec\n"
        "assert 'polars' not in sys.modules\n"
        "expr = s4_codec.col('x')\n"
        "assert 'polars' in sys.modules and 's4_codec.polars' in sys.modules\n"
        "import polars as pl\n"
        "assert isinstance(expr, pl.Expr) and hasattr(expr, 's4')\n"
        "from s4_codec import *\n"
    )
    assert_clean(child)


def test_module_attributes_stay_specializable():
    # A module-level __getattr__ stops CPython from specializing every
    # `s4_codec.name` lookup: about 20 ns on each 100-byte call.
    assert "__getattr__" not in vars(s4_codec)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        s4_codec.no_such_thing  # noqa: B018
    assert not hasattr(s4_codec, "also_missing")


def exception_classes() -> list[type[BaseException]]:
    return [
        value
        for module in (s4_codec, _internal)
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, BaseException)
    ]


def test_s4_errors_covers_every_s4_exception_class():
    assert s4_codec.S4_ERRORS == (s4_codec.S4Error, s4_codec.S4IoError, s4_codec.S4BackendError)
    assert "S4_ERRORS" in s4_codec.__all__
    classes = exception_classes()
    assert len({c.__name__ for c in classes}) >= 11
    for cls in classes:
        assert cls.__name__.startswith("S4"), cls
        assert issubclass(cls, s4_codec.S4_ERRORS), cls
        assert cls.__name__ in s4_codec.__all__, cls


def corrupt_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


DECODE_FAILURES = {
    "object crc": lambda: s4_codec.decode_s4_object(
        corrupt_last_byte(s4_codec.encode_s4_object(b"hello " * 100)["body"])
    ),
    "object limit": lambda: s4_codec.decode_s4_object(
        s4_codec.encode_s4_object(b"x" * 100)["body"], max_output_size=10
    ),
    "zstd stream": lambda: s4_codec.CpuZstd().decompress(b"not zstd", 5, 0),
    "zstd crc": lambda: s4_codec.CpuZstd().decompress(s4_codec.CpuZstd().compress(b"a")[0], 1, 7),
    "gzip stream": lambda: s4_codec.CpuGzip().decompress(b"not gzip", 5, 0),
    "frame": lambda: s4_codec.read_frame(b"S4F2"),
    "frames": lambda: list(s4_codec.frame_iter(b"S4F2" + bytes(40))),
    "index": lambda: s4_codec.decode_index(b"not an index"),
    "dictionary": lambda: s4_codec.CpuZstdDict(b"\x37\xa4\x30\xec" + bytes(64)),
}


@pytest.mark.parametrize("call", DECODE_FAILURES.values(), ids=DECODE_FAILURES.keys())
def test_s4_errors_catches_decode_failures(call):
    with pytest.raises(s4_codec.S4_ERRORS):
        call()


def test_s4_errors_catches_column_failures():
    pa = pytest.importorskip("pyarrow")
    import s4_codec.arrow as s4a

    cells = s4a.compress(pa.array([b"abc" * 50, b"def"])).to_pylist()
    cells[0] = corrupt_last_byte(cells[0])
    with pytest.raises(s4_codec.S4_ERRORS, match="row 0"):
        s4a.decompress(pa.array(cells))
    with pytest.raises(s4_codec.S4_ERRORS, match="row 1"):
        s4a.decompress(pa.array([b"", b"garbage"]))


if __name__ == "__main__":  # python tests/test_package.py: the import time, median of 11
    import statistics
    import subprocess

    times = [
        json.loads(subprocess.check_output([sys.executable, "-c", IMPORT_ONLY]))["ms"]
        for _ in range(11)
    ]
    print(f"import s4_codec: {statistics.median(times):.1f} ms (median of 11)")


_MISSING_EXTRA = """
import sys
sys.modules[sys.argv[1]] = None  # as if the extra were not installed
try:
    __import__(sys.argv[2])
except ImportError as exc:
    print(exc)
else:
    print("imported")
"""


@pytest.mark.parametrize(
    "missing, door, extra",
    [
        ("polars", "s4_codec.polars", "polars"),
        ("pyarrow", "s4_codec.arrow", "arrow"),
        ("duckdb", "s4_codec.duckdb", "duckdb"),
        ("pyspark", "s4_codec.spark", "spark"),
    ],
)
def test_a_door_without_its_extra_says_what_to_install(missing, door, extra):
    child = run_code(_MISSING_EXTRA, missing, door)
    assert_clean(child)
    assert child.stdout.strip().endswith(f"pip install 's4-codec[{extra}]'"), child.stdout
    assert door in child.stdout


@pytest.mark.parametrize("version", ["1.33.9", "0.20.31", "3.0.0", "10.1", "dev"])
def test_polars_outside_the_plugin_abi_range_is_refused(version):
    import s4_codec.polars as door

    with pytest.raises(ImportError, match=f"1.34 to 2.x, found polars {version}"):
        door._check_polars_version(version)


@pytest.mark.parametrize("version", ["1.34.0", "1.40.2", "2.1.0", "2.99.0"])
def test_polars_inside_the_range_is_accepted(version):
    import s4_codec.polars as door

    door._check_polars_version(version)


def test_the_suite_tests_the_installed_package():
    """Under `make test`, s4_codec comes from the installed wheel, not the checkout."""
    from subproc import ROOT

    if not os.environ.get("S4_INSTALLED"):
        pytest.skip("runs against the installed wheel (make test)")
    checkout = ROOT / "s4_codec"
    assert not Path(s4_codec.__file__).resolve().is_relative_to(checkout), s4_codec.__file__
    assert not Path(_internal.__file__).resolve().is_relative_to(checkout), _internal.__file__
    assert "site-packages" in Path(_internal.__file__).parts


def test_the_polars_plugin_answers_the_version_handshake():
    """polars asks a plugin library for its plugin ABI version before loading it:
    0.1 (major << 16 | minor) is what polars 1.34 through 2.x accept."""
    child = run_code(
        "import ctypes, s4_codec._internal as m;"
        "print(ctypes.CDLL(m.__file__)._polars_plugin_get_version())"
    )
    assert_clean(child)
    assert int(child.stdout) == (0 << 16) | 1
