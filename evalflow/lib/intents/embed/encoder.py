"""Embedder: all-MiniLM-L6-v2 sentence embeddings from the packaged model, on the best backend.

Backends:
- "onnx-int8": the ONNX export, MatMul weights quantized to int8 (onnx_export.py), run by
  onnxruntime on the CPU with the `tokenizers` fast tokenizer (onnx_session.py). The CPU default.
- "onnx": the same export in fp32.
- "torch": sentence-transformers on torch; fp16 on CUDA, fp32 on the CPU.
- "auto": torch on CUDA when a GPU is present; otherwise onnx-int8 if its export-time quality
  check met the bar (else onnx fp32); torch fp32 on the CPU if onnxruntime cannot load or the
  export fails (logged, and kept in `Embedder.fallback`).

Every backend returns float32 (n, 384) L2-normalised rows in the order of the input texts.
Texts are truncated at 256 tokens (the ST model's max_seq_length). The ONNX path sorts texts by
token count and pads each batch only to its longest text, then restores the order.

int8 vectors are not a pure function of the text: dynamic quantization picks one activation
scale per batch, so a text's vector moves slightly with its batch neighbours (cosine between two
batchings: mean 0.992, worst seen 0.94, for "ok thanks"; cosine to fp32 stays >= 0.95 either way
over 10,000 texts). fp32 ONNX and torch are per-text exact. The cache is what makes a text's
vector fixed: it is computed once and then always read back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from evalflow.lib.intents.embed import onnx_export
from evalflow.lib.intents.embed.model import (
    DIMENSION,
    MAX_SEQ_LENGTH,
    MODEL_NAME,
    force_offline,
    model_path,
    model_version,
)
from evalflow.lib.intents.embed.onnx_session import OnnxSession, load_tokenizer

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnx-int8", "onnx", "torch")


def _default_model_dir() -> Path:
    from evalflow.lib.common.settings import load_settings

    return load_settings().model_dir


@dataclass(frozen=True)
class EmbedderConfig:
    backend: str = "auto"
    # Where the ONNX export is kept: Settings.model_dir (<data_dir>/models, EVALFLOW_MODEL_DIR).
    model_dir: Path = field(default_factory=_default_model_dir)
    # Texts per forward pass; None: 64 on the CPU, 256 on CUDA.
    batch_size: int | None = None
    # onnxruntime intra-op threads; None: the cores this process may use.
    threads: int | None = None
    # Torch device override ("cpu", "cuda", "cuda:1"); None: CUDA when available.
    device: str | None = None

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        object.__setattr__(self, "model_dir", Path(self.model_dir))


class _TorchBackend:
    def __init__(self, device: str):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.model = SentenceTransformer(str(model_path()), device=device, local_files_only=True)
        self.model.max_seq_length = MAX_SEQ_LENGTH
        self.half = device.startswith("cuda")
        if self.half:
            self.model.half()

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        if not texts:
            return np.empty((0, DIMENSION), dtype=np.float32)
        vectors = self.model.encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        ).astype(np.float32, copy=False)
        if self.half:  # renormalise after leaving fp16
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
        return vectors


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover - torch missing or broken
        return False


class Embedder:
    """Sentence embeddings for texts. Construction loads (and, the first time, exports) the model."""

    model_name = MODEL_NAME
    dimension = DIMENSION

    def __init__(self, config: EmbedderConfig | None = None):
        force_offline()
        self.config = config or EmbedderConfig()
        self.model_version = model_version()
        self.onnx_check: dict | None = None
        self.fallback: str | None = None  # why "auto" did not get the backend it wanted
        self._onnx: OnnxSession | None = None
        self._torch: _TorchBackend | None = None
        backend = self.config.backend
        if backend == "auto":
            self._init_auto()
        elif backend in ("onnx-int8", "onnx"):
            self._init_onnx(int8=backend == "onnx-int8")
        else:
            device = self.config.device or ("cuda" if _cuda_available() else "cpu")
            self._init_torch(device)

    # ---- backend selection --------------------------------------------------------------
    def _init_auto(self) -> None:
        device = self.config.device
        if device is None and _cuda_available():
            device = "cuda"
        if device is not None and device.startswith("cuda"):
            self._init_torch(device)
            return
        try:
            import onnxruntime  # noqa: F401

            export = onnx_export.ensure_onnx_export(self.config.model_dir)
            self._init_onnx(int8=export.int8_meets_bar, export=export)
        except Exception as exc:
            # onnxruntime missing or broken, or the export failed: slower, but still correct.
            log.warning("ONNX backend unavailable (%s: %s); embedding with torch fp32 on the CPU",
                        type(exc).__name__, exc)
            self._onnx = None
            self.fallback = f"ONNX backend unavailable: {type(exc).__name__}: {exc}"
            self._init_torch("cpu")

    def _init_onnx(self, int8: bool, export=None) -> None:
        export = export or onnx_export.ensure_onnx_export(self.config.model_dir)
        self.onnx_check = export.manifest.get("int8_check")
        path = export.int8_path if int8 else export.fp32_path
        self._onnx = OnnxSession(path, load_tokenizer(), self.config.threads)
        self.backend = "onnx-int8" if int8 else "onnx"
        self.device = "cpu"
        self.model_file = path

    def _init_torch(self, device: str) -> None:
        self._torch = _TorchBackend(device)
        self.backend = "torch"
        self.device = "cuda" if device.startswith("cuda") else "cpu"
        self.model_file = model_path() / "model.safetensors"

    # ---- encoding -----------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        if self.config.batch_size:
            return self.config.batch_size
        return 256 if self.device == "cuda" else 64

    @property
    def precision(self) -> str:
        if self.backend == "onnx-int8":
            return "int8 (MatMul weights), fp32 activations"
        if self.backend == "torch" and self.device == "cuda":
            return "fp16"
        return "fp32"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (len(texts), 384), L2-normalised, row i for texts[i]."""
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, not str")
        if self._onnx is not None:
            return self._onnx.encode(texts, self.batch_size)
        return self._torch.encode(texts, self.batch_size)

    def describe(self) -> dict:
        """What produced the vectors: for run metadata and the cache."""
        return {
            "model": self.model_name, "model_version": self.model_version, "backend": self.backend,
            "device": self.device, "precision": self.precision, "dimension": self.dimension,
            "max_seq_length": MAX_SEQ_LENGTH, "fallback": self.fallback,
        }

    def __repr__(self) -> str:
        return f"Embedder({self.model_name}, {self.model_version}, backend={self.backend}, device={self.device})"
