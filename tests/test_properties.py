"""Property tests (hypothesis): round trips through every door, and mutation
campaigns that must end in the original bytes or an S4 exception, never in other
bytes or another exception type. Each campaign runs in a child process, so that
an abort fails its test instead of killing pytest."""

from __future__ import annotations

import functools
import json
import random

import pytest
from conftest import require
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from subproc import check_function

import s4_codec
from s4_codec import (
    CpuGzip,
    CpuZstd,
    CpuZstdDict,
    decode_s4_object,
    encode_index,
    encode_s4_object,
)

MiB = 1 << 20
PROPS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Bytes with structure (repeats) as well as noise, so codecs do real work.
repeated = st.builds(
    lambda piece, n: piece * n, st.binary(min_size=1, max_size=40), st.integers(1, 3000)
)
payloads = st.one_of(st.binary(max_size=2048), repeated)

RAW_DICT = b"raw dictionary: " + b"".join(b"key%d=value%d;" % (i, i * 7) for i in range(300))


# ---------------------------------------------------------------- scalar


@PROPS
@given(data=payloads, level=st.integers(-5, 22))
def test_zstd_round_trip(data, level):
    codec = CpuZstd(level)
    payload, size, crc = codec.compress(data)
    assert (size, crc) == (len(data), s4_codec.crc32c(data))
    assert codec.decompress(payload, size, crc) == data


@PROPS
@given(data=payloads, level=st.integers(0, 12))
def test_gzip_round_trip(data, level):
    codec = CpuGzip(level)
    payload, size, crc = codec.compress(data)
    assert codec.decompress(payload, size, crc) == data


@PROPS
@given(
    extra=st.binary(max_size=256),
    cut=st.tuples(st.integers(0, len(RAW_DICT)), st.integers(0, 400)),
    data=payloads,
    level=st.integers(1, 19),
)
def test_zstd_raw_dictionary_round_trip(extra, cut, data, level):
    codec = CpuZstdDict(RAW_DICT + extra, level)
    sample = RAW_DICT[cut[0] : cut[0] + cut[1]] + data  # partly dictionary content
    payload, size, crc = codec.compress(sample)
    assert codec.decompress(payload, size, crc) == sample


# ---------------------------------------------------------------- Arrow

LAYOUTS = {
    # input layout: (compressed layout, as_string layout)
    "binary": ("binary", "string"),
    "large_binary": ("large_binary", "large_string"),
    "binary_view": ("binary_view", "string_view"),
    "string": ("binary", "string"),
    "large_string": ("large_binary", "large_string"),
    "string_view": ("binary_view", "string_view"),
}
texts = st.one_of(
    st.text(max_size=200), st.builds(lambda t, n: t * n, st.text(max_size=20), st.integers(1, 300))
)


@st.composite
def arrow_cases(draw):
    layout = draw(st.sampled_from(sorted(LAYOUTS)))
    value = texts if "string" in layout else payloads
    values = draw(st.lists(st.none() | value, max_size=40))
    shape = draw(st.sampled_from(["array", "slice", "chunked"]))
    if shape == "slice":
        a = draw(st.integers(0, len(values)))
        b = draw(st.integers(a, len(values)))
        shape = ("slice", a, b)
    elif shape == "chunked":
        cuts = sorted(draw(st.lists(st.integers(0, len(values)), max_size=4)))
        shape = ("chunked", cuts)
    codec = draw(st.sampled_from(["zstd", "gzip", "passthrough"]))
    fmt = draw(st.sampled_from(["s4", "raw"]))
    level = draw(st.none() | st.integers(0, 9))
    threads = draw(st.sampled_from([None, 1, 2]))
    return layout, values, shape, codec, fmt, level, threads


def _arrow_input(pa, layout, values, shape):
    typ = getattr(pa, layout)()
    if shape == "array":
        return pa.array(values, typ), values
    if shape[0] == "slice":
        _, a, b = shape
        return pa.array(values, typ).slice(a, b - a), values[a:b]
    bounds = [0, *shape[1], len(values)]
    chunks = [values[x:y] for x, y in zip(bounds, bounds[1:], strict=False)]
    return pa.chunked_array([pa.array(c, typ) for c in chunks], typ), values


