"""The two kernels under the Spark data source's line reader: ``split_lines``
(text cut into an Arrow column of lines, an unfinished line carried on) and
``decode_frame_prefix`` (the start of a frame from its first stored bytes)."""

from __future__ import annotations

import json
import random

import pytest
from conftest import require
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from subproc import check_function

import s4_codec
from s4_codec import _internal

pa = require("pyarrow")

PROPS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

text = st.lists(
    st.sampled_from([b"\n", b"\r\n", b"\r", b"", b"a", b"bc", "é".encode(), b"{}", b" "]),
    max_size=60,
).map(b"".join)


def naive_lines(data: bytes) -> list[bytes]:
    if not data:
        return []
    body = data[:-1] if data.endswith(b"\n") else data
    return [line[:-1] if line.endswith(b"\r") else line for line in body.split(b"\n")]


def split_all(data: bytes, cuts: list[int], binary: bool) -> list:
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    out, carry = [], b""
    for i, piece in enumerate(pieces):
        values, carry = _internal.split_lines(
            memoryview(piece), carry, last=i == len(pieces) - 1, binary=binary
        )
        assert values.type == (pa.binary() if binary else pa.string())
        out += values.to_pylist()
    assert carry == b""
    return out


@PROPS
@given(data=text, fractions=st.lists(st.floats(0, 1), max_size=5), binary=st.booleans())
def test_lines_across_pieces_are_the_plain_split(data, fractions, binary):
    cuts = sorted(int(f * len(data)) for f in fractions)
    expected = naive_lines(data)
    got = split_all(data, cuts, binary)
    assert got == (expected if binary else [line.decode() for line in expected])


def test_rest_is_the_unfinished_line():
    values, rest = _internal.split_lines(b"c\r\nd\nunfin", b"ab")
    assert values.to_pylist() == ["abc", "d"] and rest == b"unfin"
    values, rest = _internal.split_lines(b"more", b"unfin")
    assert len(values) == 0 and rest == b"unfinmore"
    values, rest = _internal.split_lines(b"", b"unfinmore", last=True)
    assert values.to_pylist() == ["unfinmore"] and rest == b""


def test_a_line_that_is_not_utf8_is_named():
    data = b'{"ok": 1}\n{"bad": "\xff"}\n'
    with pytest.raises(
        ValueError, match=r"^s3://b/k: the line at original byte 1010 is not valid UTF-8"
    ):
        _internal.split_lines(data, origin=1000, name="s3://b/k")
    # The same bytes as binary are fine, and the first line's place counts the carry.
    assert len(_internal.split_lines(data, binary=True)[0]) == 2
    with pytest.raises(ValueError, match="original byte 996 "):
        _internal.split_lines(b"\n", b"\xff\xfe\xfd\xfc", origin=1000)


def frame_of(data: bytes, codec: str) -> bytes:
    part = _internal.encode_s4_part(data, codec, 3)  # one S4F2 frame (+ padding)
    return part[: _internal.frame_header(part)["stored_size"]]


DATA = b"".join(b'{"n": %d, "pad": "%s"}\n' % (i, b"x" * (i % 50)) for i in range(40_000))


@pytest.mark.parametrize("codec", ["cpu-zstd", "passthrough"])
def test_any_prefix_decodes_to_a_prefix(codec):
    frame = frame_of(DATA, codec)
    for cut in [28, 29, 100, 4096, 65536, len(frame) // 2, len(frame) - 1]:
        got = _internal.decode_frame_prefix(frame[:cut])
        assert DATA.startswith(got), cut
    assert _internal.decode_frame_prefix(frame) == DATA
    assert len(_internal.decode_frame_prefix(frame[: len(frame) // 2])) > 0


def test_a_gzip_frame_decodes_only_whole_and_errors_are_located():
    frame = frame_of(DATA, "cpu-gzip")
    assert _internal.decode_frame_prefix(frame) == DATA
    place = (3, (1000, 1000 + len(frame)), (4096, 4096 + len(DATA)))
    with pytest.raises(
        s4_codec.S4FrameError, match=r"^logs/a: frame 3 .*decodes only whole"
    ) as info:
        _internal.decode_frame_prefix(frame[:500], name="logs/a", frame=place)
    assert info.value.frame == 3 and info.value.stored_range == place[1]
    with pytest.raises(s4_codec.S4FrameError):
        _internal.decode_frame_prefix(frame[:20])


def prefix_campaign(rounds: int) -> None:
    """Mutated frame prefixes: an S4 error, a prefix of the data, or other bytes
    that decoding the whole mutated frame then refuses (no CRC covers a prefix;
    the task that reads the frame whole checks it). Nothing else."""
    import s4_codec
    from s4_codec import _internal

    S4_ERRORS = (s4_codec.S4Error, s4_codec.S4IoError, s4_codec.S4BackendError)
    rng = random.Random(7)
    data = b"".join(b"line %d %s\n" % (i, b"y" * (i % 70)) for i in range(30_000))
    frames = {codec: frame_of(data, codec) for codec in ("cpu-zstd", "passthrough", "cpu-gzip")}
    outcomes: dict[str, int] = {}
    for _ in range(rounds):
        codec = rng.choice(sorted(frames))
        frame = bytearray(frames[codec])
        for _ in range(rng.randint(1, 3)):
            frame[rng.randrange(len(frame))] ^= rng.randrange(1, 256)
        cut = rng.choice([len(frame), rng.randrange(20, len(frame))])
        try:
            got = _internal.decode_frame_prefix(bytes(frame[:cut]))
        except S4_ERRORS as exc:
            outcome = type(exc).__name__
        else:
            if data.startswith(got):
                outcome = "prefix"
            else:
                try:
                    _internal.decode_frame_prefix(bytes(frame))
                except S4_ERRORS:
                    outcome = "other bytes, whole frame refused"
                else:
                    raise AssertionError(f"{codec} frame decodes whole to other bytes")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    print(json.dumps(outcomes))


def test_mutated_prefixes_never_pass_as_data():
    out = check_function(prefix_campaign, 1500)
    outcomes = json.loads(out.splitlines()[-1])
    assert sum(outcomes.values()) == 1500
    assert outcomes.get("prefix", 0) > 0 and len(outcomes) > 2, outcomes
