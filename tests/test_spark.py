"""Spark helpers on a real local Spark (local[2]), through Arrow UDFs."""

from __future__ import annotations

import gzip
import sys

import pytest
from conftest import json_event, require

import s4_codec

pa = require("pyarrow")
s4a = require("s4_codec.arrow")


ROWS = [(i, json_event(i) if i % 11 else None, f"text {i} " * (i % 9)) for i in range(2000)]


def frame(spark):
    return spark.createDataFrame(ROWS, "id long, blob binary, note string")


@pytest.mark.parametrize("large", [False, True], ids=["binary", "large_binary"])
def test_compress_and_decompress_columns(spark, large):
    from s4_codec.spark import compress_columns, decompress_columns

    spark.conf.set("spark.sql.execution.arrow.useLargeVarTypes", str(large).lower())
    try:
        df = frame(spark)
        packed = compress_columns(df, ["blob", "note"], codec="zstd")
        assert [f.dataType.simpleString() for f in packed.schema.fields] == [
            "bigint",
            "binary",
            "binary",
        ]
        assert packed.columns == ["id", "blob", "note"]
        back = decompress_columns(packed, "blob")
        back = decompress_columns(back, "note", as_string=True)
        assert back.schema["note"].dataType.simpleString() == "string"
        rows = sorted(tuple(r) for r in back.collect())
        assert rows == [(i, b if b is None else bytes(b), n) for i, b, n in ROWS]
    finally:
        spark.conf.unset("spark.sql.execution.arrow.useLargeVarTypes")


@pytest.mark.parametrize("large", [False, True], ids=["binary", "large_binary"])
def test_udf_factories(spark, large):
    from pyspark.sql import functions as F

    from s4_codec.spark import compress_udf, crc32c_udf, decompress_udf

    spark.conf.set("spark.sql.execution.arrow.useLargeVarTypes", str(large).lower())
    try:
        df = frame(spark)
        packed = df.select(
            "id",
            compress_udf(codec="gzip", level=9)(F.col("blob")).alias("z"),
            compress_udf()(F.col("note")).alias("nz"),
            crc32c_udf()(F.col("blob")).alias("crc"),
        )
        back = packed.select(
            "id",
            decompress_udf()(F.col("z")).alias("blob"),
            decompress_udf(as_string=True)(F.col("nz")).alias("note"),
            "crc",
        )
        rows = {r["id"]: r for r in back.collect()}
        for i, blob, note in ROWS:
            row = rows[i]
            assert (None if row["blob"] is None else bytes(row["blob"])) == blob
            assert row["note"] == note
            assert row["crc"] == (None if blob is None else s4_codec.crc32c(blob))
    finally:
        spark.conf.unset("spark.sql.execution.arrow.useLargeVarTypes")


def test_100k_rows(spark):
    from s4_codec.spark import compress_columns, decompress_columns

    df = spark.range(100_000).selectExpr("id", "concat('event-', id, repeat('x', id % 50)) as s")
    packed = compress_columns(df, "s")
    total = decompress_columns(packed, "s", as_string=True).selectExpr("sum(length(s))").first()[0]
    assert total == df.selectExpr("sum(length(s))").first()[0]


def test_corrupt_cell_both_ways(spark):
    from s4_codec.spark import decompress_columns

    cells = s4a.compress(pa.array([json_event(i) for i in range(50)])).to_pylist()
    bad = bytearray(cells[7])
    bad[24] ^= 1
    cells[7] = bytes(bad)
    df = spark.createDataFrame([(i, c) for i, c in enumerate(cells)], "id long, blob binary")
    with pytest.raises(Exception, match="S4CrcMismatchError"):
        decompress_columns(df, "blob").collect()
    rows = dict(decompress_columns(df, "blob", on_error="null").collect())
    assert rows[7] is None and bytes(rows[8]) == json_event(8)


