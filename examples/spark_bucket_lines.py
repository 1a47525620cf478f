"""Analyse S4 objects in a bucket with Spark, no gateway in the path: the `s4`
data source splits each object by its frames, and executors fetch and decode
only their frames. Then write the result back as S4 objects.

Runs against a moto S3 server it starts on loopback:

    make demo && .venv/bin/python examples/spark_bucket_lines.py
"""

from __future__ import annotations

import json
import os
import random
import socket
import sys

import boto3
from moto.server import ThreadedMotoServer
from obstore.store import S3Store
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

import s4_codec.io as s4io
from s4_codec.spark import register_data_source

BUCKET = "demo-logs"
CREDENTIALS = {"access_key_id": "demo", "secret_access_key": "demo", "region": "us-east-1"}


def events(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return b"".join(
        json.dumps(
            {
                "ts": 1_765_000_000 + i,
                "level": rng.choice(["info", "info", "info", "warn", "error"]),
                "svc": rng.choice(["checkout", "search", "auth"]),
                "latency_ms": round(rng.expovariate(0.02), 2),
            }
        ).encode()
        + b"\n"
        for i in range(n)
    )


def main() -> None:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers use this environment
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="demo",
            aws_secret_access_key="demo",
        ).create_bucket(Bucket=BUCKET)
        store = S3Store(
            BUCKET, endpoint=endpoint, client_options={"allow_http": True}, **CREDENTIALS
        )
        # As the gateway stores them: a 3-frame object with its sidecar, and a gzip one.
        big = s4io.put(store, "app/2026-12-05.ndjson", events(150_000, 1))
        s4io.put(store, "app/2026-12-06.ndjson", events(20_000, 2), "cpu-gzip")
        print(f"stored {big['size']:,} bytes as {big['stored_size']:,} (4 MiB frames + sidecar)")

        spark = (
            SparkSession.builder.master("local[2]")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        register_data_source(spark)
        options = {"endpoint_url": endpoint, **CREDENTIALS}

        lines = (
            spark.read.format("s4")
            .options(**options)
            .option("partitionBytes", "4m")
            .load(f"s3://{BUCKET}/app/")
        )
        print(f"{lines.rdd.getNumPartitions()} partitions, split at frame boundaries")
        parsed = lines.select(
            F.from_json("value", "ts LONG, level STRING, svc STRING, latency_ms DOUBLE").alias("e"),
            "path",
        ).select("e.*", "path")
        summary = parsed.groupBy("svc", "level").agg(
            F.count("*").alias("n"), F.round(F.avg("latency_ms"), 1).alias("avg_ms")
        )
        summary.orderBy("svc", "level").show()

        objects = spark.read.format("s4").options(**options).option("mode", "objects")
        objects.load(f"s3://{BUCKET}/app/*.ndjson").select("path", "length").show(truncate=False)

        errors = parsed.where("level = 'error'").select(F.to_json(F.struct("ts", "svc")))
        out = f"s3://{BUCKET}/errors/"
        errors.write.format("s4").options(**options).mode("overwrite").save(out)
        written = [k for k, _ in s4io.backend_for(store).listing("errors/")]
        print("written:", sorted(written))
        part = next(k for k in written if k.endswith(".txt"))
        print("first line read back by s4_codec.io:", s4io.get(store, part).split(b"\n")[0])
        spark.stop()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