@PROPS
@given(case=arrow_cases())
def test_arrow_round_trip(case):
    pa = require("pyarrow")
    s4a = require("s4_codec.arrow")
    layout, values, shape, codec, fmt, level, threads = case
    arr, expected = _arrow_input(pa, layout, values, shape)
    packed = s4a.compress(arr, codec=codec, format=fmt, level=level, threads=threads)
    assert isinstance(packed, pa.ChunkedArray) == isinstance(arr, pa.ChunkedArray)
    assert packed.type == getattr(pa, LAYOUTS[layout][0])()
    packed.validate(full=True)
    assert [v is None for v in packed.to_pylist()] == [v is None for v in expected]
    decode_codec = None if fmt == "s4" else codec
    as_string = "string" in layout
    out = s4a.decompress(
        packed, format=fmt, codec=decode_codec, as_string=as_string, threads=threads
    )
    assert out.type == getattr(pa, LAYOUTS[layout][1 if as_string else 0])()
    out.validate(full=True)
    assert out.to_pylist() == expected
    encoded = [v.encode() if isinstance(v, str) else v for v in expected]
    crcs = s4a.crc32c(arr, threads=threads)
    assert crcs.to_pylist() == [None if v is None else s4_codec.crc32c(v) for v in encoded]
    if fmt == "s4":
        info = s4a.frame_info(packed).to_pylist()
        sizes = [None if i is None else (i["original_size"], i["crc32c"]) for i in info]
        assert sizes == [None if v is None else (len(v), s4_codec.crc32c(v)) for v in encoded]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_arrow_empty_chunked_arrays(layout):
    pa = require("pyarrow")
    s4a = require("s4_codec.arrow")
    typ = getattr(pa, layout)()
    value = "x" if "string" in layout else b"x"
    for arr in (pa.chunked_array([], typ), pa.chunked_array([[], [value, None], []], typ)):
        packed = s4a.compress(arr)
        assert isinstance(packed, pa.ChunkedArray)
        assert packed.type == getattr(pa, LAYOUTS[layout][0])()
        out = s4a.decompress(packed, as_string="string" in layout)
        assert out.to_pylist() == arr.to_pylist()


# ---------------------------------------------------------------- Polars


@settings(PROPS, max_examples=30)
@given(
    text=st.booleans(),
    values=st.lists(st.none() | st.text(max_size=100), max_size=30),
    codec=st.sampled_from(["zstd", "gzip", "passthrough"]),
    fmt=st.sampled_from(["s4", "raw"]),
    lazy=st.booleans(),
)
def test_polars_round_trip(text, values, codec, fmt, lazy):
    pl = require("polars")
    require("s4_codec.polars")  # registers pl.col(...).s4
    if not text:
        values = [None if v is None else v.encode() for v in values]
    df = pl.DataFrame({"x": values}, schema={"x": pl.String if text else pl.Binary})
    frame = df.lazy() if lazy else df
    decode_codec = None if fmt == "s4" else codec
    packed = frame.select(pl.col("x").s4.compress(codec=codec, format=fmt))
    out = packed.select(
        pl.col("x").s4.decompress(codec=decode_codec, format=fmt, as_string=text),
        crc=pl.col("x").s4.crc32c(),
    )
    out = out.collect() if lazy else out
    assert out["x"].dtype == (pl.String if text else pl.Binary)
    assert out["x"].to_list() == values
    cells = (packed.collect() if lazy else packed)["x"].to_list()
    assert out["crc"].to_list() == [None if c is None else s4_codec.crc32c(c) for c in cells]


# ---------------------------------------------------------------- objects


NIBBLES = bytes(range(16)) * 16


def _pattern(size: int, seed: int) -> bytes:
    """Random nibbles: compress to about half, fast to make and to encode."""
    return random.Random(seed).randbytes(size).translate(NIBBLES)


