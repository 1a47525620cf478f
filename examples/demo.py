"""Compresses a generated data set with each codec and prints sizes, ratios
and throughput; then the headline: the same log lines as a column of small
values (a Polars blob column and an Arrow array), compressed and decompressed
value by value, against python-zstandard on the same values. Run with
`make demo` (or `python examples/demo.py`)."""

from __future__ import annotations

import json
import os
import random
import time

from s4_codec import CpuGzip, CpuZstd, crc32c


def generated_data() -> dict[str, bytes]:
    rng = random.Random(42)
    services = ["checkout", "search", "auth", "billing", "catalog"]
    logs = "\n".join(
        json.dumps(
            {
                "ts": 1_750_000_000 + i,
                "level": rng.choice(["info", "info", "info", "warn", "error"]),
                "service": rng.choice(services),
                "latency_ms": round(rng.expovariate(1 / 40), 2),
                "user": f"u{rng.randrange(50_000):05d}",
                "path": f"/api/v1/{rng.choice(services)}/{rng.randrange(1000)}",
            }
        )
        for i in range(60_000)
    ).encode()
    words = ["storage", "gateway", "frame", "object", "bucket", "chunk", "codec", "crc"]
    prose = " ".join(rng.choice(words) for _ in range(800_000)).encode()
    return {"json logs": logs, "text": prose, "random": os.urandom(4 << 20)}


def best_of(fn, rounds: int = 3) -> float:
    """The fastest of a few runs, in seconds (the first pays for warm-up)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _zstandard_rows(values: list[bytes]) -> list[tuple[str, int, float, float]]:
    """python-zstandard on the same values: a loop, and its zero-copy batch API."""
    import struct

    import zstandard

    compressor, decompressor = zstandard.ZstdCompressor(level=3), zstandard.ZstdDecompressor()
    frames = [compressor.compress(v) for v in values]
    spans, at = [], 0  # (offset, length) of each value in the joined buffer
    for value in values:
        spans += [at, len(value)]
        at += len(value)
    batch_in = zstandard.BufferWithSegments(
        b"".join(values), struct.pack(f"<{len(spans)}Q", *spans)
    )
    batch_out = compressor.multi_compress_to_buffer(batch_in, threads=-1)
    return [
        (
            "zstandard, a loop",
            sum(map(len, frames)),
            best_of(lambda: [compressor.compress(v) for v in values]),
            best_of(lambda: [decompressor.decompress(f) for f in frames]),
        ),
        (
            "zstandard, batch",
            batch_out.size(),
            best_of(lambda: compressor.multi_compress_to_buffer(batch_in, threads=-1)),
            best_of(lambda: decompressor.multi_decompress_to_buffer(batch_out, threads=-1)),
        ),
    ]


def columns(values: list[bytes]) -> None:
    """One document per value: what a blob column in a table holds."""
    import polars as pl
    import pyarrow as pa

    import s4_codec.polars  # noqa: F401  (registers pl.col(...).s4)
    from s4_codec import arrow

    cells = pa.array(values, pa.binary())
    frame = pl.DataFrame({"payload": cells})
    total = sum(map(len, values))
    mb = total / 1e6
    packed_arrow = arrow.compress(cells, codec="zstd", level=3)
    packed_polars = frame.select(pl.col("payload").s4.compress(codec="zstd", level=3))
    assert arrow.decompress(packed_arrow).equals(cells)
    restored = packed_polars.select(pl.col("payload").s4.decompress())
    assert restored["payload"].to_list() == values
    rows = [
        (
            "s4_codec.arrow",
            packed_arrow.nbytes,
            best_of(lambda: arrow.compress(cells, codec="zstd", level=3)),
            best_of(lambda: arrow.decompress(packed_arrow)),
        ),
        (
            "Polars .s4",
            packed_polars["payload"].bin.size().sum(),
            best_of(lambda: frame.select(pl.col("payload").s4.compress(codec="zstd", level=3))),
            best_of(lambda: packed_polars.select(pl.col("payload").s4.decompress())),
        ),
    ]
    try:
        rows += _zstandard_rows(values)
    except ImportError:
        print("\n(pip install zstandard to see the column doors against python-zstandard)")
    print(
        f"\ncolumns: {len(values):,} values of {total // len(values):,} B on average "
        f"({mb:.1f} MB of JSON logs), zstd level 3, each value its own frame"
    )
    loop = rows[2] if len(rows) > 2 else None
    print(
        f"{'door':<18} {'ratio':>6} {'compress':>12} {'decompress':>12} "
        f"{'vs a python-zstandard loop' if loop else '':>27}"
    )
    for name, size, compress_s, decompress_s in rows:
        versus = f"{loop[2] / compress_s:>13.1f}x / {loop[3] / decompress_s:.1f}x" if loop else ""
        print(
            f"{name:<18} {total / size:>5.2f}x {mb / compress_s:>7.0f} MB/s "
            f"{mb / decompress_s:>7.0f} MB/s {versus}"
        )


def main() -> None:
    codecs = [CpuZstd(1), CpuZstd(3), CpuZstd(9), CpuGzip(1), CpuGzip(6)]
    print(
        f"{'data':<10} {'codec':<17} {'input':>10} {'output':>10} {'ratio':>7} "
        f"{'compress':>12} {'decompress':>12}"
    )
    data_sets = generated_data()
    for name, data in data_sets.items():
        for codec in codecs:
            start = time.perf_counter()
            payload, size, crc = codec.compress(data)
            compress_s = time.perf_counter() - start
            start = time.perf_counter()
            restored = codec.decompress(payload, size, crc)
            decompress_s = time.perf_counter() - start
            assert restored == data and crc == crc32c(data)
            mb = size / 1e6
            print(
                f"{name:<10} {codec!r:<17} {size:>10,} {len(payload):>10,} "
                f"{size / len(payload):>6.2f}x {mb / compress_s:>8.0f} MB/s "
                f"{mb / decompress_s:>8.0f} MB/s"
            )
    lines = data_sets["json logs"].split(b"\n")
    columns([b"\n".join(lines[i : i + 20]) for i in range(0, len(lines), 20)])


if __name__ == "__main__":
    main()
