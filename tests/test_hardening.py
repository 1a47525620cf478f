"""Defects of the hardening issue, pinned. Every check runs in a child process
(see subproc.py): an abort from a Rust panic or a failed allocation fails its test
instead of killing pytest, and RLIMIT_AS can bound the child's memory."""

from __future__ import annotations

import os
import re
import struct
import time

import pytest
from conftest import raw_sidecar, require
from subproc import (
    assert_clean,
    cap_address_space,
    check_function,
    emit,
    peak_rss_kib,
    run_function,
)

import s4_codec
from s4_codec import (
    S4Error,
    S4FrameError,
    S4IndexError,
    S4IoError,
    S4ManifestSizeExceedsLimitError,
    S4SizeMismatchError,
    bind_index,
    decode_index,
    decode_s4_object,
    encode_index,
    encode_s4_object,
    plan_range,
)

MiB = 1 << 20
GiB = 1 << 30
S4_CLASSES = (S4Error, S4IoError)
RSS_GROWTH_KIB = 256 * 1024


# ---------------------------------------------------------------- 1. Polars dtypes

METHODS = ["compress", "decompress", "decompress_str", "crc32c", "frame_info"]
# Names a message may use for a dtype: its Python name, or polars' short form.
ALIASES = {
    "Boolean": ["bool"],
    "Int8": ["i8"],
    "Int16": ["i16"],
    "Int32": ["i32"],
    "Int64": ["i64"],
    "Int128": ["i128"],
    "UInt8": ["u8"],
    "UInt16": ["u16"],
    "UInt32": ["u32"],
    "UInt64": ["u64"],
    "UInt128": ["u128"],
    "Float16": ["f16"],
    "Float32": ["f32"],
    "Float64": ["f64"],
    "Categorical": ["cat"],
}


def _polars_columns(pl) -> dict:
    """A two-row column (one value, one null) of every dtype the installed polars builds."""
    import datetime as dt
    from decimal import Decimal

    def series(values, dtype=None):
        return pl.Series("x", values, dtype=dtype)

    makers = {
        "Binary": lambda: series([b"abc", None], pl.Binary),
        "String": lambda: series(["abc", None], pl.String),
        "Null": lambda: series([None, None]),
        "Boolean": lambda: series([True, None]),
        **{
            name: (lambda name=name: series([1, None], getattr(pl, name)))
            for name in [
                "Int8",
                "Int16",
                "Int32",
                "Int64",
                "Int128",
                "UInt8",
                "UInt16",
                "UInt32",
                "UInt64",
                "UInt128",
                "Float16",
                "Float32",
                "Float64",
            ]
        },
        "Decimal": lambda: series([Decimal("1.25"), None], pl.Decimal(10, 2)),
        "Categorical": lambda: series(["a", None], pl.Categorical),
        "Enum": lambda: series(["a", None], pl.Enum(["a", "b"])),
        "Date": lambda: series([dt.date(2026, 1, 2), None]),
        "Datetime": lambda: series([dt.datetime(2026, 1, 2, 3, 4), None]),
        "Duration": lambda: series([dt.timedelta(seconds=5), None]),
        "Time": lambda: series([dt.time(1, 2, 3), None]),
        "List": lambda: series([[1, 2], None], pl.List(pl.Int64)),
        "Array": lambda: series([[1, 2], None], pl.Array(pl.Int64, 2)),
        "Struct": lambda: series([{"a": 1}, None]),
        "Object": lambda: series([object(), None], pl.Object),
    }
    columns = {}
    for name, make in makers.items():
        try:
            columns[name] = make()
        except (AttributeError, TypeError, ValueError, pl.exceptions.PolarsError):
            continue  # this polars cannot build it
    return columns


def polars_dtype_sweep(skip: list[str]) -> None:
    """Child side: every dtype × method × engine; one JSON line per case."""
    import polars as pl

    import s4_codec.polars  # noqa: F401  (registers .s4)

    cells = pl.Series("x", [b"abc", None]).to_frame().select(pl.col("x").s4.compress())["x"]
    out_types = {
        "compress": pl.Binary,
        "decompress": pl.Binary,
        "decompress_str": pl.String,
        "crc32c": pl.UInt32,
    }
    for name, column in _polars_columns(pl).items():
        if name in skip:
            continue
        for method in METHODS:
            values = column
            if method in ("decompress", "decompress_str", "frame_info"):
                if name == "Binary":
                    values = cells
                elif name == "String":
                    values = pl.Series("x", ["", None])  # an empty body: an empty value
            for engine in ("eager", "lazy"):
                emit(start=[name, method, engine])
                ok, detail = _sweep_case(pl, name, values, method, engine, out_types)
                emit(case=[name, method, engine], ok=ok, detail=detail)


