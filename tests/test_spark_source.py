"""The ``s4`` Spark data source on a real local Spark (local[2]) against real
S3 servers on loopback (moto, and benchmarks/s3_range_server.py where bytes
are counted) and local directories: reading lines and whole objects split by
frames, writing as the gateway stores, and refusing bad input."""

from __future__ import annotations

import sys
import time
import uuid
import zlib
from collections import Counter
from pathlib import Path

import pytest
from conftest import S3_BUCKET, S3_CREDENTIALS, json_event, require

import s4_codec

pa = require("pyarrow")
s4io = require("s4_codec.io")
obstore_store = require("obstore.store")

MiB = 1 << 20
# s4_codec.io.put cuts objects of 4 MiB and more into frames of this many bytes.
FRAME = 4 * MiB
RUN = uuid.uuid4().hex[:10]  # the moto bucket is shared by the session
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def s3(moto_endpoint):
    """The data source's options for the moto bucket (executors are other
    processes: everything they need travels in the options)."""
    return {
        "endpoint_url": moto_endpoint,
        "region": "us-east-1",
        "access_key_id": S3_CREDENTIALS["aws_access_key_id"],
        "secret_access_key": S3_CREDENTIALS["aws_secret_access_key"],
    }


def url(key: str) -> str:
    return f"s3://{S3_BUCKET}/{key}"


def prefix(name: str) -> str:
    return f"spark-source/{RUN}/{name}/"


def read(spark, path, options, **more):
    reader = spark.read.format("s4").options(**options)
    return reader.options(**{k: str(v) for k, v in more.items()}).load(path)


# --- Data ------------------------------------------------------------------------


def ndjson(n: int, seed: int = 0, ending: bytes = b"\n") -> bytes:
    """n bytes of JSON lines of varying length, the last one ended by `ending`
    exactly at the end (shortened to fit)."""
    out, i = bytearray(), seed
    while len(out) < n:
        event = json_event(i)[:-1] + b',"note":"' + b"n" * ((i * 7919) % 181) + b'"}'
        out += event + ending
        i += 1
    del out[n - len(ending) :]
    out += ending
    assert len(out) == n
    return bytes(out)


def lines_of(data: bytes) -> list[bytes]:
    """The lines the data source gives: split at "\\n", a "\\r" before it
    (or before the end) dropped, no empty last piece after a final "\\n"."""
    pieces = data.split(b"\n")
    last = pieces.pop()
    if last:
        pieces.append(last)
    return [p[:-1] if p.endswith(b"\r") else p for p in pieces]


def texts(data: bytes) -> list[str]:
    return [line.decode() for line in lines_of(data)]


def by_path(table) -> dict[str, list]:
    """{path: [value, ...]} in the order the rows came (partition order)."""
    out: dict[str, list] = {}
    for value, path in zip(
        table.column("value").to_pylist(), table.column("path").to_pylist(), strict=True
    ):
        out.setdefault(path, []).append(value)
    return out


def failure(action) -> str:
    """The text of the exception `action` raises."""
    with pytest.raises(Exception) as info:
        action()
    return str(info.value)


@pytest.fixture(scope="module")
def big():
    """64 MiB of NDJSON (16 frames of 4 MiB), its last line cut short (no "\\n")."""
    data = ndjson(64 * MiB + 1000, seed=3)[: 64 * MiB]
    assert not data.endswith(b"\n")
    return data


@pytest.fixture(scope="module")
def big_key(s3_store, big):
    key = prefix("big") + "events.ndjson"
    result = s4io.put(s3_store, key, big, level=1)
    assert result["sidecar"] and s4io.stat(s3_store, key)["frames"] == 16
    return key


# --- 1. A big object, split by frames ---------------------------------------------


def test_big_object_split_by_frames_reads_every_line_once(spark, s3, big, big_key):
    df = read(spark, url(big_key), s3, partitionBytes="8m")
    assert df.schema.simpleString() == "struct<value:string,path:string>"
    partitions = df.rdd.getNumPartitions()
    assert 4 <= partitions <= 16, partitions
    expected = texts(big)
    assert df.count() == len(expected)
    table = df.toArrow()
    assert set(table.column("path").to_pylist()) == {url(big_key)}
    values = table.column("value").to_pylist()
    assert len(values) == len(expected)
    assert Counter(values) == Counter(expected)  # each line once, none made up
    assert values == expected  # and in order: partitions follow the object
    spelled = read(spark, url(big_key), s3, partitionBytes="8388608")
    assert spelled.rdd.getNumPartitions() == partitions
    # Partitions of one frame each; and one partition of it all (reads of 32
    # MiB, Arrow batches of 64Ki rows), compared through aggregates.
    one_frame = read(spark, url(big_key), s3, partitionBytes="1")
    assert one_frame.rdd.getNumPartitions() == 16
    assert one_frame.count() == len(expected)
    whole = read(spark, url(big_key), s3)
    assert whole.rdd.getNumPartitions() == 1
    sums = whole.selectExpr("count(*)", "sum(length(value))", "sum(crc32(value))").first()
    assert tuple(sums) == (
        len(expected),
        sum(len(v) for v in expected),
        sum(zlib.crc32(v.encode()) for v in expected),
    )


