"""Options of s4_codec.arrow that a round trip cannot see: a dropped ``level`` or
``codec`` still decodes, so these compare the cells themselves with the scalar codecs."""

from __future__ import annotations

import pytest
from conftest import json_event, require

import s4_codec
from s4_codec import CpuGzip, CpuZstd

pa = require("pyarrow")
pc = require("pyarrow.compute")
s4a = require("s4_codec.arrow")

VALUES = [json_event(i) * (1 + i % 5) for i in range(300)]
HEADER = s4_codec.FRAME_HEADER_BYTES

# Levels whose output differs from the codec's default (zstd 3, gzip 6) on VALUES.
LEVELS = [("zstd", 19, CpuZstd), ("gzip", 1, CpuGzip)]


def payloads(scalar) -> list[bytes]:
    return [scalar.compress(v)[0] for v in VALUES]


@pytest.mark.parametrize(("codec", "level", "scalar"), LEVELS, ids=[c for c, _, _ in LEVELS])
def test_level_reaches_every_compress_entry_point(codec, level, scalar):
    expected = payloads(scalar(level))
    assert expected != payloads(scalar()), "pick a level whose output differs from the default"
    arr = pa.array(VALUES)
    raw = s4a.compress(arr, codec=codec, level=level, format="raw")
    assert raw.to_pylist() == expected
    cells = s4a.compress(arr, codec=codec, level=level).to_pylist()
    assert [c[HEADER:] for c in cells] == expected
    table = pa.table({"id": range(len(VALUES)), "blob": arr})
    packed = s4a.compress_table(table, "blob", codec=codec, level=level, format="raw")
    assert packed.column("blob").to_pylist() == expected
    batches = s4a.compress_table(
        iter(table.to_batches(max_chunksize=100)), "blob", codec=codec, level=level
    )
    assert [c[HEADER:] for b in batches for c in b.column("blob").to_pylist()] == expected
    s4a.register_compute_functions()
    computed = pc.call_function("s4_compress", [arr, codec, level]).to_pylist()
    assert [c[HEADER:] for c in computed] == expected


def test_codec_reaches_the_table_helpers():
    table = pa.table({"blob": VALUES})
    packed = s4a.compress_table(table, "blob", codec="gzip")
    info = s4a.frame_info(packed.column("blob")).to_pylist()
    assert {i["codec"] for i in info} == {"cpu-gzip"}
    assert [c[HEADER:] for c in packed.column("blob").to_pylist()] == payloads(CpuGzip())


def test_frame_info_on_error():
    good = s4a.compress(pa.array([b"x" * 100]))[0].as_py()
    cells = pa.array([good, b"garbage", None])
    with pytest.raises(s4_codec.S4FrameError, match="row 1"):
        s4a.frame_info(cells)
    info = s4a.frame_info(cells, on_error="null").to_pylist()
    assert info[1:] == [None, None]
    assert info[0]["codec"] == "cpu-zstd" and info[0]["original_size"] == 100
    chunked = s4a.frame_info(pa.chunked_array([cells]), on_error="null")
    assert chunked.to_pylist() == info


def test_table_helpers_keep_metadata_and_other_columns():
    field = pa.field("blob", pa.binary(), metadata={b"role": b"payload"})
    schema = pa.schema([pa.field("id", pa.int64()), field], metadata={b"origin": b"test"})
    table = pa.table({"id": range(len(VALUES)), "blob": VALUES}, schema=schema)
    packed = s4a.compress_table(table, "blob")
    assert packed.schema.metadata == {b"origin": b"test"}
    assert packed.schema.field("blob").metadata == {b"role": b"payload"}
    assert packed.column("id").equals(table.column("id"))
    back = s4a.decompress_table(packed, "blob")
    assert back.equals(table, check_metadata=True)


def test_table_helpers_transform_every_named_column():
    table = pa.table({"a": VALUES, "id": range(len(VALUES)), "b": [v[::-1] for v in VALUES]})
    packed = s4a.compress_table(table, ["b", "a"], codec="gzip")
    for name in ("a", "b"):
        expected = s4a.compress(table.column(name), codec="gzip")
        assert packed.column(name).to_pylist() == expected.to_pylist(), name
    assert packed.column("id").equals(table.column("id"))
    assert s4a.decompress_table(packed, ["a", "b"]).equals(table)
