"""s4:// through fsspec, and the engines on top: pandas, PyArrow, DuckDB and
Polars read S4-encoded NDJSON and Parquet with the same result as the original."""

from __future__ import annotations

import io
from importlib.metadata import entry_points

import pytest
from conftest import S3_BUCKET, json_event, require

fsspec = require("fsspec")
require("s3fs")
require("obstore")

import s4_codec.io as s4io  # noqa: E402
from s4_codec.io._fsspec import S4FileSystem  # noqa: E402

NDJSON = b"\n".join(json_event(i) for i in range(60_000)) + b"\n"  # ~12 MiB: 3 frames


@pytest.fixture(scope="module")
def objects(s3_store):
    pa = require("pyarrow")
    pq = require("pyarrow.parquet")
    table = pa.table({"id": list(range(300_000)), "name": [f"n{i % 977}" for i in range(300_000)]})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=50_000, compression="none")
    parquet = sink.getvalue()
    s4io.put(s3_store, "engines/events.ndjson", NDJSON, level=1)
    s4io.put(s3_store, "engines/table.parquet", parquet, level=1)
    return {"table": table, "parquet": parquet}


@pytest.fixture
def s4fs(s3fs_options):
    return fsspec.filesystem("s4", target_protocol="s3", target_options=s3fs_options)


def test_registered_through_entry_points():
    names = {ep.name: ep.value for ep in entry_points(group="fsspec.specs")}
    assert names.get("s4") == "s4_codec.io._fsspec:S4FileSystem"
    assert fsspec.get_filesystem_class("s4") is S4FileSystem


def test_chained_and_plain_urls(objects, s3fs_options):
    with fsspec.open(f"s4::s3://{S3_BUCKET}/engines/events.ndjson", s3=s3fs_options) as f:
        assert f.read() == NDJSON
    opened = fsspec.open(
        f"s4://{S3_BUCKET}/engines/events.ndjson",
        target_protocol="s3",
        target_options=s3fs_options,
    )
    with opened as f:
        f.seek(1000)
        assert f.read(50) == NDJSON[1000:1050]
    fs = opened.fs
    info = fs.info(f"{S3_BUCKET}/engines/events.ndjson")
    assert info["size"] == len(NDJSON) and info["type"] == "file"
    assert fs.cat_file(f"{S3_BUCKET}/engines/events.ndjson", 5, 9) == NDJSON[5:9]
    names = fs.ls(f"{S3_BUCKET}/engines", detail=False)
    assert sorted(names) == [
        f"{S3_BUCKET}/engines/events.ndjson",
        f"{S3_BUCKET}/engines/table.parquet",
    ]  # sidecars hidden
    assert fs.modified(f"{S3_BUCKET}/engines/events.ndjson") is not None


def test_fsspec_write(s4fs, s3_store):
    with s4fs.open(f"{S3_BUCKET}/engines/written.bin", "wb") as f:
        f.write(NDJSON)
    assert s4io.get(s3_store, "engines/written.bin") == NDJSON
    s4fs.pipe_file(f"{S3_BUCKET}/engines/piped.bin", b"abc")
    assert s4fs.cat_file(f"{S3_BUCKET}/engines/piped.bin") == b"abc"


def test_pandas(objects, s3fs_options):
    pd = require("pandas")
    expected = pd.read_json(io.BytesIO(NDJSON), lines=True)
    got = pd.read_json(
        f"s4://{S3_BUCKET}/engines/events.ndjson",
        lines=True,
        storage_options={"target_protocol": "s3", "target_options": s3fs_options},
    )
    pd.testing.assert_frame_equal(got, expected)
    frame = pd.read_parquet(
        f"s4://{S3_BUCKET}/engines/table.parquet",
        storage_options={"target_protocol": "s3", "target_options": s3fs_options},
    )
    assert frame["id"].tolist() == objects["table"]["id"].to_pylist()


def test_pyarrow_parquet_reads_ranges(objects, s4fs, s3_store):
    pq = require("pyarrow.parquet")
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    pafs = PyFileSystem(FSSpecHandler(s4fs))
    table = pq.read_table(f"{S3_BUCKET}/engines/table.parquet", filesystem=pafs)
    assert table.equals(objects["table"])
    # Footer first, then one column: through the reader directly.
    with s4io.open(s3_store, "engines/table.parquet") as f:
        one = pq.ParquetFile(f).read_row_group(3, columns=["id"])
    assert one["id"].to_pylist() == list(range(150_000, 200_000))


def test_duckdb(objects, s4fs):
    duckdb = require("duckdb")
    con = duckdb.connect()
    con.register_filesystem(s4fs)
    count = con.execute(
        f"SELECT count(*), sum(amount_cents) FROM read_json_auto('s4://{S3_BUCKET}/engines/events.ndjson')"
    ).fetchone()
    assert count == (60_000, sum(100 + i * 13 for i in range(60_000)))
    total = con.execute(
        f"SELECT count(*), sum(id) FROM read_parquet('s4://{S3_BUCKET}/engines/table.parquet')"
    ).fetchone()
    assert total == (300_000, sum(range(300_000)))


def test_polars(objects, s3_store, s4fs):
    pl = require("polars")
    expected = pl.read_ndjson(io.BytesIO(NDJSON))
    with s4io.open(s3_store, "engines/events.ndjson") as f:
        assert pl.read_ndjson(f).equals(expected)
    with s4fs.open(f"{S3_BUCKET}/engines/table.parquet") as f:
        assert pl.read_parquet(f)["id"].to_list() == list(range(300_000))
