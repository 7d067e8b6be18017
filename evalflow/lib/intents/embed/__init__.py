"""Sentence embeddings for intent discovery: the packaged all-MiniLM-L6-v2, ONNX int8 on the CPU
(torch fp16 on CUDA), and a content-hash cache in the warehouse so each distinct text is
embedded once, ever.

    from evalflow.lib.intents.embed import Embedder, EmbedderConfig, embed_with_cache
    embedder = Embedder(EmbedderConfig(backend="auto", model_dir=data_dir / "models"))
    vectors, stats = embed_with_cache(texts, embedder, warehouse_path)
"""

from evalflow.lib.intents.embed.cache import (
    CACHE_TABLE,
    EmbeddingStats,
    embed_with_cache,
    ensure_cache_table,
    text_sha256,
)
from evalflow.lib.intents.embed.encoder import BACKENDS, Embedder, EmbedderConfig
from evalflow.lib.intents.embed.model import DIMENSION, MAX_SEQ_LENGTH, MODEL_NAME, model_version

__all__ = [
    "BACKENDS", "CACHE_TABLE", "DIMENSION", "MAX_SEQ_LENGTH", "MODEL_NAME", "Embedder",
    "EmbedderConfig", "EmbeddingStats", "embed_with_cache", "ensure_cache_table", "model_version",
    "text_sha256",
]