def _sweep_case(pl, name, column, method, engine, out_types):
    ns = pl.col("x").s4
    expr = {
        "compress": lambda: ns.compress(),
        "decompress": lambda: ns.decompress(),
        "decompress_str": lambda: ns.decompress(as_string=True),
        "crc32c": lambda: ns.crc32c(),
        "frame_info": lambda: ns.frame_info(),
    }[method]()
    df = column.to_frame()
    try:
        out = df.select(expr) if engine == "eager" else df.lazy().select(expr).collect()
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"
        if name in ("Binary", "String", "Null"):
            return False, f"must work, raised {message}"
        if name == "Object":
            return isinstance(exc, pl.exceptions.PolarsError), message
        errors = (
            pl.exceptions.ComputeError,
            pl.exceptions.InvalidOperationError,
            pl.exceptions.SchemaError,
        )
        names = [name, *ALIASES.get(name, [])]
        named = re.search(rf"\b({'|'.join(names)})\b", str(exc), re.IGNORECASE)
        mentions = re.search(r"binary|string", str(exc), re.IGNORECASE)
        return bool(isinstance(exc, errors) and named and mentions), message
    if name == "Object":
        # Polars converts an Object column to Binary (the objects' addresses)
        # before any plugin sees it, field function included: the plugin
        # cannot tell it from a Binary column (README, Polars section).
        return True, f"returned {out.dtypes}"
    if name not in ("Binary", "String", "Null"):
        return False, f"must raise, returned {out.dtypes}"
    result = out["x"]
    if method == "frame_info":
        if not isinstance(result.dtype, pl.Struct):
            return False, f"frame_info gave {result.dtype}"
    elif result.dtype != out_types[method]:
        return False, f"{method} gave {result.dtype}, expected {out_types[method]}"
    values = result.to_list()
    if name == "Null":
        return values == [None, None], f"expected nulls, got {values}"
    expected = {
        ("Binary", "compress"): lambda v: v[0][:4] == b"S4F2" and v[1] is None,
        ("Binary", "decompress"): lambda v: v == [b"abc", None],
        ("Binary", "decompress_str"): lambda v: v == ["abc", None],
        ("Binary", "crc32c"): lambda v: v == [s4_codec.crc32c(b"abc"), None],
        ("Binary", "frame_info"): lambda v: v[0]["original_size"] == 3 and v[1] is None,
        ("String", "compress"): lambda v: v[0][:4] == b"S4F2" and v[1] is None,
        ("String", "decompress"): lambda v: v == [b"", None],
        ("String", "decompress_str"): lambda v: v == ["", None],
        ("String", "crc32c"): lambda v: v == [s4_codec.crc32c(b"abc"), None],
        ("String", "frame_info"): lambda v: v[1] is None,
    }[name, method]
    return bool(expected(values)), repr(values)[:200]


def test_polars_every_dtype_and_method():
    """Binary and String work, Null gives nulls, every other dtype raises a polars
    error naming the dtype; nothing aborts or panics, eager or lazy."""
    require("polars")
    done, crashed = run_sweep(polars_dtype_sweep)
    failures = [f"{'/'.join(k)}: {d}" for k, (ok, d) in sorted(done.items()) if not ok]
    report = "\n".join([*(f"CRASH {v}" for v in crashed.values()), *failures])
    assert not crashed and not failures, report
    assert {k[0] for k in done} >= {"Binary", "String", "Null", "Int64", "Categorical"}


