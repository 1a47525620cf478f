"""The Polars expression plugin (`pl.col(...).s4`) and s4_codec.polars."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import json_event, require

import s4_codec
from s4_codec import CpuGzip, CpuZstd

pl = require("polars")
pa = require("pyarrow")
s4pl = require("s4_codec.polars")
s4a = require("s4_codec.arrow")

VALUES = [json_event(i) * (1 + i % 4) for i in range(500)]
VALUES[3] = None
VALUES[4] = b""


def frame() -> pl.DataFrame:
    return pl.DataFrame(
        {"id": range(len(VALUES)), "grp": [i % 3 for i in range(len(VALUES))], "blob": VALUES},
        schema={"id": pl.Int64, "grp": pl.Int64, "blob": pl.Binary},
    )


def test_eager_round_trip_keeps_nulls():
    df = frame()
    out = df.with_columns(z=pl.col("blob").s4.compress())
    assert out["z"].dtype == pl.Binary
    assert out["z"].null_count() == 1
    back = out.select(pl.col("z").s4.decompress())
    assert back["z"].to_list() == VALUES


@pytest.mark.parametrize("codec", ["zstd", "gzip", "passthrough"])
@pytest.mark.parametrize("fmt", ["s4", "raw"])
def test_cells_are_byte_identical_to_arrow(codec, fmt):
    df = frame()
    ours = df.select(pl.col("blob").s4.compress(codec=codec, format=fmt))["blob"]
    arrow = s4a.compress(pa.array(VALUES, pa.binary()), codec=codec, format=fmt)
    assert ours.to_list() == arrow.to_pylist()
    decoded = s4a.decompress(ours.to_arrow(), codec=None if fmt == "s4" else codec, format=fmt)
    assert decoded.to_pylist() == VALUES
    arrow_series = pl.from_arrow(arrow)
    back = pl.select(
        s4pl.decompress(pl.lit(arrow_series), codec=None if fmt == "s4" else codec, format=fmt)
    )
    assert back.to_series().to_list() == VALUES


def test_scalar_api_interop():
    payload, size, crc = CpuZstd(5).compress(b"scalar bytes")
    header = b"S4F2" + (1).to_bytes(4, "little") + size.to_bytes(8, "little")
    cell = header + len(payload).to_bytes(8, "little") + crc.to_bytes(4, "little") + payload
    s = pl.Series("c", [cell])
    assert s.to_frame().select(pl.col("c").s4.decompress())["c"][0] == b"scalar bytes"
    packed = pl.Series("c", [b"from polars"]).to_frame().select(pl.col("c").s4.compress())
    info = packed.select(pl.col("c").s4.frame_info()).unnest("c").row(0, named=True)
    raw = packed["c"][0]
    assert info["codec"] == "cpu-zstd" and info["original_size"] == 11
    assert CpuZstd().decompress(raw[28:], 11, info["crc32c"]) == b"from polars"
    assert info["crc32c"] == s4_codec.crc32c(b"from polars")


def test_strings_in_and_out():
    texts = [v.decode() if v is not None else None for v in VALUES]
    df = pl.DataFrame({"t": texts})
    packed = df.select(s4pl.compress("t", codec="gzip"))
    assert packed["t"].dtype == pl.Binary
    back = packed.select(pl.col("t").s4.decompress(as_string=True))
    assert back["t"].dtype == pl.String
    assert back["t"].to_list() == texts


def test_lazy_streaming_group_by_over():
    df = frame()
    packed = df.with_columns(pl.col("blob").s4.compress())
    lazy = packed.lazy().with_columns(raw=pl.col("blob").s4.decompress())
    assert lazy.collect()["raw"].to_list() == VALUES
    assert lazy.collect(engine="streaming")["raw"].to_list() == VALUES
    agg = packed.group_by("grp").agg(pl.col("blob").s4.decompress().alias("raw")).sort("grp")
    for grp, raw in agg.iter_rows():
        assert raw == [v for i, v in enumerate(VALUES) if i % 3 == grp]
    over = packed.select(pl.col("blob").s4.crc32c().max().over("grp"))
    assert over.height == len(VALUES)


def test_multi_chunk_series():
    parts = [
        pl.DataFrame({"blob": VALUES[i : i + 100]}, schema={"blob": pl.Binary})
        for i in range(0, 500, 100)
    ]
    df = pl.concat(parts, rechunk=False)
    assert df["blob"].n_chunks() == 5
    packed = df.select(pl.col("blob").s4.compress())
    assert packed.select(pl.col("blob").s4.decompress())["blob"].to_list() == VALUES
    crcs = df.select(pl.col("blob").s4.crc32c())["blob"].to_list()
    assert crcs == [None if v is None else s4_codec.crc32c(v) for v in VALUES]


def test_corrupt_cell_names_class_and_row():
    packed = frame().select(pl.col("blob").s4.compress())["blob"].to_list()
    cell = bytearray(packed[17])
    cell[24] ^= 1  # the header CRC
    packed[17] = bytes(cell)
    df = pl.DataFrame({"blob": packed}, schema={"blob": pl.Binary})
    with pytest.raises(pl.exceptions.ComputeError, match=r"S4CrcMismatchError: row 17: crc32c"):
        df.select(pl.col("blob").s4.decompress())
    out = df.select(pl.col("blob").s4.decompress(on_error="null"))["blob"]
    assert out[17] is None and out.null_count() == 2


def test_wrong_dtype_and_bad_arguments():
    df = pl.DataFrame({"n": [1, 2]})
    with pytest.raises(
        pl.exceptions.ComputeError, match="Binary or String.*i64|Binary or String.*Int64"
    ):
        df.select(pl.col("n").s4.compress())
    with pytest.raises(ValueError, match="codec"):
        pl.col("x").s4.compress(codec="lz4")
    with pytest.raises(ValueError, match="format"):
        pl.col("x").s4.decompress(format="zip")
    with pytest.raises(ValueError, match="codec="):
        pl.col("x").s4.decompress(format="raw")
    with pytest.raises(ValueError, match="on_error"):
        pl.col("x").s4.frame_info(on_error="skip")
    with pytest.raises(ValueError, match="level"):
        s4pl.compress("x", codec="gzip", level=11)


def test_parquet_round_trip(tmp_path):
    path = tmp_path / "blobs.parquet"
    frame().with_columns(pl.col("blob").s4.compress()).write_parquet(path)
    back = pl.scan_parquet(path).select(pl.col("blob").s4.decompress()).collect()
    assert back["blob"].to_list() == VALUES


STREAMING_WRITE = """
import sys
import polars as pl
import s4_codec.polars
rows = 2_000_000
df = pl.DataFrame({"id": pl.int_range(0, rows, eager=True)}).with_columns(
    text=pl.concat_str(pl.lit("event "), pl.col("id").cast(pl.String), pl.lit(" user "),
                       (pl.col("id") % 977).cast(pl.String)).str.pad_end(400, "x"))
