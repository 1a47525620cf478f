"""The scalar API: CpuZstd / CpuGzip / crc32c, beyond the golden vectors."""

from __future__ import annotations

import gzip
import os
import pickle
import subprocess
import sys
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import json_event, text

import s4_codec
from s4_codec import CpuGzip, CpuZstd, S4Error, S4IoError

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20


def test_seed_example():
    from s4_codec import CpuZstd, gpu_available

    codec = CpuZstd(level=3)
    data = b"hello squished s3 " * 1000
    compressed, original_size, crc = codec.compress(data)
    assert codec.decompress(compressed, original_size, crc) == data
    assert original_size == len(data) and crc == s4_codec.crc32c(data)
    assert len(compressed) < len(data) // 10
    assert gpu_available() is False


_TEXT = text(40_000)


def _corpus(size: int) -> bytes:
    """Text-like bytes; long inputs vary per block so they are not trivially repetitive."""
    blocks, total = [], 0
    i = 0
    while total < size:
        block = b"%d " % i + _TEXT[i % 1000 :]
        blocks.append(block)
        total += len(block)
        i += 1
    return b"".join(blocks)[:size]


@pytest.mark.parametrize("size", [0, 1, 1000, 4 * MiB])
@pytest.mark.parametrize(
    "codec", [CpuZstd(1), CpuZstd(3), CpuZstd(9), CpuZstd(19), CpuGzip(0), CpuGzip(6), CpuGzip(9)]
)
def test_round_trip(codec, size):
    if size > MiB and codec.level >= 19:
        size //= 16  # level 19 is slow; its 4 MiB behaviour is that of 256 KiB here
    data = _corpus(size)
    payload, original_size, crc = codec.compress(data)
    assert original_size == size
    assert crc == s4_codec.crc32c(data)
    assert codec.decompress(payload, original_size, crc) == data


@pytest.mark.parametrize("codec", [CpuZstd(1), CpuZstd(3), CpuGzip(1)])
def test_round_trip_64_mib(codec):
    data = np.random.default_rng(7).integers(0, 16, 64 * MiB, dtype=np.uint8).tobytes()
    payload, size, crc = codec.compress(data)
    assert len(payload) < len(data)
    assert codec.decompress(payload, size, crc) == data


def test_random_data_round_trips():
    data = os.urandom(3 * MiB + 17)
    for codec in (CpuZstd(3), CpuGzip(6)):
        assert codec.decompress(*codec.compress(data)) == data


def test_zstd_output_is_a_standard_frame_with_content_size():
    zstandard = pytest.importorskip("zstandard")
    data = _corpus(300_000)
    payload, _, _ = CpuZstd(3).compress(data)
    assert zstandard.get_frame_parameters(payload).content_size == len(data)
    assert zstandard.ZstdDecompressor().decompress(payload) == data


def test_zstd_window_never_exceeds_2_27():
    zstandard = pytest.importorskip("zstandard")
    data = _corpus(MiB + 1)
    payload, _, _ = CpuZstd(22).compress(data)
    assert zstandard.get_frame_parameters(payload).window_size <= 1 << 27


def test_foreign_zstd_frames_decode():
    zstandard = pytest.importorskip("zstandard")
    data = _corpus(200_000)
    crc = s4_codec.crc32c(data)
    for cctx in (
        zstandard.ZstdCompressor(level=5, write_checksum=True),
        zstandard.ZstdCompressor(level=1, write_content_size=False),
    ):
        assert CpuZstd().decompress(cctx.compress(data), len(data), crc) == data
    streamed = zstandard.ZstdCompressor(level=3).compressobj()
    payload = streamed.compress(data) + streamed.flush()
    assert CpuZstd().decompress(payload, len(data), crc) == data


def test_gzip_output_readable_by_stdlib_and_gzip_tool(tmp_path):
    data = _corpus(500_000)
    payload, _, _ = CpuGzip(6).compress(data)
    assert gzip.decompress(payload) == data
    path = tmp_path / "x.gz"
    path.write_bytes(payload)
    assert (
        subprocess.run(["gzip", "-dc", str(path)], capture_output=True, check=True).stdout == data
    )