SIZES = [0, 1, 1000, 70_000, MiB, MiB + 1, 4 * MiB, 4 * MiB + 1, 9 * MiB + 5]


@functools.lru_cache(maxsize=8)
def _encoded(size: int, seed: int):
    data = _pattern(size, seed)
    return data, encode_s4_object(data, level=1)


@settings(PROPS, max_examples=40)
@given(
    size=st.sampled_from(SIZES),
    seed=st.integers(0, 1),
    ranges=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), max_size=5),
)
def test_object_round_trip_and_ranges(size, seed, ranges):
    data, obj = _encoded(size, seed)
    assert decode_s4_object(obj["body"], obj["metadata"]) == data
    assert decode_s4_object(obj["body"]) == data
    if obj["sidecar"] is None:
        return
    sidecar = obj["sidecar"]
    for x, y in ranges:
        a, b = sorted((int(x * size), int(y * size)))
        assert decode_s4_object(obj["body"], sidecar=sidecar, start=a, end=b) == data[a:b]
    a = int(ranges[0][0] * size) if ranges else 0
    assert decode_s4_object(obj["body"], sidecar=sidecar, start=a) == data[a:]
    assert decode_s4_object(obj["body"], sidecar=sidecar, end=a) == data[:a]


CODEC_IDS = {"passthrough": 0, "zstd": 1, "gzip": 7}


def frame(codec: str, piece: bytes) -> bytes:
    """One S4F2 frame made with the scalar API."""
    if codec == "passthrough":
        payload = piece
    else:
        payload = (CpuZstd(3) if codec == "zstd" else CpuGzip(6)).compress(piece)[0]
    return (
        b"S4F2"
        + CODEC_IDS[codec].to_bytes(4, "little")
        + len(piece).to_bytes(8, "little")
        + len(payload).to_bytes(8, "little")
        + s4_codec.crc32c(piece).to_bytes(4, "little")
        + payload
    )


def build_body(data: bytes, cuts: list[int], codecs: list[str], pads: list[int]):
    """A multipart-style body (mixed codecs, S4P1 padding) and its sidecar."""
    bounds = [0, *sorted(cuts), len(data)]
    body, entries = b"", []
    for i, (x, y) in enumerate(zip(bounds, bounds[1:], strict=False)):
        one = frame(codecs[i % len(codecs)], data[x:y])
        entries.append(
            {
                "original_offset": x,
                "original_size": y - x,
                "compressed_offset": len(body),
                "compressed_size": len(one),
            }
        )
        body += one
        pad = pads[i % len(pads)]
        if pad >= 0:
            body += b"S4P1" + pad.to_bytes(8, "little") + b"\x5a" * pad
    return body, encode_index(entries, len(body))


bodies = st.tuples(
    st.binary(min_size=1, max_size=3000) | repeated,
    st.lists(st.floats(0, 1), max_size=6),
    st.lists(st.sampled_from(sorted(CODEC_IDS)), min_size=1, max_size=4),
    st.lists(st.integers(-1, 20), min_size=1, max_size=3),
)


@PROPS
@given(spec=bodies, ranges=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), max_size=6))
def test_hand_built_bodies_decode_whole_and_by_range(spec, ranges):
    data, fractions, codecs, pads = spec
    body, sidecar = build_body(data, [int(f * len(data)) for f in fractions], codecs, pads)
    assert decode_s4_object(body) == data
    assert decode_s4_object(body, {"s4-multipart": "true"}) == data
    for x, y in ranges:
        a, b = sorted((int(x * len(data)), int(y * len(data))))
        assert decode_s4_object(body, sidecar=sidecar, start=a, end=b) == data[a:b]


# ---------------------------------------------------------------- mutations
#
# A campaign runs in a child: hypothesis draws (base sample, mutation) pairs, every
# outcome is classified, and a bad one fails (and is shrunk) inside the child. Each
# case is printed before it runs, so an abort names its culprit in the output tail.

