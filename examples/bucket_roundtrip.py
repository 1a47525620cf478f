"""Write S4 objects into an S3 bucket and read them back without the gateway.

Runs against a moto S3 server it starts on loopback (``pip install 's4-codec[io]'
'moto[server]' boto3``); point ``S3Store`` at a real bucket to use it for real.
"""

from __future__ import annotations

import socket

import fsspec
from moto.server import ThreadedMotoServer
from obstore.store import S3Store

import s4_codec.io as s4io


def main() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        creds = {"access_key_id": "demo", "secret_access_key": "demo"}
        store = S3Store(
            "demo-bucket",
            endpoint=endpoint,
            region="us-east-1",
            client_options={"allow_http": True},
            **creds,
        )
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="demo",
            aws_secret_access_key="demo",
        ).create_bucket(Bucket="demo-bucket")

        lines = b"".join(b'{"id": %d, "msg": "hello %d"}\n' % (i, i % 97) for i in range(400_000))
        # 1. What the gateway's single PUT stores: body, metadata, bound sidecar.
        result = s4io.put(store, "logs/day1.ndjson", lines)
        print(
            f"put: {result['size']:,} bytes stored as {result['stored_size']:,}, "
            f"ETag {result['etag']}"
        )
        # 2. Ranged read: only the frames covering the range are fetched.
        middle = len(lines) // 2
        print("range:", s4io.get(store, "logs/day1.ndjson", middle, middle + 40))
        # 3. A seekable file.
        with s4io.open(store, "logs/day1.ndjson") as f:
            f.seek(-31, 2)
            print("tail:", f.read())
        # 4. Streaming upload in parts (bounded memory), as a gateway multipart upload.
        with s4io.open(store, "logs/stream.ndjson", "wb", part_size=8 << 20) as w:
            for i in range(0, len(lines), 1 << 20):
                w.write(lines[i : i + (1 << 20)])
        print(f"stream: {w.result['parts']} parts, ETag {w.result['etag']}")
        assert s4io.get(store, "logs/stream.ndjson") == lines
        # 5. fsspec: s4:// decodes on the fly for pandas, PyArrow, DuckDB, Polars.
        options = {
            "key": "demo",
            "secret": "demo",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
        with fsspec.open("s4::s3://demo-bucket/logs/day1.ndjson", s3=options) as f:
            print("fsspec first line:", f.readline())
        fs = fsspec.filesystem("s4", target_protocol="s3", target_options=options)
        print("ls:", [(e["name"], e["size"]) for e in fs.ls("demo-bucket/logs")])
    finally:
        server.stop()


if __name__ == "__main__":
    main()