def test_foreign_gzip_members_decode(tmp_path):
    data = _corpus(100_000)
    crc = s4_codec.crc32c(data)
    assert CpuGzip().decompress(gzip.compress(data, mtime=0), len(data), crc) == data
    path = tmp_path / "named.txt"
    path.write_bytes(data)
    subprocess.run(["gzip", "-9", "-k", str(path)], check=True)  # sets FNAME
    assert CpuGzip().decompress(path.with_suffix(".txt.gz").read_bytes(), len(data), crc) == data


def test_gzip_multi_member_follows_the_gateway():
    a, b = b"first member ", b"second member"
    stream = gzip.compress(a) + gzip.compress(b)
    # Only the first member is decoded, as the S4 gateway does (FORMAT.md §5.2).
    assert CpuGzip().decompress(stream, len(a), s4_codec.crc32c(a)) == a
    with pytest.raises(s4_codec.S4SizeMismatchError):
        CpuGzip().decompress(stream, len(a + b), s4_codec.crc32c(a + b))


@pytest.mark.parametrize(
    "make",
    [
        bytes,
        bytearray,
        memoryview,
        lambda d: np.frombuffer(d, dtype=np.uint8),
        lambda d: np.frombuffer(d, dtype=np.uint8).reshape(1, -1),
        lambda d: memoryview(bytearray(b"xx" + d))[2:],
    ],
    ids=["bytes", "bytearray", "memoryview", "numpy", "numpy-2d", "memoryview-slice"],
)
@pytest.mark.parametrize("codec", [CpuZstd(), CpuGzip()])
def test_bytes_like_inputs(codec, make):
    data = json_event(3) * 8
    payload, size, crc = codec.compress(make(data))
    assert (size, crc) == (len(data), s4_codec.crc32c(make(data)))
    assert codec.decompress(make(payload), size, crc) == data


def test_non_contiguous_and_non_buffer_inputs_are_refused():
    strided = np.arange(64, dtype=np.uint8)[::2]
    for bad in (strided, "text", None, 12, [1, 2]):
        with pytest.raises((TypeError, BufferError, ValueError)):
            CpuZstd().compress(bad)
        with pytest.raises((TypeError, BufferError, ValueError)):
            s4_codec.crc32c(bad)


