"""The embedding cache: each distinct text is embedded once, ever, per model version and backend.

A table in the warehouse DuckDB file, keyed by the sha256 of the text (the text itself is not
stored: the cache holds vectors of redacted text, and a hash is all a lookup needs):

    embedding_cache(text_sha256, model, model_version, backend, vector FLOAT[384], created_at)
    PRIMARY KEY (text_sha256, model_version, backend)

`embed_with_cache` hashes and dedupes the texts, finds the cached ones with one join against a
registered Arrow table of the wanted hashes, embeds only the misses, inserts them in one
transaction, and returns the vectors in the input order. The backend is part of the key: int8
ONNX vectors and torch vectors differ slightly, and a run must not mix them.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from evalflow.lib.common.catalog import apply_catalog
from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.intents.embed.model import DIMENSION

CACHE_TABLE = "embedding_cache"

CACHE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {CACHE_TABLE} (
    text_sha256 VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL,
    backend VARCHAR NOT NULL,
    vector FLOAT[{DIMENSION}] NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (text_sha256, model_version, backend)
);
"""


def text_sha256(text: str) -> str:
    """Hex sha256 of the UTF-8 text: the cache key (with the model version and backend)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class EmbeddingStats:
    texts: int      # texts asked for
    distinct: int   # distinct texts among them
    hits: int       # distinct texts found in the cache
    misses: int     # distinct texts embedded by this call
    seconds: float  # wall time of the whole call

    def as_dict(self) -> dict:
        return asdict(self)


def _vectors_array(vectors: np.ndarray) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, DIMENSION)


def _to_matrix(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if len(column) == 0:
        return np.empty((0, DIMENSION), dtype=np.float32)
    flat = column.flatten().to_numpy(zero_copy_only=False)
    return flat.astype(np.float32, copy=False).reshape(-1, DIMENSION)


def ensure_cache_table(warehouse: Warehouse) -> None:
    """The cache table, created with its comments (lib/common/catalog.py) in one transaction."""
    with warehouse.transaction() as con:
        con.execute(CACHE_SCHEMA)
        apply_catalog(con, (CACHE_TABLE,))


def embed_with_cache(
    texts: Sequence[str], embedder, warehouse_path: Path | Warehouse,
) -> tuple[np.ndarray, EmbeddingStats]:
    """Vectors for `texts` (float32 (n, 384), input order), embedding only texts not cached yet.

    `embedder` is an Embedder (anything with encode(), model_name, model_version, backend).
    `warehouse_path` is the warehouse DuckDB file (or a Warehouse); only embedding_cache is
    touched, created if missing.
    """
    started = time.perf_counter()
    texts = list(texts)
    warehouse = warehouse_path if isinstance(warehouse_path, Warehouse) else Warehouse(Path(warehouse_path))

    hashes = [text_sha256(text) for text in texts]
    position: dict[str, int] = {}     # hash -> row in `distinct`
    distinct_texts: list[str] = []
    index = np.empty(len(texts), dtype=np.int64)
    for i, (digest, text) in enumerate(zip(hashes, texts)):
        row = position.get(digest)
        if row is None:
            row = position[digest] = len(distinct_texts)
            distinct_texts.append(text)
        index[i] = row
    distinct_hashes = list(position)
    vectors = np.empty((len(distinct_texts), DIMENSION), dtype=np.float32)
    found = np.zeros(len(distinct_texts), dtype=bool)

    if distinct_texts:
        ensure_cache_table(warehouse)
        with warehouse.connect() as con:
            con.register("wanted_hashes", pa.table({
                "text_sha256": pa.array(distinct_hashes, pa.string()),
                "row_index": pa.array(np.arange(len(distinct_hashes), dtype=np.int64)),
            }))
            cached = con.sql(
                f"SELECT w.row_index, c.vector FROM {CACHE_TABLE} c "
                "JOIN wanted_hashes w ON c.text_sha256 = w.text_sha256 "
                "WHERE c.model_version = $version AND c.backend = $backend",
                params={"version": embedder.model_version, "backend": embedder.backend},
            ).to_arrow_table()
            con.unregister("wanted_hashes")
        rows = cached.column("row_index").to_numpy()
        vectors[rows] = _to_matrix(cached.column("vector"))
        found[rows] = True

    missing = np.flatnonzero(~found)
    if len(missing):
        fresh = np.asarray(embedder.encode([distinct_texts[i] for i in missing]), dtype=np.float32)
        if fresh.shape != (len(missing), DIMENSION):
            raise ValueError(f"encoder returned shape {fresh.shape}, expected {(len(missing), DIMENSION)}")
        vectors[missing] = fresh
        incoming = pa.table({
            "text_sha256": pa.array([distinct_hashes[i] for i in missing], pa.string()),
            "vector": _vectors_array(fresh),
        })
        now = datetime.now(timezone.utc)
        with warehouse.transaction() as con:
            con.execute(CACHE_SCHEMA)
            con.register("incoming_embeddings", incoming)
            # ON CONFLICT: a text cached by another run between our lookup and this insert.
            con.execute(
                f"INSERT INTO {CACHE_TABLE} "
                "SELECT text_sha256, ?, ?, ?, vector::FLOAT[384], ? FROM incoming_embeddings "
                "ON CONFLICT DO NOTHING",
                [embedder.model_name, embedder.model_version, embedder.backend, now],
            )
            con.unregister("incoming_embeddings")

    stats = EmbeddingStats(
        texts=len(texts), distinct=len(distinct_texts), hits=int(found.sum()),
        misses=int(len(missing)), seconds=time.perf_counter() - started,
    )
    return vectors[index], stats
