"""The CUDA embedding path beside plain sentence-transformers fp32 on the same GPU, one run.

    python benchmarks/embedding_cuda.py [--texts texts.json --reference ref_fp32.npy]

Needs a CUDA GPU (exits with a message without one). Both sides embed the same texts:
- ours: `Embedder(EmbedderConfig(backend="auto")).encode(texts)`, which on a CUDA machine picks
  torch in fp16, batch 256 (`evalflow.lib.intents.embed.encoder`); the check fails if it picked anything
  else;
- plain: `SentenceTransformer(model_path, device="cuda")` in fp32, `encode(texts,
  normalize_embeddings=True)` with its defaults (batch 32).
Each timed three times after a warm-up, the fastest kept. Quality: cosine of each of our vectors
to the CPU fp32 vector of the same text (--reference, an .npy computed on a CPU with plain
SentenceTransformer fp32; without it, computed here on the CPU first), and k-means (k=50) ARI
between the CPU fp32 and CUDA vectors.

--texts: a JSON list of texts; default the distinct first-turn texts (as displayed and as the
model reads them) of simulated months, seeds 1-6, up to 10,000.

A bare GPU image without the warehouse's packages (duckdb, orjson, polars) can run it: only the
embedding cache needs them and this benchmark does not touch the cache, so empty modules stand in
for missing ones while evalflow.lib.intents.embed is imported.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def import_embedder():
    stand_ins = []
    for name in ("duckdb", "orjson", "polars"):
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
            stand_ins.append(name)
    from evalflow.lib.intents.embed import Embedder, EmbedderConfig
    from evalflow.lib.intents.embed.model import model_path

    for name in stand_ins:  # other libraries probe for these; don't let them find the stand-ins
        del sys.modules[name]
    return Embedder, EmbedderConfig, model_path


def simulated_texts(limit: int) -> list[str]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import clustering_quality as cq

    from evalflow.lib.intents import model_text

    texts: set[str] = set()
    for seed in range(1, 7):
        shown, _ = cq.simulator_sets(30, 300, seed)["first"]
        texts |= set(shown) | {model_text(t) for t in shown}
    return sorted(texts)[:limit]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=Path, help="JSON list of texts")
    parser.add_argument("--reference", type=Path, help=".npy of CPU fp32 vectors of --texts")
    parser.add_argument("--limit", type=int, default=10_000)
    args = parser.parse_args()

    import numpy as np
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure here (benchmarks/embedding.py measures the CPU path)")
        return 0
    Embedder, EmbedderConfig, model_path = import_embedder()
    from sentence_transformers import SentenceTransformer

    texts = json.loads(args.texts.read_text()) if args.texts else simulated_texts(args.limit)
    if args.reference:
        reference = np.load(args.reference)
    else:
        cpu = SentenceTransformer(str(model_path()), device="cpu")
        reference = cpu.encode(texts, normalize_embeddings=True, batch_size=64).astype(np.float32)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}; {len(texts)} texts")

    def fastest(fn, reps: int = 3):
        best, out = float("inf"), None
        for _ in range(reps):
            torch.cuda.synchronize()
            start = time.perf_counter()
            out = fn()
            torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        return out, best

    ours = Embedder(EmbedderConfig(backend="auto"))
    print("ours:", ours.describe())
    if not (ours.backend == "torch" and ours.device == "cuda"):
        print("FAIL: backend='auto' did not choose torch on CUDA")
        return 1
    ours.encode(texts[:512])
    vectors, ours_s = fastest(lambda: ours.encode(texts))
    plain = SentenceTransformer(str(model_path()), device="cuda").float()
    plain.encode(texts[:512], normalize_embeddings=True)
    plain_vectors, plain_s = fastest(lambda: plain.encode(texts, normalize_embeddings=True,
                                                          show_progress_bar=False))
    cos = (vectors * reference).sum(axis=1)
    print(f"ours  (torch fp16, batch {ours.batch_size}): {ours_s:.3f}s, {len(texts) / ours_s:,.0f} texts/s")
    print(f"plain (torch fp32, batch 32):  {plain_s:.3f}s, {len(texts) / plain_s:,.0f} texts/s")
    print(f"ratio ours / plain: {plain_s / ours_s:.2f}x")
    print(f"cosine to CPU fp32: mean {cos.mean():.6f}, 1st percentile {np.percentile(cos, 1):.6f}, "
          f"min {cos.min():.6f}; plain CUDA fp32 min {(plain_vectors * reference).sum(axis=1).min():.6f}")
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    a = KMeans(50, n_init=3, random_state=0).fit_predict(reference)
    b = KMeans(50, n_init=3, random_state=0).fit_predict(vectors)
    print(f"k-means(50) ARI, CPU fp32 vs CUDA fp16 vectors: {adjusted_rand_score(a, b):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
