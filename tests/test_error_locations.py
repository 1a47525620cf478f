"""Where an error happened, as exception attributes: ``row`` for column kernels,
``frame``, ``stored_range`` and ``original_range`` for objects; ``None`` where unknown,
and the messages as they always were."""

from __future__ import annotations

import pickle
import random
import re
import struct

import pytest
from conftest import require

import s4_codec

LOCATION = ("row", "frame", "stored_range", "original_range")

DATA = random.Random(7).randbytes(12 << 20)  # three 4 MiB frames, stored raw by zstd
ENCODED = s4_codec.encode_s4_object(DATA, "cpu-zstd")
BODY, METADATA = ENCODED["body"], ENCODED["metadata"]


def frames(body: bytes) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Each frame's stored and original ``[start, end)``, read from the headers."""
    spans, stored, original = [], 0, 0
    while stored < len(body):
        original_size, compressed_size = struct.unpack_from("<QQ", body, stored + 8)
        end = stored + s4_codec.FRAME_HEADER_BYTES + compressed_size
        spans.append(((stored, end), (original, original + original_size)))
        stored, original = end, original + original_size
    return spans


FRAMES = frames(BODY)


def corrupt(body: bytes, at: int) -> bytes:
    bad = bytearray(body)
    bad[at] ^= 1
    return bytes(bad)


def payload_flipped(index: int) -> bytes:
    """The body with one byte in the middle of frame `index`'s payload flipped."""
    (start, end), _ = FRAMES[index]
    return corrupt(BODY, (start + s4_codec.FRAME_HEADER_BYTES + end) // 2)


def frame_prefix(index: int) -> str:
    (s0, s1), (o0, o1) = FRAMES[index]
    return f"frame {index} (stored bytes [{s0}, {s1}), original bytes [{o0}, {o1})): "


def test_the_object_has_several_frames():
    assert len(FRAMES) == 3 and FRAMES[-1][1][1] == len(DATA)


def test_every_s4_class_reads_its_location_as_none():
    for cls in (s4_codec.S4Error, s4_codec.S4CrcMismatchError, s4_codec.S4IoError):
        assert all(getattr(cls, name) is None for name in LOCATION), cls
    assert issubclass(s4_codec.S4BackendError, RuntimeError)
    assert all(getattr(s4_codec.S4BackendError, name) is None for name in LOCATION)
    with pytest.raises(s4_codec.S4IoError) as caught:
        s4_codec.CpuZstd().decompress(b"not zstd", 10, 0)
    assert all(getattr(caught.value, name) is None for name in LOCATION)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_corrupt_frame_is_located(index):
    with pytest.raises(s4_codec.S4CrcMismatchError) as caught:
        s4_codec.decode_s4_object(payload_flipped(index), METADATA)
    exc = caught.value
    location = (exc.frame, exc.stored_range, exc.original_range, exc.row)
    assert location == (index, *FRAMES[index], None)
    (start, _), _ = FRAMES[index]
    (crc,) = struct.unpack_from("<I", BODY, start + 24)
    expected = re.escape(f"{frame_prefix(index)}crc32c mismatch: expected 0x{crc:08x}, got 0x")
    assert re.fullmatch(expected + "[0-9a-f]{8}", str(exc)), exc


def test_a_range_decode_locates_the_frame_too():
    with pytest.raises(s4_codec.S4CrcMismatchError) as caught:
        s4_codec.decode_s4_object(
            payload_flipped(1), METADATA, sidecar=ENCODED["sidecar"], start=5 << 20, end=6 << 20
        )
    exc = caught.value
    assert (exc.frame, exc.stored_range, exc.original_range) == (1, *FRAMES[1])
    assert str(exc).startswith(frame_prefix(1))


def test_an_unparsable_header_gives_its_frame_only():
    (start, _), _ = FRAMES[2]
    with pytest.raises(s4_codec.S4FrameError) as caught:
        s4_codec.decode_s4_object(corrupt(BODY, start), METADATA)  # the magic
    exc = caught.value
    assert (exc.frame, exc.stored_range, exc.original_range) == (2, None, None)
    assert str(exc).startswith(f"frame 2 at stored byte {start}: bad frame magic")


def test_a_multi_frame_cell_gives_row_and_frame():
    pa = require("pyarrow")
    s4a = require("s4_codec.arrow")
    cells = pa.array([*s4a.compress(pa.array([b"a"])).to_pylist(), None, payload_flipped(2)])
    with pytest.raises(s4_codec.S4CrcMismatchError) as caught:
        s4a.decompress(cells)
    exc = caught.value
    assert (exc.row, exc.frame, exc.stored_range, exc.original_range) == (2, 2, *FRAMES[2])
    assert str(exc).startswith("row 2: " + frame_prefix(2))
    # The attributes travel with the exception to another process.
    assert vars(pickle.loads(pickle.dumps(exc))) == vars(exc) != {}


def test_a_range_decoder_locates_the_frame():
    (start, end), _ = FRAMES[1]
    decoder = s4_codec._internal.RangeDecoder(ENCODED["sidecar"], 5 << 20, 6 << 20)
    with pytest.raises(s4_codec.S4CrcMismatchError) as caught:
        decoder.decode(payload_flipped(1)[start:end], start)
    exc = caught.value
    assert (exc.frame, exc.stored_range, exc.original_range) == (1, *FRAMES[1])
    assert str(exc).startswith(frame_prefix(1))