def run_sweep(sweep) -> tuple[dict, dict]:
    """Runs `sweep` in children until every dtype is done: a child that dies is run
    again without the dtype it died on, which is reported as a crash."""
    done: dict[tuple, tuple] = {}
    crashed: dict[str, str] = {}
    for _ in range(40):
        child = run_function(sweep, sorted({c[0] for c in done} | set(crashed)))
        lines = child.json_lines()
        for line in lines:
            if "case" in line:
                done[tuple(line["case"])] = (line["ok"], line["detail"])
        if child.rc == 0:
            assert "panicked" not in child.stderr, child.describe()
            return done, crashed
        started = [tuple(line["start"]) for line in lines if "start" in line]
        if not started or started[-1] in done:
            pytest.fail(child.describe())
        name = started[-1][0]
        how = child.signal or f"exit {child.rc}"
        panic = re.findall(r"panicked at .*\n.*|memory allocation .*", child.stderr)
        crashed[name] = f"{'/'.join(started[-1])}: {how}: {' | '.join(panic)[:300]}"
        for key in [k for k in done if k[0] == name]:
            del done[key]  # reported as a crash instead
    pytest.fail(f"the sweep did not finish: {crashed}")


# ---------------------------------------------------------------- 2. bomb columns

ROWS = 40_000


def _bomb_cells(variant: str) -> tuple[bytes, dict]:
    claim = 5 * GiB
    if variant == "s4":
        cell = b"S4F2" + struct.pack("<IQQI", 1, claim, 0, 0)  # empty payload
        return cell, {}
    if variant == "raw-zstd":
        # Frame header: FCS field of 8 bytes, window log 21, Frame_Content_Size = 5 GiB;
        # then a compressed last block claiming 1000 bytes, cut short.
        block = (1 | 2 << 1 | 1000 << 3).to_bytes(3, "little")
        cell = b"\x28\xb5\x2f\xfd\xc0\x58" + claim.to_bytes(8, "little") + block + b"\x9a" * 8
        return cell, {"format": "raw", "codec": "zstd"}
    # gzip: a stored block claiming 65535 bytes, cut short, and ISIZE = 4 GiB - 1.
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    cell = header + b"\x01\xff\xff\x00\x00" + b"\x9a" * 100 + b"\0" * 4 + b"\xff" * 4
    return cell, {"format": "raw", "codec": "gzip"}


def bomb_column(variant: str) -> None:
    """Child side: 40 000 forged cells under RLIMIT_AS = VmSize + 1 GiB."""
    import pyarrow as pa

    import s4_codec.arrow as s4a

    cell, kwargs = _bomb_cells(variant)
    cells = pa.array([cell] * ROWS, pa.binary())
    cap_address_space(GiB)
    before = peak_rss_kib()
    try:
        s4a.decompress(cells, **kwargs)
    except BaseException as exc:
        emit(raised=type(exc).__name__, message=str(exc)[:300])
        assert isinstance(exc, S4_CLASSES), f"{type(exc).__name__}: {exc}"
        assert "row 0" in str(exc), str(exc)
    else:
        raise AssertionError("forged cells decoded without an error")
    out = s4a.decompress(cells, on_error="null", **kwargs)
    assert len(out) == ROWS and out.null_count == ROWS, (len(out), out.null_count)
    grown = peak_rss_kib() - before
    emit(grown_kib=grown)
    assert grown <= RSS_GROWTH_KIB, f"peak RSS grew by {grown} KiB"


@pytest.mark.parametrize("variant", ["s4", "raw-zstd", "raw-gzip"])
def test_bomb_column_fails_cleanly(variant):
    require("pyarrow")
    check_function(bomb_column, variant)


# ---------------------------------------------------------------- 3. bomb bodies


def _garbage_frames(count: int, payload_len: int, claim: int, seed: int) -> bytes:
    import random

    rng = random.Random(seed)
    frames = []
    for _ in range(count):
        payload = rng.randbytes(payload_len)
        frames.append(b"S4F2" + struct.pack("<IQQI", 1, claim, payload_len, 0) + payload)
    return b"".join(frames)