# --- 2. Lines at frame and partition boundaries ----------------------------------


def crlf(n: int, seed: int = 0) -> bytes:
    return ndjson(n, seed, ending=b"\r\n")


@pytest.fixture(scope="module")
def edge_data() -> dict[str, bytes]:
    """Small framed objects (4 MiB frames) with lines at the boundaries."""
    return {
        # Frame boundaries right after a "\n": lines start exactly at 4 and 8 MiB.
        "newline_then_boundary": ndjson(FRAME, 0) + ndjson(FRAME, 1) + ndjson(1000, 2),
        # A line whose bytes end exactly at a frame's end, its "\n" the next frame's
        # first byte; the last line has no "\n".
        "line_ends_at_boundary": ndjson(FRAME - 7, 3)
        + b"ABCDEFG"
        + b"\n"
        + ndjson(FRAME - 1, 4)
        + ndjson(3000, 5)
        + b"no newline at the end",
        # CRLF: "\r" the last byte of frame 0 and "\n" the first of frame 1; then
        # "\r\n" as the last two bytes of frame 1.
        "crlf": crlf(FRAME + 1, 6) + crlf(FRAME - 1, 7) + crlf(5000, 8),
        # CRLF again, the last line ended by "\r" alone.
        "crlf_last_cr": crlf(FRAME + 3, 14) + b"the end\r",
        # Empty lines, at the start, across a boundary and as the line starting
        # right at a frame start.
        "empty_lines": b"\n\n"
        + ndjson(FRAME - 5, 9)
        + b"\n" * 9
        + ndjson(FRAME - 4, 10)
        + b"\n\n\n\n"
        + ndjson(2000, 11),
        # One line longer than two frames (frame 1 holds nothing else).
        "long_line": ndjson(1000, 12) + b"L" * (9 * MiB) + b"\n" + ndjson(1000, 13),
        # A whole object that is one line, without "\n".
        "one_line_no_newline": b"M" * (9 * MiB + 3),
        # A small one-frame object, and an empty one.
        "small": b"a\nb\n\n\r\nc",
        "empty": b"",
    }


@pytest.fixture(scope="module")
def edges(s3_store, edge_data):
    where = prefix("edges")
    for name, data in edge_data.items():
        s4io.put(s3_store, where + name, data, level=1)
    return where


def test_edge_objects_are_as_written(s3_store, edges, edge_data):
    # The objects are laid out as the cases need: 4 MiB frames with a sidecar.
    assert edge_data["newline_then_boundary"][FRAME - 1 : FRAME + 1] != b"\n\n"
    assert edge_data["newline_then_boundary"][FRAME - 1] == ord("\n")
    assert edge_data["line_ends_at_boundary"][FRAME - 7 : FRAME + 1] == b"ABCDEFG\n"
    assert edge_data["crlf"][FRAME - 1 : FRAME + 1] == b"\r\n"
    assert edge_data["crlf"][2 * FRAME - 2 : 2 * FRAME] == b"\r\n"
    assert edge_data["empty_lines"][FRAME - 3 : FRAME + 3] == b"\n" * 6
    for name in ("newline_then_boundary", "crlf", "long_line", "one_line_no_newline"):
        info = s4io.stat(s3_store, edges + name)
        assert (info["kind"], info["sidecar"]) == ("framed", "object"), name
        assert info["frames"] == 3, name


@pytest.mark.parametrize("partition_bytes", ["1", "5m", "1g"])
def test_lines_at_frame_and_partition_boundaries(spark, s3, edges, edge_data, partition_bytes):
    df = read(spark, url(edges), s3, partitionBytes=partition_bytes)
    got = by_path(df.toArrow())
    expected = {url(edges + name): texts(data) for name, data in edge_data.items()}
    expected = {path: lines for path, lines in expected.items() if lines}
    assert sorted(got) == sorted(expected)
    for path, lines in expected.items():
        assert len(got[path]) == len(lines), path
        assert got[path] == lines, path


def test_an_empty_object_alone_gives_no_rows(spark, s3, edges):
    # A prefix whose only object is empty: no piece to read, zero rows.
    assert read(spark, url(edges + "empty"), s3).count() == 0
    assert read(spark, url(edges + "empty"), s3).collect() == []
    rows = read(spark, url(edges + "empty"), s3, mode="objects").collect()
    assert [(r.path, r.length, bytes(r.content)) for r in rows] == [(url(edges + "empty"), 0, b"")]


def test_binary_lines(spark, s3, edges, edge_data):
    df = read(spark, url(edges + "crlf"), s3, binary="true", partitionBytes="1")
    assert df.schema.simpleString() == "struct<value:binary,path:string>"
    values = [bytes(v) for v in df.toArrow().column("value").to_pylist()]
    assert values == lines_of(edge_data["crlf"])