MUTATION_EXAMPLES = {"scalar": 400, "cells": 300, "frames": 300, "bodies": 300, "sidecars": 200}


@pytest.mark.parametrize("campaign", sorted(MUTATION_EXAMPLES))
def test_mutation_campaign(campaign):
    if campaign == "cells":
        require("pyarrow")
    out = check_function(mutation_campaign, campaign, MUTATION_EXAMPLES[campaign])
    summary = json.loads(out.splitlines()[-1])
    assert summary["examples"] >= MUTATION_EXAMPLES[campaign], summary
    # The campaign must have hit the error paths, not only harmless bytes.
    assert sum(n for k, n in summary["outcomes"].items() if k != "original") > 0, summary


def mutate(data: bytes, kind: str, pos: int, value: int, extra: bytes) -> bytes:
    if kind == "flip" and data:
        pos %= len(data)
        return data[:pos] + bytes([data[pos] ^ (value or 1)]) + data[pos + 1 :]
    if kind == "truncate":
        return data[: pos % (len(data) + 1)]
    if kind == "delete" and data:
        pos %= len(data)
        return data[:pos] + data[pos + 1 :]
    if kind == "insert":
        pos %= len(data) + 1
        return data[:pos] + bytes([value]) + data[pos:]
    return data + (extra or b"\0")  # extend


mutations = st.tuples(
    st.sampled_from(["flip", "flip", "truncate", "delete", "insert", "extend"]),
    st.integers(0, 1 << 24) | st.integers(-300, -1),  # negative: counted from the end
    st.integers(0, 255),
    st.binary(max_size=40),
)


def mutation_campaign(campaign: str, max_examples: int) -> None:
    """Child side: runs one campaign and prints a JSON summary as the last line."""
    from collections import Counter

    from subproc import emit

    allowed = (s4_codec.S4Error, s4_codec.S4IoError, s4_codec.S4BackendError)
    outcomes: Counter[str] = Counter()
    examples = 0

    def outcome(call, expected, *, also=None, unchecked=False):
        """`expected` bytes or an S4 class; also `also` where the format allows it, and
        any bytes when the format cannot tell (`unchecked`)."""
        try:
            got = call()
        except BaseException as exc:
            if isinstance(exc, allowed):
                return exc
            raise AssertionError(f"not an S4 exception: {type(exc).__name__}: {exc}") from exc
        assert unchecked or got in (expected, also), "wrong bytes"
        return None

    def record(result, kind="") -> None:
        outcomes[kind + (type(result).__name__ if result is not None else "original")] += 1

    samples, check = _CAMPAIGNS[campaign]()

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(index=st.integers(0, len(samples) - 1), m=mutations)
    def run(index, m):
        nonlocal examples
        examples += 1
        sample = samples[index]
        emit(case=campaign, sample=index, kind=m[0], pos=m[1], value=m[2], extra=m[3].hex())
        check(sample, mutate(sample[0], *m), outcome, record)

    run()
    emit(examples=examples, outcomes=dict(outcomes))


def _scalar_campaign():
    texts = [b"", b"a", b"hello squished s3 " * 40, bytes(range(256)) * 20]
    codecs = [CpuZstd(3), CpuGzip(6), CpuZstdDict(RAW_DICT, 3)]
    samples = []
    for codec in codecs:
        for data in texts:
            payload, size, crc = codec.compress(data)
            samples.append((payload, codec, data, size, crc))

    def check(sample, mutated, outcome, record):
        _, codec, data, size, crc = sample
        record(outcome(lambda: codec.decompress(mutated, size, crc), data))

    return samples, check