df.select("id", pl.col("text").s4.compress()).write_parquet(sys.argv[1], row_group_size=50_000)
"""

# A fresh process, so the peak RSS it reports is the streaming query's own.
STREAMING_READ = """
import resource, sys
import polars as pl
import s4_codec.polars
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
total = (pl.scan_parquet(sys.argv[1])
         .select(pl.col("text").s4.decompress(as_string=True).str.len_bytes().sum())
         .collect(engine="streaming").item())
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(total, grown)
"""


def test_streaming_scan_parquet_with_bounded_memory(tmp_path):
    path = str(tmp_path / "stream.parquet")
    subprocess.run([sys.executable, "-c", STREAMING_WRITE, path], check=True)
    out = subprocess.run(
        [sys.executable, "-c", STREAMING_READ, path], capture_output=True, text=True, check=True
    ).stdout.split()
    total, grown_kib = int(out[0]), int(out[1])
    assert total == 2_000_000 * 400
    # The decoded column is 800 MB; streaming holds a few morsels of it.
    assert grown_kib * 1024 < 300 * 1024 * 1024, grown_kib


def test_typed_usage_passes_mypy():
    require("mypy")
    usage = Path(__file__).parent / "typing" / "polars_usage.py"
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(usage)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dictionary_compression():
    events = [json_event(i) for i in range(3000)]
    dictionary = s4_codec.train_dictionary(pl.Series(events), size=8192)
    df = pl.DataFrame({"blob": events})
    packed = df.select(pl.col("blob").s4.compress(dictionary=dictionary))
    info = packed.select(pl.col("blob").s4.frame_info()).unnest("blob")
    assert info["codec"].unique().to_list() == ["cpu-zstd-dict"]
    back = packed.select(pl.col("blob").s4.decompress(dictionary=dictionary))
    assert back["blob"].to_list() == events
    arrow_back = s4a.decompress(packed["blob"].to_arrow(), dictionary=dictionary)
    assert arrow_back.to_pylist() == events


@pytest.mark.parametrize("threads", [None, 1, 2, 5])
def test_threads_option(threads):
    df = frame()
    packed = df.select(pl.col("blob").s4.compress(threads=threads))
    assert packed["blob"].to_list() == s4a.compress(pa.array(VALUES, pa.binary())).to_pylist()
    back = packed.lazy().select(
        pl.col("blob").s4.decompress(threads=threads),
        text=s4pl.decompress("blob", as_string=True, threads=threads),
        crc=pl.col("blob").s4.crc32c(threads=threads),
    )
    out = back.collect()
    assert out["blob"].to_list() == VALUES
    assert out["text"].to_list() == [None if v is None else v.decode() for v in VALUES]
    crcs = df.select(s4pl.crc32c(pl.col("blob"), threads=threads))["blob"].to_list()
    assert crcs == [None if v is None else s4_codec.crc32c(v) for v in VALUES]


def test_bad_options_fail_when_the_expression_is_built():
    builders = [
        lambda: pl.col("x").s4.compress(threads=0),
        lambda: pl.col("x").s4.decompress(threads=0),
        lambda: pl.col("x").s4.crc32c(threads=0),
        lambda: s4pl.crc32c("x", threads=0),
        lambda: s4pl.decompress("x", max_output_size=-1),
        lambda: s4pl.compress("x", codec="zstd-dict"),
        lambda: s4pl.compress("x", codec="gzip", dictionary=b"x" * 64),
    ]
    for build in builders:
        with pytest.raises(ValueError):
            build()


def test_dictionary_as_any_buffer_and_limits():
    events = [json_event(i) for i in range(3000)]
    dictionary = s4_codec.train_dictionary(events, size=8192)
    df = pl.DataFrame({"blob": events})
    packed = df.select(s4pl.compress("blob", codec="zstd-dict", dictionary=memoryview(dictionary)))
    arrow = s4a.compress(pa.array(events, pa.large_binary()), dictionary=dictionary)
    assert packed["blob"].to_list() == arrow.to_pylist()
    back = packed.select(
        pl.col("blob").s4.decompress(dictionary=bytearray(dictionary), as_string=True, threads=2)
    )
    assert back["blob"].to_list() == [e.decode() for e in events]
    with pytest.raises(pl.exceptions.ComputeError, match="S4ManifestSizeExceedsLimitError"):
        packed.select(pl.col("blob").s4.decompress(dictionary=dictionary, max_output_size=10))
    nulls = packed.select(
        pl.col("blob").s4.decompress(dictionary=dictionary, max_output_size=10, on_error="null")
    )
    assert nulls["blob"].null_count() == len(events)
    raw = df.select(pl.col("blob").s4.compress(format="raw", dictionary=dictionary))
    back = raw.select(
        s4pl.decompress("blob", codec="cpu-zstd", format="raw", dictionary=dictionary)
    )
    assert back["blob"].to_list() == events


def test_namespace_registered_by_importing_s4_codec_polars():
    code = (
        "import sys, polars as pl, s4_codec\n"
        "assert not hasattr(pl.col('x'), 's4')\n"
        "import s4_codec.polars\n"
        "print(pl.DataFrame({'x': [b'a']}).select(pl.col('x').s4.crc32c()).item())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == s4_codec.crc32c(b"a")
    code = (
        "import polars as pl, s4_codec\n"
        "print(pl.DataFrame({'x': [b'a']}).select(s4_codec.col('x').s4.crc32c()).item())\n"
        "print(pl.DataFrame({'x': [b'a']}).select(pl.col('x').s4.crc32c()).item())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert [int(v) for v in out.stdout.split()] == [s4_codec.crc32c(b"a")] * 2


@pytest.mark.parametrize(
    ("codec", "level", "scalar"),
    [("zstd", 19, CpuZstd), ("gzip", 1, CpuGzip)],
    ids=["zstd", "gzip"],
)
def test_level_reaches_the_plugin(codec, level, scalar):
    # A dropped level still round-trips: compare with the scalar codec at that level
    # (whose payloads differ from the default level's on these values).
    values = [v for v in VALUES if v]
    expected = [scalar(level).compress(v)[0] for v in values]
    assert expected != [scalar().compress(v)[0] for v in values]
    df = pl.DataFrame({"blob": values}, schema={"blob": pl.Binary})
    out = df.select(
        function=s4pl.compress("blob", codec=codec, level=level, format="raw"),
        namespace=pl.col("blob").s4.compress(codec=codec, level=level, format="raw"),
        cells=pl.col("blob").s4.compress(codec=codec, level=level),
    )
    assert out["function"].to_list() == expected
    assert out["namespace"].to_list() == expected
    assert [c[s4_codec.FRAME_HEADER_BYTES :] for c in out["cells"]] == expected


def test_frame_info_on_error():
    good = pl.Series([b"x" * 100]).to_frame("c").select(pl.col("c").s4.compress())["c"][0]
    df = pl.DataFrame({"c": [good, b"garbage", None]}, schema={"c": pl.Binary})
    for build in (
        lambda **kw: pl.col("c").s4.frame_info(**kw),
        lambda **kw: s4pl.frame_info("c", **kw),
    ):
        with pytest.raises(pl.exceptions.ComputeError, match="S4FrameError: row 1"):
            df.select(build())
        info = df.select(build(on_error="null"))["c"].to_list()
        assert info[1:] == [None, None]
        assert info[0]["codec"] == "cpu-zstd" and info[0]["original_size"] == 100