# --- 3. Codecs and layouts --------------------------------------------------------


@pytest.fixture(scope="module")
def dictionary():
    samples = [json_event(i) for i in range(3000)]
    return s4_codec.train_dictionary(samples, size=4096)


def multipart(store, key: str, data: bytes, codec: str = "cpu-zstd") -> dict:
    with s4io.open(store, key, "wb", codec=codec, part_size=5 * MiB) as f:
        for at in range(0, len(data), 3 * MiB):
            f.write(data[at : at + 3 * MiB])
    return f.result


def framed_with_dictionary(s3_client, key: str, data: bytes, dictionary: bytes) -> None:
    """A cpu-zstd-dict object of 5 MiB frames with its sidecar, as the
    gateway's multipart upload stores one (S4Writer takes no dictionary)."""
    ledger = s4_codec._internal.MultipartLedger("cpu-zstd-dict", 3, dictionary=dictionary)
    body = b"".join(
        ledger.encode_part(data[at : at + 5 * MiB]) for at in range(0, len(data), 5 * MiB)
    )
    # The ledger's metadata does not name the dictionary; the gateway's does.
    dict_id = s4_codec._internal.CpuZstdDict(dictionary).s4_dict_id
    metadata = {**ledger.complete_metadata(), "s4-dict-id": dict_id}
    put = s3_client.put_object(Bucket=S3_BUCKET, Key=key, Body=body, Metadata=metadata)
    sidecar = ledger.sidecar(put["ETag"].strip('"'))
    s3_client.put_object(Bucket=S3_BUCKET, Key=key + ".s4index", Body=sidecar)


@pytest.fixture(scope="module")
def layouts(s3_store, s3_client, dictionary):
    """Objects of every codec and layout, under one prefix: {name: data}."""
    where = prefix("layouts")
    data = {
        "gzip": ndjson(10 * MiB + 11, 20),
        "gzip_over_a_read_unit": ndjson(40 * MiB + 5, 21),
        "passthrough": ndjson(6 * MiB + 3, 22),
        "dictionary": ndjson(10 * MiB + 1, 23),
        "dictionary_framed": ndjson(12 * MiB + 5, 29),
        "multipart": ndjson(12 * MiB + 9, 24),
        "multipart_gzip": crlf(11 * MiB, 25) + b"last",
        "multipart_no_sidecar": ndjson(13 * MiB, 26),
        "small_zstd": ndjson(3000, 27),
        "plain": ndjson(3 * MiB, 28),
    }
    s4io.put(s3_store, where + "gzip", data["gzip"], "cpu-gzip")
    s4io.put(s3_store, where + "gzip_over_a_read_unit", data["gzip_over_a_read_unit"], "cpu-gzip")
    s4io.put(s3_store, where + "passthrough", data["passthrough"], "passthrough")
    s4io.put(
        s3_store,
        where + "dictionary",
        data["dictionary"],
        "cpu-zstd-dict",
        dictionary=dictionary,
    )
    framed_with_dictionary(
        s3_client, where + "dictionary_framed", data["dictionary_framed"], dictionary
    )
    for name, codec in (("multipart", "cpu-zstd"), ("multipart_gzip", "cpu-gzip")):
        result = multipart(s3_store, where + name, data[name], codec)
        assert result["parts"] == 3 and result["sidecar"]
    multipart(s3_store, where + "multipart_no_sidecar", data["multipart_no_sidecar"])
    s3_client.delete_object(Bucket=S3_BUCKET, Key=where + "multipart_no_sidecar.s4index")
    s4io.put(s3_store, where + "small_zstd", data["small_zstd"])
    s3_client.put_object(Bucket=S3_BUCKET, Key=where + "plain", Body=data["plain"])
    kinds = {name: s4io.stat(s3_store, where + name) for name in data}
    assert kinds["gzip"]["kind"] == "whole" and kinds["passthrough"]["kind"] == "whole"
    assert kinds["dictionary"]["metadata"]["s4-dict-id"] and kinds["dictionary"]["kind"] == "whole"
    assert kinds["dictionary_framed"]["metadata"]["s4-dict-id"]
    assert kinds["dictionary_framed"]["frames"] == 3
    assert kinds["gzip_over_a_read_unit"]["kind"] == "whole"
    assert kinds["multipart_gzip"]["frames"] == 3
    assert kinds["multipart"]["sidecar"] == "object" and kinds["multipart"]["frames"] == 3
    assert kinds["multipart_no_sidecar"]["sidecar"] == "walked"
    assert kinds["plain"]["kind"] == "plain"
    return where, data


def test_every_codec_and_layout_as_lines(spark, s3, layouts):
    where, data = layouts
    got = by_path(read(spark, url(where), s3, partitionBytes="1m").toArrow())
    assert sorted(got) == sorted(url(where + name) for name in data)
    for name, body in data.items():
        assert got[url(where + name)] == texts(body), name


