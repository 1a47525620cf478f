"""Checked by mypy in tests/test_polars.py: the typed Polars surface."""

import polars as pl

import s4_codec
import s4_codec.polars as s4pl

df = pl.DataFrame({"blob": [b"a", b"b"]})
packed: pl.Expr = s4_codec.col("blob").s4.compress(codec="gzip", level=9)
unpacked: pl.Expr = s4pl.decompress(pl.col("blob"), on_error="null", as_string=True)
checksum: pl.Expr = s4pl.crc32c("blob")
info: pl.Expr = s4_codec.col("blob").s4.frame_info()
out: pl.DataFrame = df.select(packed.alias("z"), checksum.alias("crc"))
dictionary = bytearray(s4_codec.train_dictionary([b"sample"] * 100))
threaded: pl.Expr = s4_codec.col("blob").s4.compress(threads=2, dictionary=memoryview(dictionary))
restored: pl.Expr = s4pl.decompress("blob", threads=1, dictionary=dictionary, max_output_size=9)
crc_threads: pl.Expr = s4pl.crc32c("blob", threads=2)