def bomb_body(case: str) -> None:
    """Child side: forged object bodies under RLIMIT_AS = VmSize + 1 GiB."""
    if case == "over-limit":
        body = _garbage_frames(30_000, 100, 100 * 32768, 1)  # claims ~98 GB in 3.8 MB
        expected: tuple = (S4ManifestSizeExceedsLimitError,)
    else:
        body = _garbage_frames(1000, 200, 4 * MiB, 2)  # claims 4 GiB, below the limit
        expected = (S4IoError, S4SizeMismatchError)
    cap_address_space(GiB)
    before = peak_rss_kib()
    for metadata in (None, {"s4-framed": "true"}):
        try:
            decode_s4_object(body, metadata)
        except BaseException as exc:
            emit(metadata=metadata, raised=type(exc).__name__, message=str(exc)[:300])
            assert isinstance(exc, expected), f"{type(exc).__name__}: {exc}"
        else:
            raise AssertionError("a forged body decoded without an error")
    grown = peak_rss_kib() - before
    emit(grown_kib=grown)
    assert grown <= RSS_GROWTH_KIB, f"peak RSS grew by {grown} KiB"


@pytest.mark.parametrize("case", ["over-limit", "unbacked"])
def test_bomb_body_fails_cleanly(case):
    check_function(bomb_body, case)


def max_output_size_keyword() -> None:
    data = b"0123456789abcdef" * (MiB // 8)  # 2 MiB, one frame
    obj = encode_s4_object(data)
    with pytest.raises(S4ManifestSizeExceedsLimitError):
        decode_s4_object(obj["body"], max_output_size=len(data) - 1)
    with pytest.raises(S4ManifestSizeExceedsLimitError):
        decode_s4_object(obj["body"], obj["metadata"], max_output_size=len(data) - 1)
    assert decode_s4_object(obj["body"], max_output_size=len(data)) == data
    body = _garbage_frames(3000, 100, 100 * 32768, 3)  # ~9.8 GB claimed
    with pytest.raises(S4ManifestSizeExceedsLimitError):
        decode_s4_object(body, max_output_size=GiB)


def test_decode_s4_object_max_output_size():
    check_function(max_output_size_keyword)


# ---------------------------------------------------------------- 4. sidecar gaps


def _passthrough_frame(piece: bytes) -> bytes:
    crc = s4_codec.crc32c(piece)
    return b"S4F2" + struct.pack("<IQQI", 0, len(piece), len(piece), crc) + piece


def sidecar_gap() -> None:
    a, b = _passthrough_frame(b"A" * 10), _passthrough_frame(b"B" * 10)
    body = a + b
    entries = [
        {"original_offset": 0, "original_size": 10, "compressed_offset": 0, "compressed_size": 38},
        {
            "original_offset": 20,
            "original_size": 10,
            "compressed_offset": 38,
            "compressed_size": 38,
        },
    ]
    assert len(a) == len(b) == 38
    sidecar = encode_index(entries, len(body))

    def get(start, end):
        return decode_s4_object(body, sidecar=sidecar, start=start, end=end)

    assert get(0, 10) == b"A" * 10
    assert get(20, 30) == b"B" * 10
    assert get(22, 25) == b"B" * 3
    for start, end in ((5, 20), (12, 15), (5, 25), (10, 21), (0, 30)):
        with pytest.raises(S4IndexError, match="gap"):
            result = get(start, end)
            print(f"[{start}, {end}) gave {result!r}")


def test_sidecar_gap_is_refused():
    check_function(sidecar_gap)


# ---------------------------------------------------------------- 5. stale sidecars


def _three_frame_object():
    """9 MiB in three frames whose compressed sizes all differ."""
    import numpy as np

    rng = np.random.default_rng(5)
    parts = [rng.integers(0, top, n, dtype=np.uint8) for top, n in ((4, 4 * MiB), (16, 4 * MiB))]
    parts.append(rng.integers(0, 64, MiB, dtype=np.uint8))
    data = b"".join(p.tobytes() for p in parts)
    obj = encode_s4_object(data, level=1)
    entries = decode_index(obj["sidecar"])["entries"]
    assert len(entries) == 3
    assert len({e["compressed_size"] for e in entries}) == 3
    return data, obj, entries


def _ranges(entries: list[dict]) -> list[tuple[int, int, set[int]]]:
    """Ranges inside each entry and across each boundary, with the entries they touch."""
    out = []
    for k, e in enumerate(entries):
        start, end = e["original_offset"], e["original_offset"] + e["original_size"]
        out.append((start + 10, start + 1000, {k}))
        out.append((end - 300, end, {k}))
        if k + 1 < len(entries):
            out.append((end - 50, entries[k + 1]["original_offset"] + 50, {k, k + 1}))
    return out


def stale_sidecar(lie: str) -> None:
    data, obj, entries = _three_frame_object()
    body, lying = obj["body"], [dict(e) for e in entries]
    if lie == "original-size":
        lying[1]["original_size"] -= 100  # frame 1 holds 4 MiB; later offsets follow
        lying[2]["original_offset"] -= 100
        liars = {1, 2}
    elif lie == "shifted-offsets":
        # Later frames shifted up by 4 KiB, the first entry grown to cover it: still a
        # tiling. (A shift that leaves a gap is a legal sidecar: see sidecar_gap.)
        lying[0]["original_size"] += 4096
        for e in lying[1:]:
            e["original_offset"] += 4096
        liars = {0, 1, 2}
    elif lie == "swapped-frames":
        # The body was rewritten with frames 0 and 1 swapped; the sidecar is old.
        f0 = body[: entries[0]["compressed_size"]]
        f1 = body[entries[1]["compressed_offset"] : entries[2]["compressed_offset"]]
        body = f1 + f0 + body[entries[2]["compressed_offset"] :]
        liars = {0, 1}
    else:  # swapped compressed offsets, written by hand
        lying[0]["compressed_offset"], lying[1]["compressed_offset"] = (
            entries[1]["compressed_offset"],
            entries[0]["compressed_offset"],
        )
        liars = {0, 1, 2}
    sidecar = raw_sidecar(lying, len(body))
    bad = []
    for start, end, touched in _ranges(lying):
        try:
            got = decode_s4_object(body, sidecar=sidecar, start=start, end=end)
        except S4IndexError as exc:
            if touched & liars and not re.search(r"(frame|entry|entries) \d+", str(exc)):
                bad.append(f"[{start}, {end}): S4IndexError names no frame: {exc}")
            continue
        except BaseException as exc:
            bad.append(f"[{start}, {end}): {type(exc).__name__}: {exc}")
            continue
        if got != data[start:end]:
            bad.append(f"[{start}, {end}): WRONG BYTES (touches entries {sorted(touched)})")
        elif touched & liars:
            bad.append(f"[{start}, {end}): no S4IndexError for lying entries {sorted(touched)}")
    assert not bad, f"{lie}:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "lie", ["original-size", "shifted-offsets", "swapped-frames", "swapped-offsets"]
)
def test_stale_sidecar_is_refused(lie):
    pytest.importorskip("numpy")
    check_function(stale_sidecar, lie)