def _cells_campaign():
    import pyarrow as pa

    import s4_codec.arrow as s4a

    values = [b"", b"x", b"hello squished s3 " * 30, bytes(range(256)) * 4]
    samples = []
    for fmt, codec in (
        ("s4", "zstd"),
        ("s4", "gzip"),
        ("s4", "passthrough"),
        ("raw", "zstd"),
        ("raw", "gzip"),
    ):
        cells = s4a.compress(pa.array([b"ok", *values]), codec=codec, format=fmt).to_pylist()
        for value, cell in zip(values, cells[1:], strict=True):
            samples.append((cell, fmt, codec, value, cells[0]))

    def check(sample, mutated, outcome, record):
        _, fmt, codec, value, good = sample
        kwargs = {"format": fmt, "codec": None if fmt == "s4" else codec}
        cells = pa.array([good, mutated])  # the mutated cell is row 1

        def decode():
            out = s4a.decompress(cells, **kwargs).to_pylist()
            assert out[0] == b"ok"
            return out[1]

        # Raw zstd cells carry no checksum: a flipped literal decodes to other bytes.
        # An empty "s4" cell is an empty body, which holds an empty value.
        also = b"" if fmt == "s4" and not mutated else None
        error = outcome(decode, value, also=also, unchecked=(fmt, codec) == ("raw", "zstd"))
        if error is not None:
            assert "row 1" in str(error), f"error does not name row 1: {error}"
        record(error)
        nulls = s4a.decompress(cells, on_error="null", **kwargs).to_pylist()
        assert nulls[0] == b"ok" and (nulls[1] is None) == (error is not None), "on_error='null'"
        if fmt == "s4":

            def info():
                s4a.frame_info(cells)
                return value

            record(outcome(info, value), "frame_info:")

    return samples, check


def _frame_samples():
    data = b"hello squished s3 " * 50
    samples = [(frame(c, data), data) for c in ("zstd", "gzip", "passthrough")]
    samples.append((frame("zstd", b""), b""))
    body, _ = build_body(data, [100, 400], ["zstd", "gzip", "passthrough"], [5, -1])
    samples.append((body, data))
    return samples


def bare(body: bytes, mutated: bytes, data: bytes) -> bytes | None:
    """What a mutated body may also decode to with no metadata: itself when it no
    longer starts with a frame magic (not an S4 body), or, when it is the original
    cut at a frame boundary, the original bytes of the frames left."""
    if not mutated.startswith((b"S4F2", b"S4P1")):
        return mutated
    if not body.startswith(mutated):
        return None
    try:
        return data[: sum(h["original_size"] for h, _ in s4_codec.frame_iter(mutated))]
    except s4_codec.S4FrameError:
        return None


def _frames_campaign():
    def faithful(mutated):
        header, payload, rest = s4_codec.read_frame(mutated)
        size = int.from_bytes(mutated[16:24], "little")
        assert header["original_size"] == int.from_bytes(mutated[8:16], "little")
        assert header["compressed_size"] == size
        assert header["crc32c"] == int.from_bytes(mutated[24:28], "little")
        assert (payload, rest) == (mutated[28 : 28 + size], mutated[28 + size :])
        return b"parsed"

    def walk(mutated):
        total = 0
        for header, payload in s4_codec.frame_iter(mutated):
            assert len(payload) == header["compressed_size"]
            total += 1
        return b"walked"

    def peeked(mutated):
        # Header alone: a padding extent, or the fields read_frame would give.
        header = s4_codec._internal.frame_header(mutated[:28])
        if header["padding"]:
            assert mutated[:4] == b"S4P1"
            assert header["stored_size"] == 12 + int.from_bytes(mutated[4:12], "little")
        else:
            fields = ("codec", "original_size", "compressed_size", "crc32c")
            try:
                parsed, _, _ = s4_codec.read_frame(mutated)
            except s4_codec.S4FrameError:
                assert len(mutated) < header["stored_size"], "only the payload may be missing"
            else:
                assert {k: header[k] for k in fields} == dict(parsed)
        return b"peeked"

    def check(sample, mutated, outcome, record):
        body, data = sample
        record(outcome(lambda: peeked(mutated), b"peeked"), "frame_header:")
        record(outcome(lambda: faithful(mutated), b"parsed"), "read_frame:")
        record(outcome(lambda: walk(mutated), b"walked"), "frame_iter:")
        record(outcome(lambda: decode_s4_object(mutated), data, also=bare(body, mutated, data)))

    return _frame_samples(), check