def test_bad_columns_fail_before_any_job(spark):
    from s4_codec.spark import compress_columns, decompress_columns

    df = frame(spark)
    with pytest.raises(ValueError, match="nope"):
        compress_columns(df, ["nope"])
    with pytest.raises(ValueError, match="id"):
        decompress_columns(df, ["id"])
    with pytest.raises(ValueError, match="codec"):
        compress_columns(df, "blob", codec="lz4")


def test_parquet_interop_both_ways(spark, tmp_path):
    pq = require("pyarrow.parquet")
    pl = require("polars")
    require("s4_codec.polars")  # registers pl.col(...).s4
    zstandard = require("zstandard")
    from s4_codec.spark import compress_columns, decompress_columns

    # Spark writes compressed cells; PyArrow and Polars read them.
    out = str(tmp_path / "from_spark")
    compress_columns(frame(spark), "blob").write.parquet(out)
    table = pq.read_table(out).sort_by("id")
    assert s4a.decompress(table.column("blob")).to_pylist() == [b for _, b, _ in ROWS]
    polars_back = (
        pl.read_parquet(out + "/*.parquet").sort("id").select(pl.col("blob").s4.decompress())
    )
    assert polars_back["blob"].to_list() == [b for _, b, _ in ROWS]
    raw = str(tmp_path / "raw")
    compress_columns(frame(spark), "blob", format="raw").write.parquet(raw)
    for cell, (_, blob, _) in zip(
        pq.read_table(raw).sort_by("id").column("blob").to_pylist(), ROWS, strict=True
    ):
        assert (cell and zstandard.ZstdDecompressor().decompress(cell)) == (blob or None)
    gz = str(tmp_path / "gz")
    compress_columns(frame(spark), "blob", codec="gzip", format="raw").write.parquet(gz)
    cells = pq.read_table(gz).sort_by("id").column("blob").to_pylist()
    assert [c and gzip.decompress(c) for c in cells] == [b or None for _, b, _ in ROWS]
    # PyArrow writes compressed cells; Spark decompresses them.
    src = tmp_path / "from_arrow.parquet"
    table = pa.table({"id": [r[0] for r in ROWS], "blob": [r[1] for r in ROWS]})
    pq.write_table(s4a.compress_table(table, "blob", codec="gzip"), src)
    back = decompress_columns(spark.read.parquet(str(src)), "blob").orderBy("id").collect()
    assert [None if r["blob"] is None else bytes(r["blob"]) for r in back] == [r[1] for r in ROWS]


def test_import_without_pyspark_names_the_extra(monkeypatch):
    import importlib

    import s4_codec.spark as spark_module

    monkeypatch.setitem(sys.modules, "pyspark", None)
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    monkeypatch.setitem(sys.modules, "pyspark.sql.functions", None)
    with pytest.raises(ImportError, match=r"s4-codec\[spark\]"):
        importlib.reload(spark_module)  # importing the door fails, not its first use
    monkeypatch.undo()
    importlib.reload(spark_module)


