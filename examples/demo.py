"""Compresses a generated data set with each codec and prints sizes, ratios
and throughput. Run with `make demo` (or `python examples/demo.py`)."""

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


def main() -> None:
    codecs = [CpuZstd(1), CpuZstd(3), CpuZstd(9), CpuGzip(1), CpuGzip(6)]
    print(
        f"{'data':<10} {'codec':<17} {'input':>10} {'output':>10} {'ratio':>7} "
        f"{'compress':>12} {'decompress':>12}"
    )
    for name, data in generated_data().items():
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


if __name__ == "__main__":
    main()