def test_every_codec_and_layout_as_objects(spark, s3, layouts, s3_store):
    where, data = layouts
    df = read(spark, url(where), s3, mode="objects", partitionBytes="1m")
    assert df.schema.simpleString() == (
        "struct<path:string,modificationTime:timestamp,length:bigint,content:binary>"
    )
    rows = {r.path: r for r in df.collect()}
    assert sorted(rows) == sorted(url(where + name) for name in data)
    for name, body in data.items():
        row = rows[url(where + name)]
        assert row.length == len(body), name
        assert bytes(row.content) == body, name
        modified = s4io.stat(s3_store, where + name)["last_modified"]
        assert abs(row.modificationTime.timestamp() - modified.timestamp()) < 1, name


# --- 4. What a path names --------------------------------------------------------


@pytest.fixture(scope="module")
def mixed(s3_store, s3_client):
    """A prefix with data objects among sidecars, dictionaries and markers."""
    where = prefix("mixed")
    data = {
        "a.ndjson": ndjson(9 * MiB, 30),  # framed, with a sidecar
        "b.ndjson": ndjson(2000, 31),
        "c.txt": ndjson(1500, 32),
        "sub/d.ndjson": ndjson(1000, 33),
    }
    for name, body in data.items():
        s4io.put(s3_store, where + name, body)
    for name in ("_SUCCESS", ".hidden", "sub/_temporary_marker", ".s4dict/0123abcd"):
        s3_client.put_object(Bucket=S3_BUCKET, Key=where + name, Body=b"not data\xff")
    # Folder markers, as the S3 console and Hadoop's S3A make them.
    for name in ("sub/", "empty-folder/"):
        s3_client.put_object(Bucket=S3_BUCKET, Key=where + name, Body=b"")
    keys = {
        o["Key"][len(where) :]
        for o in s3_client.list_objects_v2(Bucket=S3_BUCKET, Prefix=where)["Contents"]
    }
    assert "a.ndjson.s4index" in keys and ".s4dict/0123abcd" in keys and "sub/" in keys
    return where, data


def test_a_prefix_lists_only_data_objects(spark, s3, mixed):
    where, data = mixed
    for path in (url(where), url(where.rstrip("/"))):
        got = by_path(read(spark, path, s3, partitionBytes="4m").toArrow())
        assert sorted(got) == sorted(url(where + name) for name in data)
        for name, body in data.items():
            assert got[url(where + name)] == texts(body)
    rows = read(spark, url(where), s3, mode="objects").collect()
    assert sorted((r.path, bytes(r.content)) for r in rows) == sorted(
        (url(where + name), body) for name, body in data.items()
    )


def test_a_glob_and_a_single_key(spark, s3, mixed):
    where, data = mixed
    df = read(spark, url(where + "*.ndjson"), s3)
    got = by_path(df.toArrow())
    assert sorted(got) == [url(where + "a.ndjson"), url(where + "b.ndjson")]
    assert got[url(where + "b.ndjson")] == texts(data["b.ndjson"])
    got = by_path(read(spark, url(where + "*/*.ndjson"), s3).toArrow())
    assert sorted(got) == [url(where + "sub/d.ndjson")]
    got = by_path(read(spark, url(where + "c.txt"), s3).toArrow())
    assert got == {url(where + "c.txt"): texts(data["c.txt"])}
    rows = read(spark, url(where + "b.ndjson"), s3, mode="objects").collect()
    assert [(r.path, bytes(r.content)) for r in rows] == [
        (url(where + "b.ndjson"), data["b.ndjson"])
    ]
    # Several paths at once.
    several = (
        spark.read.format("s4").options(**s3).load([url(where + "b.ndjson"), url(where + "c.txt")])
    )
    assert sorted(by_path(several.toArrow())) == [url(where + "b.ndjson"), url(where + "c.txt")]


# --- 5. Damaged objects ------------------------------------------------------------