def _bodies_campaign():
    samples = []
    for size, seed in ((3000, 1), (4 * MiB + 3000, 2)):
        data = _pattern(size, seed)
        obj = encode_s4_object(data, level=1)
        samples.append((obj["body"], data, obj["metadata"]))
    for body, data in _frame_samples()[3:]:
        # Multipart metadata has no CRC; its size catches a body cut at a frame boundary.
        samples.append((body, data, {"s4-multipart": "true", "s4-original-size": str(len(data))}))

    def check(sample, mutated, outcome, record):
        body, data, metadata = sample
        record(outcome(lambda: decode_s4_object(mutated, metadata), data), "metadata:")
        record(outcome(lambda: decode_s4_object(mutated), data, also=bare(body, mutated, data)))

    return samples, check


def sidecar_view(honest: list, mutated: bytes, data: bytes, a: int, b: int) -> bytes | None:
    """Bytes [a, b) as a mutated sidecar describes the object when it only moves whole
    frames in original space, leaving gaps (legal: see test_hardening.sidecar_gap);
    None when it says anything else, or when [a, b) touches a gap."""
    try:
        lying = s4_codec.decode_index(mutated)["entries"]
    except s4_codec.S4IndexError:
        return None
    keys = ("compressed_offset", "compressed_size", "original_size")
    if len(lying) != len(honest) or any(
        [h[k] for k in keys] != [m[k] for k in keys] for h, m in zip(honest, lying, strict=True)
    ):
        return None
    out, pos = b"", a
    for h, m in zip(honest, lying, strict=True):
        lo, hi = m["original_offset"], m["original_offset"] + m["original_size"]
        if hi <= pos or lo >= b:
            continue
        if lo > pos:
            return None
        base = h["original_offset"] - lo
        out += data[base + pos : base + min(hi, b)]
        pos = min(hi, b)
    return out if pos == b else None


def pieces(sidecar: bytes, body: bytes, a: int, b: int) -> bytes:
    """Bytes [a, b) as the object-store reader assembles them: each pending frame's
    stored bytes fetched on their own, decoded by one RangeDecoder."""
    decoder = s4_codec._internal.RangeDecoder(sidecar, a, b, source_size=len(body))
    for first, end in decoder.pending:
        decoder.decode(body[first:end], first)
    return decoder.finish()


def _sidecars_campaign():
    samples = []
    data = _pattern(3000, 3)
    body, sidecar = build_body(data, [700, 1500, 1501], ["zstd", "gzip", "passthrough"], [-1, 3])
    samples.append((sidecar, body, data))
    data = _pattern(4 * MiB + 2000, 4)
    obj = encode_s4_object(data, level=1)
    samples.append((obj["sidecar"], obj["body"], data))
    bound = s4_codec.bind_index(obj["sidecar"], len(obj["body"]), "etag-1")
    samples.append((bound, obj["body"], data))

    def check(sample, mutated, outcome, record):
        sidecar, body, data = sample
        honest = s4_codec.decode_index(sidecar)["entries"]
        record(outcome(lambda: (s4_codec.decode_index(mutated), b"")[1], b""), "decode_index:")
        n = len(data)
        for a, b in ((0, n), (n // 3, n // 3 + 50), (n - 10, n), (n // 2 - 5, n // 2 + 5)):
            view = sidecar_view(honest, mutated, data, a, b)
            call = lambda a=a, b=b: decode_s4_object(body, sidecar=mutated, start=a, end=b)  # noqa: E731
            record(outcome(call, data[a:b], also=view))
            record(
                outcome(lambda a=a, b=b: pieces(mutated, body, a, b), data[a:b], also=view),
                "pieces:",
            )

    return samples, check


_CAMPAIGNS = {
    "scalar": _scalar_campaign,
    "cells": _cells_campaign,
    "frames": _frames_campaign,
    "bodies": _bodies_campaign,
    "sidecars": _sidecars_campaign,
}
