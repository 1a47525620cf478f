"""Compress a DataFrame column on a local Spark, store it to Parquet, read it
back with PyArrow and with Spark, and decompress.

    make demo && .venv/bin/python examples/spark_compress_column.py
"""

from __future__ import annotations

import os
import sys
import tempfile

import pyarrow.parquet as pq
from pyspark.sql import SparkSession

import s4_codec.arrow as s4a
from s4_codec.spark import compress_columns, decompress_columns


def main() -> None:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers use this environment
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    df = spark.range(200_000).selectExpr(
        "id",
        "to_json(named_struct('id', id, 'user', concat('u', id % 5000), "
        "'event', 'page_view', 'path', concat('/item/', id % 977), "
        "'viewed', array_repeat(concat('item-', id % 977), 40))) as payload",
    )
    packed = compress_columns(df, ["payload"], codec="zstd", level=3)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "events")
        packed.write.parquet(path)
        table = pq.read_table(path)
        raw = df.selectExpr("sum(length(payload))").first()[0]
        stored = sum(len(v) for v in table.column("payload").to_pylist())
        print(f"payload: {raw:,} bytes of JSON -> {stored:,} bytes in compressed cells")
        first = s4a.decompress(table.column("payload"), as_string=True)[0]
        print(f"decoded by PyArrow: {first}")
        back = decompress_columns(spark.read.parquet(path), "payload", as_string=True)
        print(f"decoded by Spark:   {back.orderBy('id').first()['payload']}")
    spark.stop()


if __name__ == "__main__":
    main()