def test_options_of_the_arrow_functions(spark):
    from pyspark.sql import functions as F

    from s4_codec.spark import (
        compress_columns,
        compress_udf,
        crc32c_udf,
        decompress_columns,
        decompress_udf,
    )

    dictionary = s4_codec.train_dictionary([b for _, b, _ in ROWS if b], size=4096)
    df = frame(spark)
    packed = compress_columns(df, "blob", threads=1, dictionary=memoryview(dictionary))
    cells = {r["id"]: r["blob"] for r in packed.collect()}
    expected = s4a.compress(pa.array([b for _, b, _ in ROWS]), dictionary=dictionary).to_pylist()
    assert [None if cells[i] is None else bytes(cells[i]) for i, _, _ in ROWS] == expected
    back = decompress_columns(packed, "blob", threads=2, dictionary=dictionary, as_string=True)
    assert dict(back.select("id", "blob").collect()) == {
        i: None if b is None else b.decode() for i, b, _ in ROWS
    }
    limited = decompress_columns(
        packed, "blob", dictionary=dictionary, max_output_size=10, on_error="null"
    )
    assert limited.filter(F.col("blob").isNotNull()).count() == 0

    pack = compress_udf(codec="zstd-dict", dictionary=dictionary, threads=2)
    unpack = decompress_udf(dictionary=dictionary, threads=1, max_output_size=1 << 20)
    limit = decompress_udf(dictionary=dictionary, max_output_size=10, on_error="null")
    crc = crc32c_udf(threads=1)
    udfs = df.select("id", pack("blob").alias("z"), crc("blob").alias("crc")).select(
        "id", unpack("z").alias("blob"), limit("z").alias("limited"), "crc"
    )
    rows = {r["id"]: r for r in udfs.collect()}
    for i, blob, _ in ROWS:
        assert (None if rows[i]["blob"] is None else bytes(rows[i]["blob"])) == blob
        assert rows[i]["limited"] is None
        assert rows[i]["crc"] == (None if blob is None else s4_codec.crc32c(blob))


def test_bad_options_fail_before_any_job(spark):
    from s4_codec.spark import (
        compress_columns,
        compress_udf,
        crc32c_udf,
        decompress_columns,
        decompress_udf,
    )

    df = frame(spark)
    calls = [
        lambda: compress_columns(df, "blob", threads=0),
        lambda: decompress_columns(df, "blob", threads=0),
        lambda: decompress_columns(df, "blob", max_output_size=-1),
        lambda: compress_columns(df, "blob", codec="gzip", dictionary=b"x" * 64),
        lambda: compress_udf(threads=0),
        lambda: decompress_udf(threads=0),
        lambda: decompress_udf(format="raw"),
        lambda: crc32c_udf(threads=0),
    ]
    for call in calls:
        with pytest.raises(ValueError):
            call()


def test_level_codec_and_format_reach_the_cells(spark):
    # A dropped level or codec still round-trips, so compare the cells with the scalar
    # codec at that level (whose payloads differ from the default level's here).
    from pyspark.sql import functions as F

    from s4_codec.spark import compress_columns, compress_udf

    df = frame(spark)
    blobs = [b for _, b, _ in ROWS]
    for codec, level, scalar in (("gzip", 1, s4_codec.CpuGzip), ("zstd", 19, s4_codec.CpuZstd)):
        expected = [None if b is None else scalar(level).compress(b)[0] for b in blobs]
        assert expected != [None if b is None else scalar().compress(b)[0] for b in blobs]
        columns = compress_columns(df, "blob", codec=codec, level=level, format="raw")
        udf = compress_udf(codec=codec, level=level, format="raw")
        selected = df.select("id", udf(F.col("blob")).alias("blob"))
        for packed in (columns, selected):
            cells = dict(packed.select("id", "blob").collect())
            got = [cells[i] for i, _, _ in ROWS]
            assert [None if c is None else bytes(c) for c in got] == expected


def test_as_string_validates_utf8(spark):
    # Spark would turn binary into a string on its own; the kernels must refuse bad UTF-8.
    from pyspark.sql import functions as F

    from s4_codec.spark import decompress_columns, decompress_udf

    cells = s4a.compress(pa.array([b"ok", b"\xff\xfe", None])).to_pylist()
    df = spark.createDataFrame(list(enumerate(cells)), "id long, blob binary")
    with pytest.raises(Exception, match="not valid UTF-8"):
        decompress_columns(df, "blob", as_string=True).collect()
    with pytest.raises(Exception, match="not valid UTF-8"):
        df.select(decompress_udf(as_string=True)(F.col("blob"))).collect()
    expected = {0: "ok", 1: None, 2: None}
    nulls = decompress_columns(df, "blob", as_string=True, on_error="null")
    assert dict(nulls.collect()) == expected
    udf = decompress_udf(as_string=True, on_error="null")
    assert dict(df.select("id", udf(F.col("blob"))).collect()) == expected