def test_a_corrupt_frame_fails_the_job_naming_it(spark, s3, s3_client):
    key = prefix("corrupt") + "events.ndjson"
    data = ndjson(9 * MiB + 100, 40)
    obj = s4_codec.encode_s4_object(data, level=1)
    entries = s4_codec.decode_index(obj["sidecar"])["entries"]
    assert len(entries) == 3
    body = bytearray(obj["body"])
    body[entries[1]["compressed_offset"] + entries[1]["compressed_size"] // 2] ^= 0x5A
    etag = s3_client.put_object(
        Bucket=S3_BUCKET, Key=key, Body=bytes(body), Metadata=obj["metadata"]
    )["ETag"].strip('"')
    sidecar = s4_codec.bind_index(obj["sidecar"], len(body), etag)
    s3_client.put_object(Bucket=S3_BUCKET, Key=key + ".s4index", Body=sidecar)
    for options in ({"partitionBytes": "1"}, {}, {"mode": "objects"}):
        text = failure(lambda o=options: read(spark, url(key), s3, **o).collect())
        assert "S4CrcMismatchError" in text or "S4FrameError" in text, text[-3000:]
        assert key in text and "frame" in text, text[-3000:]


def test_a_stale_sidecar_is_refused(spark, s3, s3_store, s3_client):
    key = prefix("stale") + "events.ndjson"
    s4io.put(s3_store, key, ndjson(9 * MiB, 41), level=1)
    old = bytes(s3_store.get(key + ".s4index").bytes())
    # Another object of the same original size; the first one's sidecar put back.
    s4io.put(s3_store, key, ndjson(9 * MiB, 42), level=1)
    s3_store.put(key + ".s4index", old)
    text = failure(lambda: read(spark, url(key), s3).collect())
    assert "S4IndexError" in text and key in text and "stale" in text, text[-3000:]
    # The same stored size, another ETag: the sidecar is bound to the body's ETag.
    key = prefix("stale") + "same-size.ndjson"
    s4io.put(s3_store, key, ndjson(9 * MiB, 43), level=1)
    raw = s3_client.get_object(Bucket=S3_BUCKET, Key=key)
    body = bytearray(raw["Body"].read())
    body[-1] ^= 0x01  # in the last frame's payload (its CRC would catch it, if read)
    s3_client.put_object(Bucket=S3_BUCKET, Key=key, Body=bytes(body), Metadata=raw["Metadata"])
    text = failure(lambda: read(spark, url(key), s3, partitionBytes="1").collect())
    assert "S4IndexError" in text and key in text and "stale" in text, text[-3000:]


def test_a_wrong_dictionary_is_refused(spark, s3, s3_store, s3_client):
    key = prefix("wrong-dict") + "events.ndjson"
    samples = [json_event(i) + b" %s" % RUN.encode() for i in range(5000, 8000)]
    right = s4_codec.train_dictionary(samples, size=4096)
    other = s4_codec.train_dictionary(samples[1000:], size=2048)
    result = s4io.put(s3_store, key, ndjson(5 * MiB, 43), "cpu-zstd-dict", dictionary=right)
    dict_id = result["metadata"]["s4-dict-id"]
    s3_client.put_object(Bucket=S3_BUCKET, Key=f".s4dict/{dict_id}", Body=other)
    text = failure(lambda: read(spark, url(key), s3).collect())
    assert "S4IoError" in text and "dictionary mismatch" in text, text[-3000:]


# --- 6. Writing ----------------------------------------------------------------------


def only_the_abort_marker(found) -> bool:
    """A failed job leaves one empty hidden marker, `_s4-aborted-<job>`, for its
    tasks still writing; nothing else."""
    names = list(found)
    return len(names) == 1 and names[0].rsplit("/", 1)[-1].startswith("_s4-aborted-")


def listing(s3_client, where: str) -> dict[str, int]:
    """{key under `where`: size}."""
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET, Prefix=where)
    return {o["Key"][len(where) :]: o["Size"] for p in pages for o in p.get("Contents", [])}


def test_write_lines_then_read_them_back(spark, s3, s3_store, s3_client):
    where = prefix("write-lines")
    values = [f"row {i} " + "é" * (i % 7) + "x" * (i % 50) for i in range(5000)]
    # Uneven partitions, one of them empty (that task writes no object).
    chunks = [values[:1000], [], values[1000:4200], values[4200:]]
    rdd = spark.sparkContext.parallelize(chunks, len(chunks)).flatMap(lambda c: [(v,) for v in c])
    df = spark.createDataFrame(rdd, "value string")
    assert [len(c) for c in df.rdd.glom().collect()] == [len(c) for c in chunks]
    df.write.format("s4").options(**s3).option("codec", "cpu-zstd").mode("append").save(url(where))
    keys = listing(s3_client, where)
    assert keys["_SUCCESS"] == 0
    parts = sorted(k for k in keys if k.endswith(".txt"))
    written = [task for task, chunk in enumerate(chunks) if chunk]
    assert len(parts) == len(written), keys
    for task, key in zip(written, parts, strict=True):
        assert key.startswith(f"part-{task:05d}-") and key.endswith(".txt")
        expected = ("\n".join(chunks[task]) + "\n").encode()
        assert s4io.get(s3_store, where + key) == expected
        raw = s3_client.get_object(Bucket=S3_BUCKET, Key=where + key)
        body, metadata = raw["Body"].read(), raw["Metadata"]
        assert metadata["s4-codec"] == "cpu-zstd"
        assert s4_codec.decode_s4_object(body, metadata) == expected  # the gateway's format
    back = read(spark, url(where), s3).toArrow().column("value").to_pylist()
    assert sorted(back) == sorted(values)