# ---------------------------------------------------------------- 6. explicit body mode


def explicit_body_mode() -> None:
    data, obj, entries = _three_frame_object()
    body, sidecar = obj["body"], obj["sidecar"]
    for start, end in ((4 * MiB + 5, 4 * MiB + 5000), (8 * MiB - 10, 8 * MiB + 10), (0, len(data))):
        first, last, _ = plan_range(sidecar, start, end)
        fetched = body[first:last]
        got = decode_s4_object(fetched, sidecar=sidecar, start=start, end=end, body_offset=first)
        assert got == data[start:end], (start, end)
        assert decode_s4_object(body, sidecar=sidecar, start=start, end=end) == data[start:end]
        if first > 0:  # fetched bytes passed as if they were the whole body
            with pytest.raises((S4IndexError, S4FrameError)):
                got = decode_s4_object(fetched, sidecar=sidecar, start=start, end=end)
                print(f"guessed [{start}, {end}): {'right' if got == data[start:end] else 'WRONG'}")
    bound = bind_index(sidecar, len(body), "abc")
    start, end = 4 * MiB - 7, 4 * MiB + 7
    kwargs = {"sidecar": bound, "start": start, "end": end}
    got = decode_s4_object(body, source_size=len(body), source_etag="abc", **kwargs)
    assert got == data[start:end]
    for size, etag in ((len(body) + 1, "abc"), (len(body), "abd")):
        with pytest.raises(S4IndexError, match="stale"):
            decode_s4_object(body, source_size=size, source_etag=etag, **kwargs)


def test_explicit_body_mode_and_bound_sidecars():
    pytest.importorskip("numpy")
    check_function(explicit_body_mode)


# ---------------------------------------------------------------- 7. threads


