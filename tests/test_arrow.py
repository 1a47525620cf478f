"""Column kernels through the Arrow C Data Interface (s4_codec.arrow)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import json_event, require

import s4_codec
from s4_codec import CpuGzip, CpuZstd

pa = require("pyarrow")
pc = require("pyarrow.compute")
s4a = require("s4_codec.arrow")

MiB = 1 << 20

VALUES = [json_event(i) * (1 + i % 5) for i in range(300)]
VALUES[7] = None
VALUES[8] = b""

BYTE_TYPES = [pa.binary(), pa.large_binary(), pa.binary_view()]
STRING_TYPES = [pa.string(), pa.large_string(), pa.string_view()]
LAYOUT = {
    pa.binary(): pa.binary(),
    pa.large_binary(): pa.large_binary(),
    pa.binary_view(): pa.binary_view(),
    pa.string(): pa.binary(),
    pa.large_string(): pa.large_binary(),
    pa.string_view(): pa.binary_view(),
}


@pytest.mark.parametrize("typ", BYTE_TYPES, ids=str)
@pytest.mark.parametrize("codec", ["zstd", "gzip", "passthrough"])
@pytest.mark.parametrize("fmt", ["s4", "raw"])
def test_round_trip_binary_types(typ, codec, fmt):
    arr = pa.array(VALUES, type=typ)
    compressed = s4a.compress(arr, codec=codec, format=fmt)
    assert isinstance(compressed, pa.Array)
    assert compressed.type == typ
    assert compressed.null_count == 1 and compressed[7].as_py() is None
    restored = s4a.decompress(compressed, format=fmt, codec=None if fmt == "s4" else codec)
    assert restored.type == typ
    assert restored.to_pylist() == VALUES


@pytest.mark.parametrize("typ", STRING_TYPES, ids=str)
def test_strings_compress_to_binary_and_back(typ):
    texts = [v.decode() if v is not None else None for v in VALUES]
    compressed = s4a.compress(pa.array(texts, type=typ))
    assert compressed.type == LAYOUT[typ]
    back = s4a.decompress(compressed, as_string=True)
    assert (
        pa.types.is_string(back.type)
        or pa.types.is_large_string(back.type)
        or (pa.types.is_string_view(back.type))
    )
    assert back.to_pylist() == texts


def test_invalid_utf8_with_as_string():
    compressed = s4a.compress(pa.array([b"ok", b"\xff\xfe", None]))
    with pytest.raises(ValueError, match="^row 1: decompressed value is not valid UTF-8") as caught:
        s4a.decompress(compressed, as_string=True)
    assert (caught.value.row, caught.value.frame) == (1, None)
    out = s4a.decompress(compressed, as_string=True, on_error="null")
    assert out.to_pylist() == ["ok", None, None]


def test_sliced_arrays_are_honoured():
    arr = pa.array(VALUES)[13:250]
    compressed = s4a.compress(arr)
    assert compressed.to_pylist() == s4a.compress(pa.array(VALUES[13:250])).to_pylist()
    assert s4a.decompress(compressed[5:100]).to_pylist() == VALUES[18:113]
    assert s4a.crc32c(arr).to_pylist() == [
        None if v is None else s4_codec.crc32c(v) for v in VALUES[13:250]
    ]


def test_chunked_arrays_stay_chunked():
    chunked = pa.chunked_array([VALUES[:100], VALUES[100:], []], type=pa.large_binary())
    compressed = s4a.compress(chunked, codec="gzip")
    assert isinstance(compressed, pa.ChunkedArray)
    assert compressed.type == pa.large_binary()
    assert s4a.decompress(compressed).to_pylist() == VALUES


def test_empty_and_all_null_arrays():
    for arr in (pa.array([], pa.binary()), pa.array([None, None], pa.binary())):
        out = s4a.compress(arr)
        assert len(out) == len(arr) and out.null_count == arr.null_count
        assert s4a.decompress(out).equals(arr)


def test_empty_body_cell_decodes_to_empty_value():
    assert s4a.decompress(pa.array([b"", None])).to_pylist() == [b"", None]


def test_s4_cells_match_scalar_api_and_frame_info():
    arr = pa.array(VALUES)
    for codec, scalar in (("zstd", CpuZstd(3)), ("gzip", CpuGzip(6))):
        cells = s4a.compress(arr, codec=codec)
        info = s4a.frame_info(cells).to_pylist()
        for value, cell, header in zip(VALUES, cells.to_pylist(), info, strict=True):
            if value is None:
                assert cell is None and header is None
                continue
            assert cell[:4] == b"S4F2"
            assert header["codec"] == "cpu-" + codec
            assert header["original_size"] == len(value)
            assert header["compressed_size"] == len(cell) - 28
            assert header["crc32c"] == s4_codec.crc32c(value)
            assert scalar.decompress(cell[28:], len(value), header["crc32c"]) == value
            # and a scalar payload framed by hand decodes as a column cell
            payload, size, crc = scalar.compress(value)
            frame = (
                b"S4F2"
                + (1 if codec == "zstd" else 7).to_bytes(4, "little")
                + size.to_bytes(8, "little")
                + len(payload).to_bytes(8, "little")
                + crc.to_bytes(4, "little")
                + payload
            )
            assert s4a.decompress(pa.array([frame])).to_pylist() == [value]


def test_raw_cells_are_plain_zstd_and_gzip():
    zstandard = require("zstandard")
    arr = pa.array(VALUES)
    dctx = zstandard.ZstdDecompressor()
    for value, cell in zip(VALUES, s4a.compress(arr, format="raw").to_pylist(), strict=True):
        if value is not None:
            assert dctx.decompress(cell) == value
    cells = s4a.compress(arr, codec="gzip", format="raw").to_pylist()
    for value, cell in zip(VALUES, cells, strict=True):
        if value is not None:
            assert gzip.decompress(cell) == value
    foreign = pa.array([gzip.compress(v) if v is not None else None for v in VALUES])
    assert s4a.decompress(foreign, format="raw", codec="gzip").to_pylist() == VALUES


def test_multi_frame_bodies_and_padding_decode():
    a, b = CpuZstd().compress(b"first "), CpuGzip().compress(b"second")
    body = b""
    for codec_id, (payload, size, crc) in ((1, a), (7, b)):
        body += b"S4F2" + codec_id.to_bytes(4, "little") + size.to_bytes(8, "little")
        body += len(payload).to_bytes(8, "little") + crc.to_bytes(4, "little") + payload
        body += b"S4P1" + (3).to_bytes(8, "little") + b"\0\0\0"
    assert s4a.decompress(pa.array([body])).to_pylist() == [b"first second"]
    info = s4a.frame_info(pa.array([body])).to_pylist()[0]
    assert info["codec"] == "mixed" and info["original_size"] == 12
    assert info["crc32c"] == s4_codec.crc32c(b"first second")


def _corrupt(cells, row: int):
    values = cells.to_pylist()
    cell = bytearray(values[row])
    cell[-1] ^= 0x5A
    values[row] = bytes(cell)
    return pa.array(values, type=cells.type)


def test_corrupt_cell_in_100k_rows_reports_its_row():
    values = [json_event(i) for i in range(100_000)]
    cells = _corrupt(s4a.compress(pa.array(values)), 61_234)
    # Flipping the last payload byte corrupts the zstd stream itself.
    with pytest.raises(s4_codec.S4IoError, match="row 61234: io: "):
        s4a.decompress(cells)
    out = s4a.decompress(cells, on_error="null")
    assert out.null_count == 1 and out[61_234].as_py() is None
    assert out[61_233].as_py() == values[61_233]


def test_error_classes_per_fault():
    good = s4a.compress(pa.array([b"x" * 1000]))
    cell = good[0].as_py()
    bad_crc = cell[:24] + bytes([cell[24] ^ 1]) + cell[25:]
    with pytest.raises(s4_codec.S4CrcMismatchError, match="row 1"):
        s4a.decompress(pa.array([cell, bad_crc]))
    truncated = cell[:-3]
    with pytest.raises(s4_codec.S4FrameError, match="row 0"):
        s4a.decompress(pa.array([truncated]))
    gpu = cell[:4] + (2).to_bytes(4, "little") + cell[8:]
    with pytest.raises(s4_codec.S4UnregisteredCodecError):
        s4a.decompress(pa.array([gpu]))
    with pytest.raises(s4_codec.S4IoError):
        s4a.decompress(pa.array([b"not zstd at all"]), format="raw", codec="zstd")


@pytest.mark.parametrize("binary_type", BYTE_TYPES)
def test_a_bad_cell_carries_its_row(binary_type):
    cells = _corrupt(s4a.compress(pa.array(VALUES[:20], binary_type)), 5)
    with pytest.raises(s4_codec.S4IoError, match="^row 5: io: ") as caught:
        s4a.decompress(cells)
    exc = caught.value
    assert (exc.row, exc.frame, exc.stored_range, exc.original_range) == (5, None, None, None)
    # Rows count from a slice's start, and on across a chunked array's chunks.
    sliced = _corrupt(s4a.compress(pa.array(VALUES[:20], binary_type)), 12)[7:]
    with pytest.raises(s4_codec.S4IoError, match="^row 5: ") as caught:
        s4a.decompress(sliced)
    assert caught.value.row == 5
    with pytest.raises(s4_codec.S4IoError, match="^row 8: ") as caught:
        s4a.decompress(pa.chunked_array([cells[:3], sliced]))
    assert caught.value.row == 8


def test_max_output_size_refuses_before_allocating():
    cell = s4a.compress(pa.array([b"y" * 10_000]))
    with pytest.raises(s4_codec.S4ManifestSizeExceedsLimitError, match="row 0"):
        s4a.decompress(cell, max_output_size=9_999)
    assert s4a.decompress(cell, max_output_size=10_000).to_pylist() == [b"y" * 10_000]
    # a forged header claiming 4 GiB in a 60-byte cell
    raw = cell[0].as_py()
    forged = raw[:8] + (4 << 30).to_bytes(8, "little") + raw[16:]
    with pytest.raises(s4_codec.S4ManifestSizeExceedsLimitError):
        s4a.decompress(pa.array([forged]), max_output_size=1 << 20)
    with pytest.raises(s4_codec.S4SizeMismatchError):
        s4a.decompress(pa.array([forged]))
    raw_cells = s4a.compress(pa.array([b"z" * 5000]), format="raw")
    with pytest.raises(s4_codec.S4ManifestSizeExceedsLimitError):
        s4a.decompress(raw_cells, format="raw", codec="zstd", max_output_size=100)


def test_threads_do_not_change_results():
    values = [json_event(i) * (1 + i % 30) for i in range(20_000)]
    arr = pa.array(values)
    one = s4a.compress(arr, threads=1)
    many = s4a.compress(arr, threads=2)
    assert one.equals(many)
    assert s4a.decompress(one, threads=1).equals(s4a.decompress(many, threads=3))


def test_one_million_small_values():
    values = [b"v%07d" % i for i in range(1_000_000)]
    arr = pa.array(values)
    out = s4a.decompress(s4a.compress(arr, format="raw"), format="raw", codec="zstd")
    assert out.equals(arr)


def test_values_of_64_mib():
    big = (json_event(1) * (64 * MiB // len(json_event(1)) + 1))[: 64 * MiB]
    arr = pa.array([big, b"small", big[::-1]], type=pa.large_binary())
    assert s4a.decompress(s4a.compress(arr)).equals(arr)


def test_wrong_types_and_arguments():
    with pytest.raises(TypeError, match="(?i)got int64"):
        s4a.compress(pa.array([1, 2, 3]))
    with pytest.raises(TypeError):
        s4a.crc32c(pa.array([1.0]))
    with pytest.raises(ValueError, match="codec"):
        s4a.compress(pa.array([b"x"]), codec="lz4")
    with pytest.raises(ValueError, match="format"):
        s4a.compress(pa.array([b"x"]), format="zip")
    with pytest.raises(ValueError, match="codec="):
        s4a.decompress(pa.array([b"x"]), format="raw")
    with pytest.raises(ValueError, match="threads"):
        s4a.compress(pa.array([b"x"]), threads=0)
    with pytest.raises(ValueError, match="on_error"):
        s4a.decompress(pa.array([b"x"]), on_error="ignore")


def test_table_helpers():
    table = pa.table({"id": list(range(300)), "blob": VALUES, "note": ["n"] * 300})
    packed = s4a.compress_table(table, ["blob"], codec="gzip")
    assert packed.column_names == table.column_names
    assert packed.column("id").equals(table.column("id"))
    assert s4a.decompress_table(packed, "blob").equals(table)
    batch = table.to_batches()[0]
    packed_batch = s4a.compress_table(batch, "blob")
    assert isinstance(packed_batch, pa.RecordBatch)
    assert s4a.decompress_table(packed_batch, "blob").equals(batch)
    batches = list(s4a.compress_table(iter(table.to_batches(max_chunksize=50)), ["blob"]))
    assert len(batches) == 6
    assert pa.Table.from_batches(list(s4a.decompress_table(iter(batches), "blob"))).equals(table)
    with pytest.raises(ValueError, match="nope"):
        s4a.compress_table(table, ["nope"])
    with pytest.raises(ValueError, match="id"):
        s4a.compress_table(table, ["id"])


def test_polars_series_via_stream_capsule():
    pl = require("polars")
    series = pl.Series("blob", [b"abc", None, b"de" * 100])
    compressed = s4a.compress(series)
    assert isinstance(compressed, pa.ChunkedArray)
    assert s4a.decompress(compressed).to_pylist() == series.to_list()


def test_compute_functions():
    s4a.register_compute_functions()
    s4a.register_compute_functions()  # idempotent
    arr = pa.array(VALUES)
    compressed = pc.call_function("s4_compress", [arr, "gzip", 9])
    assert s4a.frame_info(compressed)[0]["codec"].as_py() == "cpu-gzip"
    assert pc.call_function("s4_decompress", [compressed]).to_pylist() == VALUES
    assert pc.call_function("s4_crc32c", [arr]).equals(s4a.crc32c(arr))
    large = pa.array(VALUES, pa.large_binary())
    assert pc.call_function(
        "s4_decompress_large", [pc.call_function("s4_compress_large", [large, "zstd", 3])]
    ).equals(large)
    view = pa.array(VALUES, pa.binary_view())
    assert pc.call_function("s4_crc32c_view", [view]).equals(s4a.crc32c(arr))


def test_compute_functions_in_dataset_projection(tmp_path):
    ds = require("pyarrow.dataset")
    pq = require("pyarrow.parquet")
    s4a.register_compute_functions()
    for part in range(3):
        chunk = VALUES[part * 100 : (part + 1) * 100]
        table = pa.table({"id": list(range(part * 100, (part + 1) * 100)), "blob": chunk})
        pq.write_table(s4a.compress_table(table, "blob"), tmp_path / f"part{part}.parquet")
    dataset = ds.dataset(tmp_path, format="parquet")
    decoded = pc.Expression._call("s4_decompress", [pc.field("blob")])
    table = dataset.to_table(columns={"id": pc.field("id"), "blob": decoded}, use_threads=True)
    table = table.sort_by("id")
    assert table.column("blob").to_pylist() == VALUES


def test_dictionary_trained_on_a_column():
    values = pa.array([json_event(i) for i in range(5000)])
    dictionary = s4_codec.train_dictionary(values, size=16_384)
    assert dictionary == s4_codec.train_dictionary(values.to_pylist(), size=16_384)
    packed = s4a.compress(values, dictionary=dictionary)
    assert s4a.frame_info(packed)[0]["codec"].as_py() == "cpu-zstd-dict"
    with pytest.raises(s4_codec.S4UnregisteredCodecError, match="row 0"):
        s4a.decompress(packed)
    assert s4a.decompress(packed, dictionary=dictionary).equals(values)
    plain = s4a.compress(values, format="raw").nbytes
    raw = s4a.compress(values, format="raw", dictionary=dictionary)
    assert raw.nbytes * 2 <= plain
    assert s4a.decompress(raw, format="raw", codec="zstd", dictionary=dictionary).equals(values)
    with pytest.raises(ValueError, match="dictionary"):
        s4a.compress(values, codec="gzip", dictionary=dictionary)


def test_table_helpers_take_every_option():
    events = [json_event(i) for i in range(2000)]
    dictionary = s4_codec.train_dictionary(events, size=8192)
    table = pa.table({"id": list(range(2000)), "blob": events})
    packed = s4a.compress_table(table, "blob", dictionary=memoryview(dictionary), threads=2)
    assert packed.column("blob").equals(s4a.compress(table.column("blob"), dictionary=dictionary))
    assert s4a.frame_info(packed.column("blob"))[0]["codec"].as_py() == "cpu-zstd-dict"
    with pytest.raises(s4_codec.S4UnregisteredCodecError, match="row 0"):
        s4a.decompress_table(packed, "blob")
    assert s4a.decompress_table(packed, "blob", dictionary=dictionary, threads=1).equals(table)
    text = s4a.decompress_table(packed, "blob", dictionary=dictionary, as_string=True)
    assert text.column("blob").type == pa.string()
    assert text.column("blob").to_pylist() == [e.decode() for e in events]
    raw = s4a.compress_table(
        table, ["blob"], codec="zstd-dict", format="raw", dictionary=dictionary
    )
    back = s4a.decompress_table(raw, "blob", codec="zstd", format="raw", dictionary=dictionary)
    assert back.equals(table)
    with pytest.raises(s4_codec.S4ManifestSizeExceedsLimitError, match="row 0"):
        s4a.decompress_table(packed, "blob", dictionary=dictionary, max_output_size=10)
    nulls = s4a.decompress_table(
        packed, "blob", max_output_size=10, on_error="null", dictionary=dictionary
    )
    assert nulls.column("blob").null_count == 2000


@pytest.mark.parametrize("threads", [1, 2, 7])
def test_threads_give_identical_cells(threads):
    arr = pa.array(VALUES)
    cells = s4a.compress(arr, threads=threads)
    assert cells.equals(s4a.compress(arr))
    assert s4a.decompress(cells, threads=threads).equals(arr)
    assert s4a.crc32c(arr, threads=threads).equals(s4a.crc32c(arr))
    table = pa.table({"blob": VALUES})
    assert s4a.compress_table(table, "blob", threads=threads).column("blob").chunk(0).equals(cells)


def test_table_helpers_check_arguments_before_the_first_batch():
    table = pa.table({"blob": VALUES})

    def batches():
        raise AssertionError("read a batch")
        yield

    bad_compress = [
        {"threads": 0},
        {"codec": "lz4"},
        {"format": "zip"},
        {"codec": "gzip", "level": 10},
        {"codec": "gzip", "dictionary": b"x" * 64},
        {"codec": "zstd-dict"},
    ]
    for kwargs in bad_compress:
        for data in (table, batches()):
            with pytest.raises(ValueError):
                s4a.compress_table(data, "blob", **kwargs)
    bad_decompress = [
        {"threads": 0},
        {"format": "raw"},
        {"on_error": "skip"},
        {"max_output_size": -1},
    ]
    for kwargs in bad_decompress:
        for data in (table, batches()):
            with pytest.raises(ValueError):
                s4a.decompress_table(data, "blob", **kwargs)


def test_codec_aliases_are_accepted_everywhere():
    arr = pa.array(VALUES)
    for short, name in (("zstd", "cpu-zstd"), ("gzip", "cpu-gzip")):
        cells = s4a.compress(arr, codec=name)
        assert cells.equals(s4a.compress(arr, codec=short))
        raw = s4a.compress(arr, codec=name, format="raw")
        assert s4a.decompress(raw, codec=name, format="raw").equals(arr)


def test_typed_usage_passes_mypy():
    require("mypy")
    require("polars")
    typing = Path(__file__).parent / "typing"
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(typing / "arrow_usage.py")],
        capture_output=True,
        text=True,
        # A stand-in for the pyarrow types the overloads select on (pyarrow has none).
        env={**os.environ, "MYPYPATH": str(typing / "stubs")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
