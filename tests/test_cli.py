"""The `s4-codec` command, run as a subprocess."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

from conftest import json_event, require

import s4_codec

MiB = 1 << 20
DATA = b"".join(json_event(i) for i in range(60_000))  # ~12 MiB: three frames


def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "s4_codec", *args], input=stdin, capture_output=True
    )


def test_compress_decompress_files(tmp_path):
    src = tmp_path / "data.json"
    src.write_bytes(DATA)
    packed = tmp_path / "data.s4"
    assert cli("compress", str(src), "-o", str(packed)).returncode == 0
    assert packed.read_bytes()[:4] == b"S4F2"
    sidecar = tmp_path / "data.s4.s4index"
    assert s4_codec.decode_index(sidecar.read_bytes())["total_original_size"] == len(DATA)
    out = tmp_path / "back.json"
    assert cli("decompress", str(packed), "-o", str(out)).returncode == 0
    assert out.read_bytes() == DATA


def test_stdin_stdout_and_raw_formats(tmp_path):
    result = cli("compress", "-", "--codec", "gzip", "--format", "raw", stdin=DATA)
    assert result.returncode == 0 and gzip.decompress(result.stdout) == DATA
    assert cli("decompress", "-", stdin=result.stdout).stdout == DATA
    zstandard = require("zstandard")
    result = cli("compress", "-", "--format", "raw", "--level", "5", stdin=DATA)
    assert zstandard.ZstdDecompressor().decompress(result.stdout) == DATA
    assert cli("decompress", "-", stdin=result.stdout).stdout == DATA
    assert cli("decompress", "-", stdin=gzip.compress(DATA)).stdout == DATA


def test_inspect_and_verify(tmp_path):
    packed = tmp_path / "x.s4"
    cli("compress", "-", "-o", str(packed), stdin=DATA)
    report = json.loads(cli("inspect", str(packed)).stdout)
    assert report["kind"] == "s4" and len(report["frames"]) == 3
    assert report["stored_size"] == packed.stat().st_size
    assert report["metadata"]["s4-compressed-size"] == str(packed.stat().st_size)
    assert report["metadata"]["s4-codec"] == "cpu-zstd"
    assert report["metadata"]["s4-original-size"] == str(len(DATA))
    assert report["metadata"]["s4-crc32c"] == str(s4_codec.crc32c(DATA))
    assert report["sidecar"]["total_original_size"] == len(DATA)
    ok = cli("verify", str(packed))
    crc = s4_codec.crc32c(DATA)
    assert ok.stdout == f"OK: 3 frame(s), {len(DATA)} bytes, crc32c 0x{crc:08x}\n".encode()
    assert ok.returncode == 0
    one = tmp_path / "one.s4"
    one.write_bytes(s4_codec.encode_s4_object(DATA[:1000])["body"])
    crc = s4_codec.crc32c(DATA[:1000])
    assert (
        cli("verify", str(one)).stdout
        == f"OK: 1 frame(s), 1000 bytes, crc32c 0x{crc:08x}\n".encode()
    )


def test_verify_catches_truncation_and_flipped_bytes(tmp_path):
    result = cli("compress", "-", stdin=DATA)
    assert b"sidecar not written" in result.stderr
    packed = result.stdout
    truncated = tmp_path / "truncated.s4"
    truncated.write_bytes(packed[:-100])
    result = cli("verify", str(truncated))
    assert result.returncode == 1
    assert result.stderr.count(b"\n") == 1 and b"S4FrameError" in result.stderr
    flipped = bytearray(packed)
    flipped[len(flipped) // 2] ^= 0x40
    path = tmp_path / "flipped.s4"
    path.write_bytes(bytes(flipped))
    result = cli("verify", str(path))
    assert result.returncode == 1 and result.stderr.startswith(b"s4-codec: ")


def test_usage_and_io_errors(tmp_path):
    assert cli("compress").returncode == 2
    assert cli("compress", "-", "--codec", "lz4", stdin=b"x").returncode == 2
    missing = cli("decompress", str(tmp_path / "nope"))
    assert missing.returncode == 3 and b"cannot read" in missing.stderr
    assert cli("decompress", "-", stdin=b"plain text").returncode == 1


def test_codec_and_level_options_reach_the_output():
    # A dropped --level or --codec still decompresses: compare the bytes themselves.
    small = DATA[: 1 << 20]
    for codec, level, scalar in (("zstd", 1, s4_codec.CpuZstd), ("gzip", 1, s4_codec.CpuGzip)):
        expected = scalar(level).compress(small)[0]
        assert expected != scalar().compress(small)[0]
        options = ["--codec", codec, "--level", str(level)]
        raw = cli("compress", "-", "--format", "raw", *options, stdin=small)
        assert raw.stdout == expected, options
        body = cli("compress", "-", *options, stdin=small).stdout
        assert body == s4_codec.encode_s4_object(small, "cpu-" + codec, level)["body"], options
    body = cli("compress", "-", "--codec", "passthrough", stdin=small).stdout
    assert body == s4_codec.encode_s4_object(small, "passthrough")["body"]