def thread_policy() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa

    import s4_codec.arrow as s4a
    from s4_codec import CpuZstd

    arr = pa.array([(b"%06d " % i) * 140 for i in range(2000)])  # ~1 KB cells, 2 MB
    pieces = [(b"chunk %d " % i) * 4000 for i in range(64)]
    body = b"".join(_zstd_frame(p) for p in pieces)
    for call in range(100):
        threads = call % 64 + 1
        s4a.compress(arr, threads=threads)
        assert decode_s4_object(body, threads=threads) == b"".join(pieces)
    blob = bytes(range(256)) * (8 * MiB // 256)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: CpuZstd(3).compress(blob), range(16)))
    limit = 2 * os.cpu_count() + 8
    # A joined Python thread's OS thread may take a moment to vanish: give
    # exiting threads a second, a leak would stay.
    deadline = time.monotonic() + 1.0
    while len(os.listdir("/proc/self/task")) > limit and time.monotonic() < deadline:
        time.sleep(0.01)
    tasks = os.listdir("/proc/self/task")
    names = sorted(open(f"/proc/self/task/{t}/comm").read().strip() for t in tasks)
    emit(threads=len(tasks), limit=limit, python_threads=threading.active_count())
    assert len(tasks) <= limit, f"{len(tasks)} OS threads > {limit}: {names}"


def _zstd_frame(piece: bytes) -> bytes:
    payload, size, crc = s4_codec.CpuZstd(1).compress(piece)
    return b"S4F2" + struct.pack("<IQQI", 1, size, len(payload), crc) + payload


def test_thread_count_is_bounded():
    require("pyarrow")
    check_function(thread_policy)


def zero_threads() -> None:
    import pyarrow as pa

    import s4_codec.arrow as s4a

    arr = pa.array([b"x"])
    cells = s4a.compress(arr)
    calls = {
        "arrow.compress": lambda: s4a.compress(arr, threads=0),
        "arrow.decompress": lambda: s4a.decompress(cells, threads=0),
        "arrow.crc32c": lambda: s4a.crc32c(arr, threads=0),
        "encode_s4_object": lambda: encode_s4_object(b"x", threads=0),
        "decode_s4_object": lambda: decode_s4_object(cells[0].as_py(), threads=0),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match="threads"):
            call()
            print(name, "accepted threads=0")


def test_zero_threads_is_a_value_error():
    require("pyarrow")
    check_function(zero_threads)


# ---------------------------------------------------------------- 8. small contracts


def as_string_nulls_validate() -> None:
    import pyarrow as pa

    import s4_codec.arrow as s4a

    values = [b"ok", b"\xff\xfe", None, b"fine", b"\xc3", b""]
    for layout in ("binary", "large_binary", "binary_view"):
        cells = s4a.compress(pa.array(values, getattr(pa, layout)()))
        out = s4a.decompress(cells, as_string=True, on_error="null")
        assert out.to_pylist() == ["ok", None, None, "fine", None, ""], layout
        out.validate(full=True)


def test_as_string_on_error_null_gives_valid_strings():
    require("pyarrow")
    check_function(as_string_nulls_validate)


def empty_chunked_results() -> None:
    import pyarrow as pa

    import s4_codec.arrow as s4a

    empty = pa.chunked_array([], pa.binary())
    crcs = s4a.crc32c(empty)
    assert isinstance(crcs, pa.ChunkedArray) and crcs.type == pa.uint32() and len(crcs) == 0
    info = s4a.frame_info(empty)
    assert isinstance(info, pa.ChunkedArray) and len(info) == 0
    assert pa.types.is_struct(info.type), info.type
    names = [info.type.field(i).name for i in range(info.type.num_fields)]
    assert names == ["codec", "original_size", "compressed_size", "crc32c"], names


def test_empty_chunked_array_result_types():
    require("pyarrow")
    check_function(empty_chunked_results)


def encode_index_refusals() -> None:
    def entry(oo, os_, co, cs):
        return {
            "original_offset": oo,
            "original_size": os_,
            "compressed_offset": co,
            "compressed_size": cs,
        }

    cases = {
        "original overflow": [entry(2**64 - 1, 2, 0, 30)],
        "compressed overflow": [entry(0, 2, 2**64 - 10, 30)],
        "overflow after a good entry": [entry(0, 5, 0, 30), entry(2**64 - 2, 5, 30, 30)],
        "non-monotonic original": [entry(10, 5, 0, 30), entry(0, 5, 30, 30)],
        "non-monotonic compressed": [entry(0, 5, 40, 30), entry(5, 5, 0, 30)],
    }
    for name, entries in cases.items():
        try:
            encode_index(entries, 100)
        except BaseException as exc:  # a pyo3 PanicException is a BaseException
            assert isinstance(exc, S4IndexError), f"{name}: {type(exc).__name__}: {exc}"
        else:
            raise AssertionError(f"{name}: accepted")


def test_encode_index_refuses_bad_entries():
    check_function(encode_index_refusals)


# ---------------------------------------------------------------- 9. GIL


def frame_info_gil() -> None:
    import pyarrow as pa
    from test_scalar import _longest_stall

    import s4_codec.arrow as s4a

    cells = s4a.compress(pa.array([b"v%07d" % i for i in range(2_000_000)]), codec="passthrough")
    blob = bytes(64 * MiB)
    stall, duration = _longest_stall(lambda: blob.count(b"never found"))  # holds the GIL
    assert stall > 0.5 * duration, ("control", stall, duration)
    stall, duration = _longest_stall(lambda: s4a.frame_info(cells))
    emit(stall=stall, duration=duration)
    assert stall < 0.5 * duration, f"frame_info held the GIL: stall {stall:.3f}s of {duration:.3f}s"


def test_frame_info_releases_the_gil():
    require("pyarrow")
    check_function(frame_info_gil)


def test_subprocess_helper_reports_signals():
    child = run_function(os.abort)
    assert child.signal == "SIGABRT"
    with pytest.raises(AssertionError, match="SIGABRT"):
        assert_clean(child)


# ---------------------------------------------------------------- 10. placed outputs


def _json_column(rows: int, seed: int = 7):
    """A binary column of JSON-like values, about 1 KiB each."""
    import random

    import pyarrow as pa

    rng = random.Random(seed)
    return pa.array(
        [(b'{"id":%d,"msg":"%s"}' % (i, b"log line " * rng.randint(40, 200))) for i in range(rows)],
        pa.binary(),
    )


def lying_claims_under_address_limit(cap: bool) -> None:
    """Child side: S4 cells whose headers claim 4 MiB each but hold 1 KiB,
    with the address space capped below their sum or not."""
    import pyarrow as pa

    import s4_codec.arrow as s4a

    honest = s4a.compress(_json_column(60)).to_pylist()
    lying = [c[:8] + struct.pack("<Q", 4 * MiB) + c[16:] for c in honest]
    cells = pa.array(lying, pa.binary())
    if cap:
        cap_address_space(160 * MiB)  # the claims add up to 240 MiB
    before = peak_rss_kib()
    try:
        s4a.decompress(cells)
    except S4_CLASSES as exc:
        emit(raised=type(exc).__name__, message=str(exc)[:200])
        assert "row 0" in str(exc), str(exc)
    else:
        raise AssertionError("lying cells decoded without an error")
    out = s4a.decompress(cells, on_error="null")
    assert out.null_count == len(cells), out.null_count
    grown = peak_rss_kib() - before
    emit(grown_kib=grown)
    assert grown <= 32 * 1024, f"peak RSS grew by {grown} KiB"
    # An honest column still decodes under the cap, in place or by growing.
    values = _json_column(20_000)
    assert s4a.decompress(s4a.compress(values)).equals(values)


@pytest.mark.parametrize("cap", [False, True], ids=["uncapped", "address-space-capped"])
def test_lying_claims_commit_no_memory(cap):
    require("pyarrow")
    check_function(lying_claims_under_address_limit, cap)


def holes_and_lies_in_a_large_column() -> None:
    """Child side: a column large enough for pooled blocks, with one corrupt
    cell, one cell claiming a byte too many and one a byte too few."""
    import pyarrow as pa

    import s4_codec.arrow as s4a

    values = _json_column(40_000)
    for fmt in ("s4", "raw"):
        kwargs = {"format": fmt, "codec": "zstd"}
        cells = s4a.compress(values, **kwargs).to_pylist()
        corrupt = bytearray(cells[1000])
        corrupt[-3] ^= 0x5A
        cells[1000] = bytes(corrupt)
        for row, delta in ((20_000, 1), (30_000, -1)):
            cell = bytearray(cells[row])
            if fmt == "s4":  # the frame header's original_size
                cell[8:16] = struct.pack("<Q", struct.unpack("<Q", cell[8:16])[0] + delta)
            else:  # the zstd Frame_Content_Size (single-segment frames of > 255 bytes: 2 bytes)
                size = struct.unpack("<H", cell[5:7])[0] + delta
                cell[5:7] = struct.pack("<H", size)
            cells[row] = bytes(cell)
        column = pa.array(cells, pa.binary())
        expected = values.to_pylist()
        for row in (1000, 20_000, 30_000):
            expected[row] = None
        for threads in (1, 2):
            out = s4a.decompress(column, on_error="null", threads=threads, **kwargs)
            assert out.to_pylist() == expected, (fmt, threads)
            try:
                s4a.decompress(column, threads=threads, **kwargs)
            except S4_CLASSES as exc:
                assert str(exc).startswith("row 1000:"), str(exc)
            else:
                raise AssertionError("a corrupt column decoded without an error")
        emit(fmt=fmt, ok=True)


def test_holes_and_lying_cells_in_pooled_outputs():
    require("pyarrow")
    check_function(holes_and_lies_in_a_large_column)


def pooled_blocks_across_threads() -> None:
    """Child side: results made on one thread and freed on others, while
    other threads decode into the recycled memory; every byte checked."""
    import queue
    import threading

    import s4_codec.arrow as s4a

    values = _json_column(30_000)
    cells = s4a.compress(values)
    to_free: queue.Queue = queue.Queue()
    failures = []

    def decode(threads: int) -> None:
        for _ in range(8):
            out = s4a.decompress(cells, threads=threads)
            if not out.equals(values):
                failures.append(threads)
            to_free.put(out)

    def free() -> None:
        while (item := to_free.get()) is not None:
            del item

    freer = threading.Thread(target=free)
    freer.start()
    workers = [threading.Thread(target=decode, args=(1 + i % 2,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    to_free.put(None)
    freer.join()
    assert not failures, failures
    emit(ok=True)


def test_pooled_blocks_freed_on_other_threads():
    require("pyarrow")
    check_function(pooled_blocks_across_threads, timeout=120)


def _vm_rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def idle_pool_returns_memory() -> None:
    """Child side: a freed 150 MiB result waits in the pool, then goes back
    to the system within about a second; a forked child decodes meanwhile."""
    import signal

    import s4_codec.arrow as s4a

    values = _json_column(150_000)
    cells = s4a.compress(values)
    base = _vm_rss_kib()
    out = s4a.decompress(cells, threads=1)
    assert out.equals(values)
    del out
    pooled = _vm_rss_kib() - base
    emit(pooled_kib=pooled)
    pid = os.fork()
    if pid == 0:  # the child: the pool's lock and reaper are the parent's
        signal.alarm(60)
        ok = s4a.decompress(cells, threads=1).equals(values)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    deadline = time.monotonic() + 5
    while _vm_rss_kib() - base > 32 * 1024 and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _vm_rss_kib() - base
    emit(left_kib=left)
    assert pooled > 100 * 1024, pooled
    assert left <= 32 * 1024, f"{left} KiB still held after idling"


def test_idle_pool_returns_memory_and_survives_fork():
    require("pyarrow")
    check_function(idle_pool_returns_memory, timeout=120)


def pooled_memory_yields_to_an_address_limit() -> None:
    """Child side: a freed 150 MiB result waits in the pool while a larger
    column decodes under an address-space limit that cannot hold both."""
    import s4_codec.arrow as s4a

    small, large = _json_column(150_000), _json_column(200_000, seed=8)
    small_cells, large_cells = s4a.compress(small), s4a.compress(large)
    cap_address_space(large.nbytes + 48 * MiB)
    assert s4a.decompress(small_cells).equals(small)  # freed at once: pooled
    assert s4a.decompress(large_cells).equals(large)
    emit(ok=True)


def test_pooled_memory_yields_to_an_address_limit():
    require("pyarrow")
    check_function(pooled_memory_yields_to_an_address_limit, timeout=120)
