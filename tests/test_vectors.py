"""Golden vectors produced by the reference wheel (s4-codec 1.5.1)."""

from __future__ import annotations

import builtins

import pytest
from conftest import blob

import s4_codec
from s4_codec import CpuGzip, CpuZstd


def test_crc32c_vectors(vectors):
    for case in vectors["crc32c"]:
        assert s4_codec.crc32c(blob(case["input"])) == case["crc32c"], case["name"]


@pytest.mark.parametrize("section, codec_cls", [("cpu_zstd", CpuZstd), ("cpu_gzip", CpuGzip)])
def test_reference_payloads_decode(vectors, section, codec_cls):
    decoded = 0
    for case in vectors[section]:
        data = blob(case["input"])
        payload = blob(case["compressed"])
        codec = codec_cls(case["level"])
        if payload is not None:
            assert codec.decompress(payload, case["original_size"], case["crc32c"]) == data
            decoded += 1
        # Our own encoding of the same input round-trips with the same manifest.
        ours, size, crc = codec.compress(data)
        assert (size, crc) == (case["original_size"], case["crc32c"])
        assert codec.decompress(ours, size, crc) == data
    assert decoded >= 10


def test_gzip_header_bytes_match_reference(vectors):
    for case in vectors["cpu_gzip"]:
        ours, _, _ = CpuGzip(case["level"]).compress(blob(case["input"]))
        header = case["gzip_header"]
        expected = bytes.fromhex(header["id1_id2"]) + bytes([header["cm"], header["flg"]])
        expected += header["mtime"].to_bytes(4, "little") + bytes([header["xfl"], header["os"]])
        assert ours[:10] == expected, case["name"]


def test_level_clamping(vectors):
    clamp = vectors["level_clamping"]
    data = blob(clamp["input"])
    level1, level22 = CpuZstd(1).compress(data)[0], CpuZstd(22).compress(data)[0]
    # Our engine is not byte-identical to the reference, so only the clamping
    # itself is compared: out-of-range levels encode like the bound they hit.
    for case in clamp["cpu_zstd"]:
        codec = CpuZstd(case["requested_level"])
        ours = codec.compress(data)[0]
        if case["equals_level_1_output"]:
            assert ours == level1 and codec.level == 1
        if case["equals_level_22_output"]:
            assert ours == level22 and codec.level == 22
    gzip_data = blob(clamp["cpu_gzip_input"])
    level9 = CpuGzip(9).compress(gzip_data)[0]
    for case in clamp["cpu_gzip"]:
        ours = CpuGzip(case["requested_level"]).compress(gzip_data)[0]
        if case["equals_level_9_output"]:
            assert ours == level9
        assert ours[8] == case["xfl"]


CONSTRUCTORS = {"CpuZstd": CpuZstd, "CpuGzip": CpuGzip}


def test_constructor_errors(vectors):
    checked = 0
    for expr, result in vectors["level_clamping"]["constructor_errors"].items():
        name = expr.split("(")[0]
        if name not in CONSTRUCTORS:
            continue
        arg = eval(expr[len(name) + 1 : -1])  # e.g. "2**31", "3.0": literals from the vector file
        with pytest.raises(getattr(builtins, result["raises"], None) or Exception) as info:
            CONSTRUCTORS[name](arg)
        assert type(info.value).__name__ == result["raises"]
        checked += 1
    assert checked >= 5


# Where we deliberately accept more than the reference (any bytes-like input),
# the reference's TypeError becomes a correct result instead.
ACCEPTS_BYTES_LIKE = {"zstd: bytearray input"}


def _codec_cases(vectors):
    for case in vectors["errors"]["cases"]:
        prefix = case["name"].split(":")[0]
        if prefix in ("zstd", "gzip"):
            yield case


def test_codec_error_cases(vectors):
    cases = list(_codec_cases(vectors))
    assert len(cases) >= 25
    for case in cases:
        codec = CpuZstd() if case["name"].startswith("zstd") else CpuGzip()
        data = bytes.fromhex(case["data"])
        size, crc = int(case["original_size"]), int(case["crc32c"])
        result = case["result"]
        if case["name"] in ACCEPTS_BYTES_LIKE:
            out = codec.decompress(bytearray(data), size, crc)
            assert len(out) == size and out == codec.decompress(data, size, crc), case["name"]
            continue
        if "returns" in result:
            out = codec.decompress(data, size, crc)
            assert out == bytes.fromhex(result["returns"]["hex"]), case["name"]
            continue
        expected = getattr(s4_codec, result["raises"], None) or getattr(builtins, result["raises"])
        assert expected is not None, result["raises"]
        with pytest.raises(expected) as info:
            codec.decompress(data, size, crc)
        assert type(info.value).__name__ == result["raises"], case["name"]
        assert [c.__name__ for c in type(info.value).__mro__[:-1]] == result["mro"]


def test_crc32c_error_cases_accept_bytes_like(vectors):
    assert s4_codec.crc32c(bytearray(b"abc")) == s4_codec.crc32c(b"abc")
    assert s4_codec.crc32c(memoryview(b"abc")) == s4_codec.crc32c(b"abc")
    with pytest.raises(TypeError):
        s4_codec.crc32c("abc")


def test_exception_hierarchy_matches_reference(vectors):
    for name, info in vectors["exception_hierarchy"].items():
        cls = getattr(s4_codec, name)
        mro = info["mro"] if isinstance(info, dict) else info
        assert [c.__name__ for c in cls.__mro__[:-1]] == mro, name
        assert cls.__module__ == "s4_codec"
