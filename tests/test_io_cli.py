"""`s4-codec get|cat|put|ls|inspect` on s3:// URLs (the moto server, endpoint and
credentials from the AWS environment variables) and local paths, as subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import S3_BUCKET, S3_CREDENTIALS, json_event, require

import s4_codec

require("obstore")
import s4_codec.io as s4io  # noqa: E402

MiB = 1 << 20
DATA = b"".join(json_event(i) for i in range(60_000))  # ~12 MiB


@pytest.fixture
def run(moto_endpoint):
    env = dict(
        os.environ,
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID=S3_CREDENTIALS["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=S3_CREDENTIALS["aws_secret_access_key"],
    )

    def run(
        *args: str, stdin: bytes | None = None, cwd=None, drop_env: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "s4_codec", *args],
            input=stdin,
            capture_output=True,
            cwd=cwd,
            env={k: v for k, v in env.items() if k not in drop_env},
            timeout=120,
        )

    return run


def test_put_get_cat_ls_inspect_s3(run, tmp_path, s3_store, moto_endpoint):
    src = tmp_path / "events.ndjson"
    src.write_bytes(DATA)
    url = f"s3://{S3_BUCKET}/cli/events.ndjson"
    put = run("put", str(src), url, "--level", "1")
    assert put.returncode == 0, put.stderr
    assert put.stdout.startswith(f"{url}: {len(DATA)} bytes stored as ".encode()), put.stdout
    assert s4io.get(s3_store, "cli/events.ndjson") == DATA
    # Streaming multipart from stdin.
    streamed = run("put", "-", url + ".mp", "--part-size", str(5 * MiB), stdin=DATA)
    assert streamed.returncode == 0, streamed.stderr
    assert s4io.stat(s3_store, "cli/events.ndjson.mp")["metadata"]["s4-multipart"] == "true"
    out = tmp_path / "back.ndjson"
    got = run("get", url, "-o", str(out))
    assert got.returncode == 0, got.stderr
    assert out.read_bytes() == DATA
    assert run("cat", url + ".mp").stdout == DATA
    # Without -o: the key's name in the working directory; -o - is standard output.
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    assert run("get", url, cwd=cwd).returncode == 0
    assert run("get", url, "-o", "-", "--range", "7-70", cwd=cwd).stdout == DATA[7:70]
    assert [p.name for p in cwd.iterdir()] == ["events.ndjson"]
    assert (cwd / "events.ndjson").read_bytes() == DATA
    # --endpoint-url stands in for AWS_ENDPOINT_URL.
    endpoint = run(
        "cat", url, "--range", "-9", "--endpoint-url", moto_endpoint, drop_env=("AWS_ENDPOINT_URL",)
    )
    assert endpoint.stdout == DATA[:9], endpoint.stderr
    assert run("cat", url, "--range", "100-200").stdout == DATA[100:200]
    assert run("cat", url, "--range", f"{len(DATA) - 5}-").stdout == DATA[-5:]
    listing = run("ls", f"s3://{S3_BUCKET}/cli/").stdout.decode().splitlines()
    assert [line.split()[-1] for line in listing] == [
        "cli/events.ndjson",
        "cli/events.ndjson.mp",
    ]
    assert listing[0].split()[0] == str(len(DATA))
    report = json.loads(run("inspect", url).stdout)
    assert report["size"] == len(DATA) and report["kind"] == "framed" and report["frames"] == 3
    assert report["sidecar"] == "object"


def test_errors_and_exit_status(run, tmp_path):
    missing = run("get", f"s3://{S3_BUCKET}/cli/missing", "-o", str(tmp_path / "x"))
    assert missing.returncode == 3 and b"no such object" in missing.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.part").exists()
    # A failed get leaves an existing file as it was (the download goes to OUT.part first).
    (tmp_path / "kept").write_bytes(b"old contents")
    failed = run("get", f"s3://{S3_BUCKET}/cli/missing", "-o", str(tmp_path / "kept"))
    assert failed.returncode == 3
    assert (tmp_path / "kept").read_bytes() == b"old contents"
    assert run("cat", f"s3://{S3_BUCKET}/x", "--range", "a-b").returncode == 2
    assert run("put", str(tmp_path / "nope"), f"s3://{S3_BUCKET}/y").returncode == 3


def test_local_paths(run, tmp_path):
    src = tmp_path / "in.json"
    src.write_bytes(DATA)
    dest = tmp_path / "store" / "obj.s4"
    assert run("put", str(src), str(dest)).returncode == 0
    assert (tmp_path / "store" / "obj.s4.s4index").exists()
    assert run("cat", str(dest), "--range", "5-10").stdout == DATA[5:10]
    got = run("get", str(dest), "-o", str(tmp_path / "out.json"))
    assert got.returncode == 0 and (tmp_path / "out.json").read_bytes() == DATA
    listing = run("ls", str(tmp_path / "store")).stdout.decode().split()
    assert listing[0] == str(len(DATA)) and listing[-1] == "obj.s4"
    # The local body also inspects as a file, sizes and CRC from frame headers.
    report = json.loads(run("inspect", str(dest)).stdout)
    assert report["metadata"]["s4-original-size"] == str(len(DATA))


def test_put_options_reach_the_stored_body(run, tmp_path):
    small = DATA[: 2 * MiB]
    src = tmp_path / "small.json"
    src.write_bytes(small)
    encode = s4_codec.encode_s4_object
    assert encode(small, "cpu-zstd", 1)["body"] != encode(small, "cpu-zstd", 3)["body"]
    for options, codec, level in (
        (["--level", "1"], "cpu-zstd", 1),
        (["--codec", "passthrough"], "passthrough", 3),
    ):
        dest = tmp_path / "store" / f"{codec}-{level}"
        put = run("put", str(src), str(dest), *options)
        assert put.returncode == 0, put.stderr
        assert dest.read_bytes() == encode(small, codec, level)["body"], options
    # Standard input goes multipart: one frame of --codec per --part-size original bytes.
    part = 5 * MiB
    dest = tmp_path / "store" / "streamed"
    put = run("put", "-", str(dest), "--codec", "passthrough", "--part-size", str(part), stdin=DATA)
    assert put.returncode == 0, put.stderr
    body = dest.read_bytes()
    headers = [header for header, _ in s4_codec.frame_iter(body)]
    assert [h["original_size"] for h in headers] == [
        min(part, len(DATA) - start) for start in range(0, len(DATA), part)
    ]
    assert {h["codec"] for h in headers} == {"passthrough"}
    report = json.loads(run("inspect", str(dest)).stdout)
    assert report["metadata"]["s4-codec"] == "passthrough"
    assert report["metadata"]["s4-compressed-size"] == str(len(body)) == str(report["stored_size"])
    assert len(report["frames"]) == len(headers)