def test_write_binary_lines_and_gzip(spark, s3, s3_store, s3_client):
    where = prefix("write-binary")
    values = [b"\x00\x01 raw %d" % i for i in range(300)]
    df = spark.createDataFrame([(v,) for v in values], "payload binary").coalesce(1)
    df.write.format("s4").options(**s3, codec="cpu-gzip", level="9").mode("append").save(url(where))
    [key] = [k for k in listing(s3_client, where) if k.endswith(".txt")]
    expected = b"\n".join(values) + b"\n"
    assert s4io.get(s3_store, where + key) == expected
    assert s4io.stat(s3_store, where + key)["metadata"]["s4-codec"] == "cpu-gzip"
    # The level reached the codec: the body is level 9's, not the default's.
    body = s3_client.get_object(Bucket=S3_BUCKET, Key=where + key)["Body"].read()
    at_9 = s4_codec.encode_s4_object(expected, "cpu-gzip", 9)["body"]
    assert body == at_9 != s4_codec.encode_s4_object(expected, "cpu-gzip", 3)["body"]


def test_write_objects_then_read_them_back(spark, s3, s3_store, s3_client):
    where = prefix("write-objects")
    objects = {f"dir/{i}.json": json_event(i) * (1 + i * 5000) for i in range(6)}
    objects["empty.bin"] = b""
    df = spark.createDataFrame(list(objects.items()), "path string, content binary")
    df.write.format("s4").options(**s3, mode="objects").mode("append").save(url(where))
    keys = listing(s3_client, where)
    assert "_SUCCESS" in keys
    for name, body in objects.items():
        assert s4io.get(s3_store, where + name) == body
    rows = read(spark, url(where), s3, mode="objects").collect()
    assert {r.path: bytes(r.content) for r in rows} == {
        url(where + name): body for name, body in objects.items()
    }


def test_overwrite_replaces_what_was_there(spark, s3, s3_store, s3_client):
    where = prefix("overwrite")
    s4io.put(s3_store, where + "old.ndjson", ndjson(9 * MiB, 50))
    s4io.put(s3_store, where + "nested/old.ndjson", ndjson(100, 51))

    def save(values, mode):
        df = spark.createDataFrame([(v,) for v in values], "value string").coalesce(1)
        df.write.format("s4").options(**s3).mode(mode).save(url(where))

    save(["first", "run"], "append")
    assert len([k for k in listing(s3_client, where) if k.endswith(".txt")]) == 1
    save(["second", "run", "here"], "overwrite")
    keys = listing(s3_client, where)
    data = [k for k in keys if not k.startswith("_")]
    assert len(data) == 1 and data[0].startswith("part-"), keys
    assert s4io.get(s3_store, where + data[0]) == b"second\nrun\nhere\n"
    assert "_SUCCESS" in keys


