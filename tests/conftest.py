"""Shared fixtures: golden vectors, their input recipes, and the rule that an
integration test may skip locally but must run in CI (S4_REQUIRE_ALL=1)."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import struct
from pathlib import Path
from types import ModuleType

import pytest

VECTORS_PATH = Path(__file__).parent / "data" / "vectors.json"
REQUIRE_ALL = os.environ.get("S4_REQUIRE_ALL") == "1"


def require(module: str) -> ModuleType:
    """Import an optional integration; skip without it, fail in CI."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if REQUIRE_ALL:
            pytest.fail(f"{module} is required when S4_REQUIRE_ALL=1: {exc}")
        pytest.skip(f"{module} is not installed")


@pytest.fixture(scope="session")
def vectors() -> dict:
    return json.loads(VECTORS_PATH.read_text())


def _splitmix64(seed: int, n: int) -> bytes:
    mask = (1 << 64) - 1
    state, out = seed, bytearray()
    while len(out) < n:
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        out += z.to_bytes(8, "little")
    return bytes(out[:n])


def json_event(i: int) -> bytes:
    return (
        f'{{"timestamp":"2026-06-10T12:{i % 60:02d}:{(i * 7) % 60:02d}Z","level":"info",'
        f'"service":"checkout-api","event":"order_created","order_id":"ord_{i:08d}",'
        f'"customer_id":"cus_{i * 31:08d}","amount_cents":{100 + i * 13},"currency":"USD",'
        f'"items":{i % 9}}}'
    ).encode()


def text(lines: int) -> bytes:
    return b"".join(b"line %d: the quick brown fox %d\n" % (i, (i * i) % 977) for i in range(lines))


RECIPES = {
    "hello": lambda n: b"hello squished s3 " * n,
    "hello_len": lambda n: (b"hello squished s3 " * (n // 18 + 1))[:n],
    "range": lambda n: bytes(range(256)) * n,
    "mild": lambda n: bytes((i * 31 + (i >> 13)) & 0xFF for i in range(n)),
    "text": text,
    "splitmix64": _splitmix64,
    "json_event": json_event,
    "x": lambda n: b"x" * n,
}


def raw_sidecar(
    entries: list[dict], total_padded: int, source_size: int = 0, etag: str | None = None
) -> bytes:
    """A v2 sidecar written field by field (FORMAT.md §9.1), so that it may break
    rules `encode_index` refuses to write (order, gaps, lies)."""
    end = max((e["original_offset"] + e["original_size"] for e in entries), default=0)
    tag = (etag or "").encode()
    out = b"S4IX" + struct.pack(
        "<IQQQQI", 2, len(entries), end, total_padded, source_size, len(tag)
    )
    out += tag
    for e in entries:
        out += struct.pack(
            "<QQQQ",
            e["original_offset"],
            e["original_size"],
            e["compressed_offset"],
            e["compressed_size"],
        )
    return out


def blob(spec: dict) -> bytes | None:
    """Materialise a vectors.json byte blob (inline hex or a recipe), checked by
    sha256; None for large blobs the file gives only by digest."""
    if "hex" in spec:
        data = bytes.fromhex(spec["hex"])
    elif "recipe" not in spec:
        return None
    else:
        name, _, args = spec["recipe"].partition("(")
        data = RECIPES[name](*(int(a) for a in args.rstrip(")").split(",")))
    assert len(data) == spec["len"]
    assert hashlib.sha256(data).hexdigest() == spec["sha256"], spec.get("recipe")
    return data


# --- Object stores for tests/test_io*.py: a real S3 HTTP server on loopback ---

S3_BUCKET = "s4-test-bucket"
S3_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="session")
def moto_endpoint():
    """``ThreadedMotoServer`` (moto[server], real HTTP) on a free loopback port,
    with one bucket; stopped at the end of the session."""
    import socket

    require("moto")
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3 = require("boto3")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **S3_CREDENTIALS)
    client.create_bucket(Bucket=S3_BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def s3_client(moto_endpoint):
    boto3 = require("boto3")
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", **S3_CREDENTIALS)


@pytest.fixture(scope="session")
def s3_store(moto_endpoint):
    """An obstore S3Store on the moto bucket (plain HTTP)."""
    store_mod = require("obstore.store")
    return store_mod.S3Store(
        S3_BUCKET,
        endpoint=moto_endpoint,
        region="us-east-1",
        access_key_id=S3_CREDENTIALS["aws_access_key_id"],
        secret_access_key=S3_CREDENTIALS["aws_secret_access_key"],
        client_options={"allow_http": True},
    )


@pytest.fixture(scope="session")
def s3fs_options(moto_endpoint):
    return {
        "key": S3_CREDENTIALS["aws_access_key_id"],
        "secret": S3_CREDENTIALS["aws_secret_access_key"],
        "client_kwargs": {"endpoint_url": moto_endpoint, "region_name": "us-east-1"},
    }


@pytest.fixture(scope="session")
def s3fs_fs(s3fs_options):
    s3fs = require("s3fs")
    return s3fs.S3FileSystem(skip_instance_cache=True, **s3fs_options)


@pytest.fixture(scope="session")
def spark():
    """One local[2] Spark for the session (Spark's JVM starts once), with the
    `s4` data source registered."""
    import shutil
    import sys

    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        if REQUIRE_ALL:
            pytest.fail("Java is required for the Spark tests when S4_REQUIRE_ALL=1")
        pytest.skip("no Java runtime: Spark cannot start")
    require("pyspark")
    from pyspark.sql import SparkSession

    from s4_codec.spark import register_data_source

    # Workers must run this interpreter, with this virtualenv.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    fast_jvm = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
    session = (
        SparkSession.builder.master("local[2]")
        .appName("s4-codec-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.pyspark.validateSchema.enabled", "true")
        .config("spark.driver.extraJavaOptions", fast_jvm)
        .config("spark.executor.extraJavaOptions", fast_jvm)
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    register_data_source(session)
    yield session
    session.stop()
