"""S4 compression in DuckDB SQL: JSON payloads compressed with s4_compress (plain, and
against a dictionary trained on the column), written to Parquet with COPY, queried back
with s4_decompress_text, then a corrupt cell found with try_s4_decompress. Prints what
it sees.

    python examples/duckdb_sql.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb

import s4_codec
from s4_codec.duckdb import register


def main() -> None:
    con = register(duckdb.connect())
    con.execute("SET threads=2")
    con.execute(
        """
        CREATE TABLE orders AS
        SELECT id, to_json({
            order_id: printf('ord_%08d', id),
            customer: printf('cus_%06d', (id * 31) % 50000),
            status: ['created', 'paid', 'shipped', 'delivered'][id % 4 + 1],
            items: [{sku: printf('sku-%d', (id + k) % 977), qty: 1 + k % 3}
                    FOR k IN range(id % 5)]
        })::VARCHAR AS payload
        FROM range(200000) t(id)
        """
    )
    raw, plain = con.execute(
        "SELECT sum(strlen(payload)), sum(octet_length(s4_compress(payload))) FROM orders"
    ).fetchone()
    print(f"payload column: {raw:,} bytes -> {plain:,} bytes as plain zstd-3 cells")
    # Small JSON values share most of their bytes: a dictionary trained on the column is
    # what makes per-value compression pay off. It is bound once, under its own prefix.
    samples = con.execute("SELECT encode(payload) FROM orders LIMIT 20000").fetchall()
    dictionary = s4_codec.train_dictionary([row[0] for row in samples])
    register(con, prefix="s4d_", dictionary=dictionary)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "orders.parquet"
        con.execute(
            "COPY (SELECT id, s4d_compress(payload) AS payload FROM orders) "
            f"TO '{path}' (FORMAT parquet)"
        )
        packed = con.execute(f"SELECT sum(octet_length(payload)) FROM '{path}'").fetchone()[0]
        print(f"with the dictionary: {packed:,} bytes; parquet file {path.stat().st_size:,} bytes")
        print(con.execute(f"SELECT s4_frame_info(payload) FROM '{path}' LIMIT 1").fetchone()[0])
        shipped = con.execute(
            f"SELECT count(*) FROM '{path}' "
            "WHERE s4d_decompress_text(payload)->>'status' = 'shipped'"
        ).fetchone()[0]
        print(f"shipped orders, decoded in SQL: {shipped:,}")

    # One flipped bit in a stored cell: the query names the S4 error; try_ gives NULL.
    con.execute(
        "CREATE TABLE cells AS SELECT id, s4_compress(payload) AS cell FROM orders WHERE id < 5000"
    )
    cell = bytearray(con.execute("SELECT cell FROM cells WHERE id = 4321").fetchone()[0])
    cell[-1] ^= 0x10
    con.execute("UPDATE cells SET cell = ? WHERE id = 4321", [bytes(cell)])
    try:
        con.execute("SELECT sum(octet_length(s4_decompress(cell))) FROM cells").fetchall()
    except duckdb.InvalidInputException as exc:
        print(f"query failed: {str(exc).splitlines()[0]}")
    bad = con.execute("SELECT id FROM cells WHERE try_s4_decompress(cell) IS NULL").fetchall()
    print(f"corrupt cells: {[row[0] for row in bad]}")


if __name__ == "__main__":
    main()
