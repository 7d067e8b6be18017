"""One ONNX model file run by onnxruntime on the CPU, with the packaged fast tokenizer.

Used by the Embedder (encoder.py) and by the export-time quality check (onnx_export.py); the
export itself is in onnx_export.py.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from evalflow.lib.intents.embed.model import DIMENSION, MAX_SEQ_LENGTH, model_path


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def load_tokenizer():
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_path() / "tokenizer.json"))
    # The packaged tokenizer.json pads and truncates at 128; ST truncates at 256, pads per batch.
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
    return tokenizer


class OnnxSession:
    """One ONNX model file, run by onnxruntime on the CPU."""

    def __init__(self, path: Path, tokenizer, threads: int | None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or cpu_count()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizer

    def _token_ids(self, texts: Sequence[str], chunk: int = 8192) -> list[list[int]]:
        # In chunks: the tokenizer's Encoding objects (tokens, offsets, masks) are far bigger
        # than the ids kept from them.
        ids: list[list[int]] = []
        for start in range(0, len(texts), chunk):
            batch = self.tokenizer.encode_batch(list(texts[start : start + chunk]), add_special_tokens=True)
            ids.extend(encoding.ids for encoding in batch)
        return ids

    @staticmethod
    def _pad(ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        longest = max(len(row) for row in ids)
        input_ids = np.zeros((len(ids), longest), dtype=np.int64)
        mask = np.zeros((len(ids), longest), dtype=np.int64)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return input_ids, mask

    def batch_arrays(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """input_ids and attention_mask for these texts as one padded batch, in their order."""
        return self._pad(self._token_ids(texts))

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        ids = self._token_ids(texts)
        lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
        for chunk in plan_batches(lengths, batch_size):
            input_ids, mask = self._pad([ids[i] for i in chunk])
            out[chunk] = self.session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]
        return out


def plan_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices of texts in batches, longest first, so that padding stays small.

    Texts sorted by token count are cut into runs of at most `batch_size`, and a run also ends
    where the next text is shorter than 90% of the run's longest by more than one token. With
    plain fixed-size runs, a small set (a cache's misses: 1,000 texts) wasted 25% of its tokens
    on padding against 2% for 10,000 texts; with this rule 5% and 1%.
    """
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    for i in range(1, len(order) + 1):
        if i == len(order):
            batches.append(order[start:i])
            break
        longest, length = lengths[order[start]], lengths[order[i]]
        if i - start >= batch_size or (length < 0.9 * longest and longest - length > 1):
            batches.append(order[start:i])
            start = i
    return batches