def test_input_is_never_modified():
    data = bytearray(_corpus(100_000))
    before = bytes(data)
    payload, size, crc = CpuZstd().compress(data)
    corrupt = bytearray(payload)
    corrupt[len(corrupt) // 2] ^= 0xFF
    snapshot = bytes(corrupt)
    with pytest.raises((S4Error, S4IoError)):
        CpuZstd().decompress(corrupt, size, crc)
    assert data == before and corrupt == snapshot


def test_repr_eq_hash_pickle():
    assert repr(CpuZstd(19)) == "CpuZstd(level=19)"
    assert repr(CpuZstd(0)) == "CpuZstd(level=1)"
    assert repr(CpuGzip(12)) == "CpuGzip(level=9)"
    assert CpuZstd(3) == CpuZstd() and CpuZstd(3) != CpuZstd(4)
    assert CpuGzip(6) == CpuGzip() and CpuZstd(6) != CpuGzip(6)
    assert len({CpuZstd(3), CpuZstd(3), CpuGzip(3)}) == 2
    for codec in (CpuZstd(19), CpuGzip(2)):
        clone = pickle.loads(pickle.dumps(codec))
        assert clone == codec and clone.level == codec.level


def test_keyword_arguments():
    codec = CpuZstd(level=5)
    payload, size, crc = codec.compress(data=b"abc")
    assert codec.decompress(data=payload, original_size=size, crc32c=crc) == b"abc"
    assert s4_codec.crc32c(data=b"abc") == s4_codec.crc32c(b"abc")


def test_argument_ranges():
    payload, size, crc = CpuZstd().compress(b"abc")
    with pytest.raises(OverflowError):
        CpuZstd().decompress(payload, -1, crc)
    with pytest.raises(OverflowError):
        CpuZstd().decompress(payload, size, 1 << 32)
    with pytest.raises(OverflowError):
        CpuGzip(-1)
    with pytest.raises(TypeError):
        CpuZstd("3")


def _longest_stall(call) -> tuple[float, float]:
    """Runs `call` in a thread while this thread naps in 0.5 ms steps; returns
    (longest nap, call duration). A nap cannot end while another thread
    holds the GIL, so a call that kept it stalls a nap for its whole length."""
    done = threading.Event()

    def run():
        call()
        done.set()

    worker = threading.Thread(target=run)
    start = time.perf_counter()
    worker.start()  # returns only once this thread gets the GIL back
    longest = time.perf_counter() - start
    while not done.is_set():
        nap = time.perf_counter()
        time.sleep(0.0005)
        longest = max(longest, time.perf_counter() - nap)
    worker.join()
    return longest, time.perf_counter() - start


def test_gil_is_released():
    data = _corpus(96 * MiB)
    zstd_payload, size, crc = CpuZstd(3).compress(data)
    gzip_payload, _, _ = CpuGzip(1).compress(data)
    zeros = np.zeros(512 * MiB, dtype=np.uint8)
    # The control holds the GIL: the probe must see it.
    stall, duration = _longest_stall(lambda: data.count(b"never found"))
    assert stall > 0.5 * duration
    for name, call in {
        "zstd compress": lambda: CpuZstd(3).compress(data),
        "zstd decompress": lambda: CpuZstd(3).decompress(zstd_payload, size, crc),
        "gzip compress": lambda: CpuGzip(1).compress(data),
        "gzip decompress": lambda: CpuGzip(1).decompress(gzip_payload, size, crc),
        "crc32c": lambda: s4_codec.crc32c(zeros),
    }.items():
        stall, duration = _longest_stall(call)
        assert stall < 0.5 * duration, (name, stall, duration)


def test_one_codec_shared_by_16_threads():
    codecs = [CpuZstd(3), CpuGzip(6)]
    inputs = [json_event(i) * (1 + i % 50) for i in range(400)]

    def work(i: int) -> bool:
        codec = codecs[i % 2]
        data = inputs[i]
        payload, size, crc = codec.compress(data)
        return codec.decompress(payload, size, crc) == data and crc == s4_codec.crc32c(data)

    with ThreadPoolExecutor(16) as pool:
        assert all(pool.map(work, range(len(inputs))))


def test_exception_tree():
    for name in (
        "S4CrcMismatchError",
        "S4SizeMismatchError",
        "S4CodecMismatchError",
        "S4UnregisteredCodecError",
        "S4ManifestSizeExceedsLimitError",
        "S4ManifestSizeMismatchError",
        "S4FrameError",
        "S4IndexError",
    ):
        assert issubclass(getattr(s4_codec, name), s4_codec.S4Error)
    assert issubclass(s4_codec.S4Error, ValueError)
    assert issubclass(s4_codec.S4BackendError, RuntimeError)
    assert not issubclass(s4_codec.S4BackendError, s4_codec.S4Error)
    assert issubclass(s4_codec.S4IoError, OSError)
    assert not issubclass(s4_codec.S4IoError, s4_codec.S4Error)


def test_error_messages_say_expected_and_got():
    data = b"x" * 600
    payload, size, crc = CpuZstd().compress(data)
    with pytest.raises(s4_codec.S4SizeMismatchError, match="expected 601, got 600"):
        CpuZstd().decompress(payload, 601, crc)
    with pytest.raises(
        s4_codec.S4CrcMismatchError, match=f"expected 0x{crc ^ 1:08x}, got 0x{crc:08x}"
    ):
        CpuZstd().decompress(payload, size, crc ^ 1)
    with pytest.raises(s4_codec.S4ManifestSizeExceedsLimitError, match="5368709121"):
        CpuZstd().decompress(payload, (5 << 30) + 1, crc)


def test_version_matches_cargo():
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    assert s4_codec.__version__ == cargo["package"]["version"]


MEMORY_PROBE = """
import resource, sys
import s4_codec
codec = getattr(s4_codec, sys.argv[1])()
payload, _, crc = codec.compress(b"q" * 100)
payload = payload + bytes(100 - len(payload)) if sys.argv[1] == "CpuGzip" else payload
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    codec.decompress(payload, 5 << 30, crc)
except Exception as exc:
    name = type(exc).__name__
else:
    name = "no error"
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(name, grown)
"""


@pytest.mark.parametrize("codec", ["CpuZstd", "CpuGzip"])
def test_a_lying_size_allocates_nothing_big(codec):
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, codec], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "S4SizeMismatchError"
    assert int(out[1]) < 64 * 1024  # KiB