def test_a_big_write_goes_multipart(spark, s3, s3_store, s3_client):
    where = prefix("write-big")
    df = spark.range(0, 400_000, numPartitions=1).selectExpr(
        "concat('row-', id, '-', repeat(char(97 + id % 26), id % 37)) as value"
    )
    df.write.format("s4").options(**s3, part_size="5m").mode("append").save(url(where))
    [key] = [k for k in listing(s3_client, where) if k.endswith(".txt")]
    info = s4io.stat(s3_store, where + key)
    assert info["size"] > 10 * MiB and info["sidecar"] == "object"
    assert info["metadata"]["s4-multipart"] == "true"
    assert info["frames"] == -(-info["size"] // (5 * MiB))  # parts of part_size, not 8 MiB
    expected = b"".join(
        b"row-%d-%s\n" % (i, bytes([97 + i % 26]) * (i % 37)) for i in range(400_000)
    )
    assert s4io.get(s3_store, where + key) == expected
    back = read(spark, url(where), s3, partitionBytes="5m")
    assert back.rdd.getNumPartitions() >= 2
    assert back.count() == 400_000


# --- 7. A failed write leaves nothing ------------------------------------------------


def failing_write(spark, s3, where: str, mode: str, rows: int, wait_for: int = 0) -> str:
    """Writes `rows` ids from partition 0, as lines or as objects, while
    partition 1 fails: once `wait_for` data objects are under `where` (and a
    second more), else after 1 s. The error's text."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    def name(i):
        if i < 0:
            import boto3

            client = boto3.client(
                "s3",
                endpoint_url=s3["endpoint_url"],
                region_name="us-east-1",
                aws_access_key_id=s3["access_key_id"],
                aws_secret_access_key=s3["secret_access_key"],
            )
            deadline = time.monotonic() + 60
            while wait_for and time.monotonic() < deadline:
                listed = client.list_objects_v2(Bucket=S3_BUCKET, Prefix=where)
                keys = [o["Key"] for o in listed.get("Contents", [])]
                if len([k for k in keys if k.endswith(".txt")]) >= wait_for:
                    break
                time.sleep(0.1)
            time.sleep(1)
            raise RuntimeError("this task fails on purpose")
        return f"{i}.txt"

    chunks = spark.sparkContext.parallelize([[*range(rows)], [-1]], 2)
    ids = spark.createDataFrame(chunks.flatMap(lambda c: [(i,) for i in c]), "id long")
    df = ids.select(
        F.udf(name, StringType())("id").alias("path"),
        F.expr("cast(concat('payload ', id) as binary)").alias("content"),
    )
    if mode == "lines":
        df = df.select(F.col("path").alias("value"))
    return failure(
        lambda: df.write.format("s4").options(**s3, mode=mode).mode("append").save(url(where))
    )


@pytest.mark.parametrize("mode", ["lines", "objects"])
def test_an_aborted_write_deletes_what_committed_tasks_wrote(spark, s3, s3_client, mode):
    where = prefix(f"abort-committed-{mode}")
    # Partition 1 fails once partition 0 has written (one line object, or 20 objects).
    rows = 20
    text = failing_write(spark, s3, where, mode, rows, wait_for=1 if mode == "lines" else rows)
    assert "this task fails on purpose" in text
    assert only_the_abort_marker(listing(s3_client, where))


def test_an_aborted_write_leaves_no_objects_of_a_task_still_writing(spark, s3, s3_client):
    where = prefix("abort-running-objects")
    # Partition 0 still has most of its 300 objects to write when partition 1 fails.
    text = failing_write(spark, s3, where, "objects", rows=300)
    assert "this task fails on purpose" in text
    time.sleep(4)  # partition 0 has seen the marker by now
    assert only_the_abort_marker(listing(s3_client, where))


# --- 8. Bytes fetched ----------------------------------------------------------------


@pytest.fixture(scope="module")
def range_server():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from s3_range_server import RangeServer
    finally:
        sys.path.remove(str(BENCHMARKS))
    with RangeServer() as server:
        server.create_bucket("counted")
        yield server


def range_options(server) -> dict[str, str]:
    return {
        "endpoint_url": server.endpoint,
        "region": "us-east-1",
        "access_key_id": "x",
        "secret_access_key": "y",
    }


def test_reads_fetch_about_the_stored_bytes(spark, range_server, big):
    server, options = range_server, range_options(range_server)
    store = obstore_store.S3Store(
        "counted",
        endpoint=server.endpoint,
        region="us-east-1",
        access_key_id="x",
        secret_access_key="y",
        client_options={"allow_http": True},
    )
    gzipped = ndjson(40 * MiB, 60)
    parts = ndjson(21 * MiB, 61)
    s4io.put(store, "big.ndjson", big, level=1)
    s4io.put(store, "gzip.ndjson", gzipped, "cpu-gzip")  # one payload over a read unit
    multipart(store, "multipart.ndjson", parts)  # 5 MiB frames, padded to 5 MiB stored
    objects = server.buckets["counted"]
    for key, data, size in (
        ("big.ndjson", big, "8m"),
        ("big.ndjson", big, "1"),
        ("gzip.ndjson", gzipped, "8m"),
        ("multipart.ndjson", parts, "1"),
    ):
        sidecar = objects.get(key + ".s4index")
        if sidecar is None:
            needed = len(objects[key].body)
        else:  # the frames (not the padding) and the sidecar
            entries = s4_codec.decode_index(sidecar.body)["entries"]
            needed = sum(e["compressed_size"] for e in entries) + len(sidecar.body)
        server.reset_counters()
        df = read(spark, f"s3://counted/{key}", options, partitionBytes=size)
        assert df.count() == len(lines_of(data))
        assert needed <= server.bytes_served <= 1.1 * needed, (key, size, server.bytes_served)


# --- 9. Bad input ----------------------------------------------------------------------


def test_missing_things_fail_at_planning_naming_the_path(spark, s3):
    sc = spark.sparkContext
    for path in (
        "s3://no-such-bucket-s4-tests/prefix/",
        url(prefix("nothing-here")),
        url(prefix("nothing-here") + "key.ndjson"),
        url(prefix("nothing-here") + "*.ndjson"),
    ):
        group = f"planning-{uuid.uuid4().hex}"
        sc.setJobGroup(group, "must fail before any job")
        started = time.monotonic()
        try:
            text = failure(lambda p=path: read(spark, p, s3).collect())
        finally:
            sc.setLocalProperty("spark.jobGroup.id", None)
        assert time.monotonic() - started < 60
        assert path in text, text[-3000:]
        assert sc.statusTracker().getJobIdsForGroup(group) == []  # no job, no task


def test_a_missing_local_directory_is_not_made(spark, tmp_path):
    for path in (tmp_path / "missing" / "sub" / "*.ndjson", tmp_path / "gone" / "a.ndjson"):
        text = failure(lambda p=path: read(spark, str(p), {}).collect())
        assert str(path) in text and "FileNotFoundError" in text, text[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # a read makes no directory


def test_an_unreachable_endpoint_fails_at_planning(spark, s3):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = {**s3, "endpoint_url": f"http://127.0.0.1:{port}"}
    started = time.monotonic()
    text = failure(lambda: read(spark, url(prefix("unreachable")), options).collect())
    assert time.monotonic() - started < 120  # obstore's retries, not a hang
    assert url(prefix("unreachable")) in text and "ObjectStoreError" in text, text[-3000:]


def test_bad_options_name_the_option(spark, s3, edges):
    target = url(edges + "small")
    cases = [
        ({"partitonBytes": "1"}, "partitonbytes"),
        ({"binary": "yes"}, "binary"),
        ({"partitionBytes": "lots"}, "partitionBytes"),
        ({"partitionBytes": "0"}, "partitionBytes"),
        ({"mode": "rows"}, "mode"),
        ({"codec": "cpu-zstd"}, "codec"),  # a write option
    ]
    for options, name in cases:
        text = failure(lambda o=options: read(spark, target, {**s3, **o}).collect())
        assert name.lower() in text.lower(), (options, text[-2000:])
    text = failure(
        lambda: spark.read.format("s4").schema("x int").options(**s3).load(target).collect()
    )
    assert "schema" in text
    df = spark.createDataFrame([("a",)], "value string")
    for options, name in [
        ({"codec": "lz4"}, "codec"),
        ({"level": "high"}, "level"),
        ({"part_size": "1m"}, "part_size"),
        ({"partitionBytes": "1m"}, "partitionbytes"),  # a read option
        ({"mode": "rows"}, "mode"),
    ]:
        save = df.write.format("s4").options(**s3, **options).mode("append")
        text = failure(lambda s=save: s.save(url(prefix("bad-write"))))
        assert name.lower() in text.lower(), (options, text[-2000:])
    bad_columns = spark.createDataFrame([(1, 2)], "a long, b long")
    text = failure(
        lambda: (
            bad_columns.write.format("s4")
            .options(**s3)
            .mode("append")
            .save(url(prefix("bad-write")))
        )
    )
    assert "mode 'lines'" in text
    assert "needs a path" in failure(lambda: spark.read.format("s4").load().collect())


# --- 10. Local directories -------------------------------------------------------------


@pytest.fixture(scope="module")
def local_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("s4-local")
    store = obstore_store.LocalStore(str(root))
    data = {"a.ndjson": ndjson(9 * MiB + 7, 70), "b.ndjson": crlf(3000, 71)}
    for name, body in data.items():
        s4io.put(store, name, body)
    return root, data


def test_local_directories_by_url_and_path(spark, local_dir):
    root, data = local_dir
    for path in (root.as_uri(), str(root), str(root) + "/"):
        got = by_path(read(spark, path, {}, partitionBytes="1").toArrow())
        assert got == {(root / name).as_uri(): texts(body) for name, body in data.items()}
    got = by_path(read(spark, str(root / "a.ndjson"), {}).toArrow())
    assert got == {(root / "a.ndjson").as_uri(): texts(data["a.ndjson"])}
    got = by_path(read(spark, str(root / "b.*"), {}).toArrow())
    assert got == {(root / "b.ndjson").as_uri(): texts(data["b.ndjson"])}
    df = read(spark, root.as_uri(), {}, binary="true")
    assert df.schema["value"].dataType.simpleString() == "binary"
    got = by_path(df.toArrow())
    assert got[(root / "b.ndjson").as_uri()] == lines_of(data["b.ndjson"])


def test_local_write_then_read(spark, tmp_path):
    out = tmp_path / "written"
    values = [f"v{i}" for i in range(100)]
    df = spark.createDataFrame([(v,) for v in values], "value string").coalesce(1)
    df.write.format("s4").mode("append").save(str(out))
    assert (out / "_SUCCESS").exists()
    back = read(spark, out.as_uri(), {}).toArrow().column("value").to_pylist()
    assert back == values


def test_a_codec_a_directory_cannot_hold_is_refused_before_any_job(spark, tmp_path):
    sc, out = spark.sparkContext, tmp_path / "gz"
    df = spark.createDataFrame([("a",)], "value string")
    group = f"local-gzip-{uuid.uuid4().hex}"
    sc.setJobGroup(group, "must fail before any job")
    try:
        save = df.write.format("s4").option("codec", "cpu-gzip").mode("append")
        text = failure(lambda: save.save(str(out)))
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    assert "cpu-gzip" in text and "LocalStore" in text, text[-3000:]
    assert sc.statusTracker().getJobIdsForGroup(group) == []
    assert not out.exists()


def test_invalid_utf8_names_the_key(spark, local_dir, tmp_path):
    store = obstore_store.LocalStore(str(tmp_path))
    s4io.put(store, "bad.txt", ndjson(9 * MiB, 72) + b"caf\xe9\n" + ndjson(100, 73))
    text = failure(lambda: read(spark, str(tmp_path / "bad.txt"), {}, partitionBytes="1").collect())
    assert "bad.txt" in text and "UTF-8" in text, text[-3000:]
    body = s4io.get(store, "bad.txt")
    rows = read(spark, str(tmp_path / "bad.txt"), {}, binary="true").count()
    assert rows == len(lines_of(body))


def test_a_path_value_names_its_object_again(spark, tmp_path):
    where = tmp_path / "with space"
    s4io.put(obstore_store.LocalStore(str(where), mkdir=True), "a b.txt", b"one\ntwo\n")
    [path] = {r.path for r in read(spark, str(where), {}).collect()}
    assert [r.value for r in read(spark, path, {}).collect()] == ["one", "two"]
