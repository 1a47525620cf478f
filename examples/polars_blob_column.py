"""A DataFrame of JSON payloads: compressed with the `s4` namespace, stored to
Parquet, read back lazily and decompressed. Prints sizes along the way.

    python examples/polars_blob_column.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import polars as pl

import s4_codec
import s4_codec.polars  # noqa: F401  (registers pl.col(...).s4)


def payloads(n: int) -> list[str]:
    return [
        json.dumps(
            {
                "order_id": f"ord_{i:08d}",
                "customer": f"cus_{(i * 31) % 50_000:06d}",
                "items": [{"sku": f"sku-{(i + k) % 977}", "qty": 1 + k % 3} for k in range(i % 5)],
                "status": ["created", "paid", "shipped", "delivered"][i % 4],
                "note": "gift wrap please" if i % 7 == 0 else "",
            }
        )
        for i in range(n)
    ]


def main() -> None:
    df = pl.DataFrame({"id": range(200_000), "payload": payloads(200_000)})
    raw_bytes = df["payload"].str.len_bytes().sum()
    plain = df.select(pl.col("payload").s4.compress(codec="zstd", level=3))
    print(
        f"payload column: {raw_bytes:,} bytes -> "
        f"{plain['payload'].bin.size().sum():,} bytes as plain zstd cells"
    )
    # Small JSON values share most of their bytes: a dictionary trained on the
    # column itself is what makes per-value compression pay off.
    dictionary = s4_codec.train_dictionary(df["payload"].head(20_000))
    packed = df.with_columns(pl.col("payload").s4.compress(dictionary=dictionary))
    print(
        f"with a {len(dictionary):,}-byte trained dictionary: "
        f"{packed['payload'].bin.size().sum():,} bytes"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "orders.parquet"
        packed.write_parquet(path)
        print(f"parquet file:   {path.stat().st_size:,} bytes")
        restored = (
            pl.scan_parquet(path)
            .filter(pl.col("id") % 1000 == 0)
            .with_columns(pl.col("payload").s4.decompress(as_string=True, dictionary=dictionary))
            .collect()
        )
    print(f"read back {restored.height} rows lazily; first payload:")
    print(restored["payload"][0])
    assert restored["payload"].to_list() == df.filter(pl.col("id") % 1000 == 0)["payload"].to_list()


if __name__ == "__main__":
    main()
