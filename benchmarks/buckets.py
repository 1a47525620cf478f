"""`make bench --only buckets`: S4 objects in buckets at S3's pace, and the
Spark `s4` data source.

1. `s4_codec.io.get` against boto3 `get_object` + `decode_s4_object`, on
   `s3_range_server.py` in its own process at S3's pace (90 MB/s per
   connection, 20 ms to first byte): wall clock and the client's CPU time.
2. Spark reading an NDJSON S4 object as lines from local disk: local[2]
   against local[1], against `spark.read.text` of the same data stored
   uncompressed, and each task's peak RSS. Each Spark configuration runs in a
   child process of its own (`python buckets.py --spark-child ...`).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
MiB = 1 << 20
PARTITION_BYTES = 128 * MiB


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), _cpu()
    fn()
    return time.perf_counter() - wall, _cpu() - cpu


def ndjson(size: int) -> bytes:
    """`size` bytes of log-like JSON lines: a 64 MiB pool of varied lines
    cycled (no zstd window reaches across it), cut at a line end."""
    from run import ndjson_events

    pool = ndjson_events(min(size, 64 * MiB))
    pool = pool[: pool.rfind(b"\n") + 1]
    data = (pool * (size // len(pool) + 1))[:size]
    return data[: data.rfind(b"\n") + 1]


def get_section(quick: bool) -> None:
    from run import bench_bucket

    import s4_codec
    import s4_codec.io as s4io

    server = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "s3_range_server.py"),
            "--rate",
            "90e6",
            "--first-byte",
            "0.02",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        endpoint = server.stdout.readline().strip()
        client, store = bench_bucket(endpoint)
        size = 64 * MiB if quick else 256 * MiB
        data = ndjson(size)
        s4io.put(store, "obj", data)

        def ours():
            assert len(s4io.get(store, "obj")) == len(data)

        def boto3_then_decode():
            got = client.get_object(Bucket="bench", Key="obj")
            body = got["Body"].read()
            assert len(s4_codec.decode_s4_object(body, got["Metadata"])) == len(data)

        best = {"get": (1e9, 0.0), "boto3": (1e9, 0.0)}
        for _ in range(2 if quick else 3):
            for name, fn in (("get", ours), ("boto3", boto3_then_decode)):
                best[name] = min(best[name], _timed(fn))
        (t_get, cpu_get), (t_boto, cpu_boto) = best["get"], best["boto3"]
        print(
            f"\nbuckets: {size >> 20} MiB NDJSON S4 object on s3_range_server.py "
            "(90 MB/s per connection, 20 ms to first byte), best of rounds"
        )
        print(f"{'':34}{'wall s':>8}{'MB/s':>8}{'client CPU s':>14}")
        for label, wall, cpu in (
            ("s4_codec.io.get", t_get, cpu_get),
            ("boto3 get_object + decode", t_boto, cpu_boto),
        ):
            print(f"{label:34}{wall:8.2f}{len(data) / wall / 1e6:8.0f}{cpu:14.2f}")
        print(f"boto3+decode / get = {t_boto / t_get:.2f}x (target >= 2)")
    finally:
        server.terminate()
        server.wait()


def spark_section(quick: bool) -> None:
    if shutil.which("java") is None:
        print("\n(buckets spark part skipped: no Java)")
        return
    from obstore.store import LocalStore

    import s4_codec.io as s4io

    size = 256 * MiB if quick else 1 << 30
    with tempfile.TemporaryDirectory(prefix="s4-bench-") as tmp:
        data = ndjson(size)
        s4io.put(LocalStore(tmp), "s4/events.ndjson", data)
        os.makedirs(f"{tmp}/text")
        Path(tmp, "text", "events.ndjson").write_bytes(data)
        rows = data.count(b"\n")
        del data
        results = {}
        for master in ("local[1]", "local[2]"):
            child = subprocess.run(
                [sys.executable, __file__, "--spark-child", master, tmp, str(rows)],
                capture_output=True,
                text=True,
            )
            if child.returncode != 0:
                raise RuntimeError(f"spark child {master} failed:\n{child.stderr[-3000:]}")
            results[master] = json.loads(child.stdout.strip().splitlines()[-1])
    one, two = results["local[1]"], results["local[2]"]
    print(
        f"\nbuckets: Spark reads a {size >> 20} MiB NDJSON S4 object ({rows:,} lines) from "
        f"local disk as lines, partitionBytes {PARTITION_BYTES >> 20} MiB, best of 3"
    )
    print(f"{'':46}{'local[1] s':>11}{'local[2] s':>11}{'MB/s [2]':>10}")
    for key, label in (
        ("s4_scan", "s4 lines, every row (noop write)"),
        ("text_scan", "spark.read.text uncompressed (noop write)"),
        ("s4_json", "s4 lines -> from_json -> count by level"),
        ("text_json", "text -> from_json -> count by level"),
    ):
        print(f"{label:46}{one[key]:11.2f}{two[key]:11.2f}{size / two[key] / 1e6:10.0f}")
    print(
        "cores busy (JVM + Python workers CPU / wall), s4 lines every row: "
        f"local[1] {one['s4_scan_cpu'] / one['s4_scan']:.2f}, "
        f"local[2] {two['s4_scan_cpu'] / two['s4_scan']:.2f}"
    )
    print(
        f"s4 lines local[2] / local[1] speed-up = {one['s4_scan'] / two['s4_scan']:.2f}x "
        f"(target >= 1.7)\n"
        f"s4 lines / spark.read.text speed, local[2]: every row "
        f"{two['text_scan'] / two['s4_scan']:.2f}x, from_json query "
        f"{two['text_json'] / two['s4_json']:.2f}x (target >= 0.8)\n"
        f"peak RSS of a Python worker after reading: {two['worker_rss'] / MiB:.0f} MiB "
        f"(target <= 2 x partitionBytes + 64 MiB = {(2 * PARTITION_BYTES >> 20) + 64} MiB)"
    )


def _spark_cpu() -> float:
    """CPU seconds used so far by Spark's JVM and its Python workers."""
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if b"java" in command or b"pyspark.daemon" in command:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _python_workers_peak_rss() -> int:
    """The largest peak RSS (VmHWM) of Spark's Python workers, in bytes: the
    daemon's forked children run the tasks, each its own process."""
    peak = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"pyspark.daemon" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]) * 1024)
    return peak


def spark_child(master: str, directory: str, rows: int) -> None:
    """Times the reads in one Spark configuration; prints one JSON line."""
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from s4_codec.spark import register_data_source

    spark = (
        SparkSession.builder.master(master)
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.memory", "4g")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    register_data_source(spark)
    s4 = (
        spark.read.format("s4")
        .option("partitionBytes", str(PARTITION_BYTES))
        .load(f"{directory}/s4/")
    )
    text = spark.read.option("maxPartitionBytes", str(PARTITION_BYTES)).text(
        f"{directory}/text/events.ndjson"
    )
    assert s4.count() == text.count() == rows

    def scan(df):
        df.write.format("noop").mode("overwrite").save()

    def by_level(df):
        parsed = df.select(F.from_json("value", "level STRING, status INT").alias("e"))
        parsed.groupBy("e.level").count().collect()

    cases = {
        "s4_scan": lambda: scan(s4),
        "text_scan": lambda: scan(text),
        "s4_json": lambda: by_level(s4),
        "text_json": lambda: by_level(text),
    }
    best = dict.fromkeys(cases, float("inf"))
    cpu = dict.fromkeys(cases, 0.0)
    for fn in cases.values():
        fn()  # warm-up: JVM code, Python workers
    for _ in range(3):
        for name, fn in cases.items():
            before = _spark_cpu()
            wall = _timed(fn)[0]
            if wall < best[name]:
                best[name], cpu[name] = wall, _spark_cpu() - before
    best["worker_rss"] = _python_workers_peak_rss()
    best.update({f"{name}_cpu": seconds for name, seconds in cpu.items()})
    spark.stop()
    print(json.dumps(best))


def section(quick: bool) -> None:
    get_section(quick)
    spark_section(quick)


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--spark-child":
    sys.path.insert(0, str(HERE))
    spark_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
