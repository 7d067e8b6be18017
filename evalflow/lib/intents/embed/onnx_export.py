"""Export the packaged MiniLM to ONNX once, quantize it to int8, keep both under the data folder.

sentence-transformers' `onnx` extra cannot be installed beside sentence-transformers 6 (it pulls
optimum-onnx, which needs transformers < 4.58), so the export is done here with
`torch.onnx.export` (the TorchScript exporter, `dynamo=False`: one self-contained file, no
onnxscript needed; the dynamo exporter is the fallback). Mean pooling and L2 normalisation are
inside the graph, so the graph's output is the sentence embedding. Batch and sequence axes are
dynamic.

int8: `quantize_dynamic` of the MatMul ops only, weights per channel (docs/intents.md: quantizing every
op ruins the embeddings, mean cosine 0.957; MatMul-only per-channel keeps 0.99+). The quantized
model is checked against the fp32 export on a fixed set of sentences at export time and the
result is written to the manifest; the "auto" backend uses int8 only if it met the bar.

Files live in <model_dir>/all-MiniLM-L6-v2/<export key>/ where the key carries the model version
(package version + weights hash) and the export format, so a new model or a changed export gets
a new folder and an old one is never overwritten. Each file is written to a temporary name in the
same folder and renamed into place; the manifest is renamed last, so a folder with a manifest is
complete. A file lock serialises concurrent exports from several processes.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from evalflow.lib.ingest.canonical import file_sha256
from evalflow.lib.intents.embed.model import DIMENSION, force_offline, model_path, model_version
from evalflow.lib.intents.embed.onnx_session import OnnxSession, load_tokenizer

# Bump when the export or quantization recipe changes: old folders are then left alone.
EXPORT_FORMAT = 1
OPSET = 17
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
MANIFEST_FILE = "manifest.json"

# Quality bar for int8 against the fp32 export (the benchmark checks the same bar on 10,000 texts
# against plain sentence-transformers): mean cosine >= 0.99, every sentence >= 0.97.
INT8_MIN_MEAN_COSINE = 0.99
INT8_MIN_COSINE = 0.97

# Varied sentences for the export-time checks: short, long, punctuation, numbers, non-English.
CHECK_SENTENCES = [
    "How do I reset my password?",
    "My card hasn't arrived yet, I ordered it two weeks ago.",
    "Why was I charged twice for the same transaction?",
    "Cancel my subscription please",
    "What is the exchange rate for EUR to USD today?",
    "The app keeps crashing when I open the settings page on Android 14.",
    "Can you summarise this document in three bullet points?",
    "Translate 'good morning' into Japanese.",
    "Is there a fee for transferring money abroad?",
    "I want to speak to a human agent now!!!",
    "Write a SQL query that counts orders per customer per month.",
    "refund",
    "hello",
    "What's the weather like in Paris in April?",
    "Explain the difference between TCP and UDP like I'm five.",
    "Mi tarjeta fue rechazada en el supermercado, ¿por qué?",
    "Das Paket ist beschädigt angekommen.",
    "Order #48213 shipped to the wrong address: 12 Baker Street.",
    "How many calories are in a banana?",
    "Please update the shipping address on my account to the new one I gave you yesterday, "
    "and also make sure that the invoice reflects the corrected VAT number for the company.",
    "Error: ConnectionResetError(104, 'Connection reset by peer') when calling the API",
    "Book a table for four at 7pm on Friday.",
    "What documents do I need to verify my identity?",
    "Is my top-up pending or did it fail?",
    "I lost my phone and my banking app was on it.",
    "Generate a haiku about autumn leaves.",
    "The chatbot gave me a wrong answer about the return policy.",
    "How long does a bank transfer take?",
    "😀 thanks, that worked!",
    "Can I change my PIN at an ATM?",
    "What is 17% of 2,340?",
    "Summarize the last meeting notes and list the action items with owners and due dates.",
]


@dataclass(frozen=True)
class OnnxExport:
    folder: Path
    fp32_path: Path
    int8_path: Path
    manifest: dict

    @property
    def int8_meets_bar(self) -> bool:
        return bool(self.manifest.get("int8_check", {}).get("meets_bar", False))


def export_key(version: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._+-]+", "_", version)
    return f"onnx-v{EXPORT_FORMAT}-{safe}"


def export_folder(root: Path, version: str | None = None) -> Path:
    return Path(root) / "all-MiniLM-L6-v2" / export_key(version or model_version())


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _load_existing(folder: Path) -> OnnxExport | None:
    manifest_path = folder / MANIFEST_FILE
    fp32, int8 = folder / FP32_FILE, folder / INT8_FILE
    if not (manifest_path.is_file() and fp32.is_file() and int8.is_file()):
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    # Cheap integrity check: sizes as recorded (a full hash of 150 MB on every start is not).
    files = manifest.get("files", {})
    for name, path in ((FP32_FILE, fp32), (INT8_FILE, int8)):
        if files.get(name, {}).get("bytes") != path.stat().st_size:
            return None
    return OnnxExport(folder, fp32, int8, manifest)


def _torch_module():
    """The packaged transformer with mean pooling and L2 normalisation, as one torch module."""
    import torch
    from transformers import AutoModel

    # Eager attention traces into plain MatMul/Softmax ops, the same for every sequence length.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    bert = AutoModel.from_pretrained(str(model_path()), attn_implementation="eager", local_files_only=True)
    bert.eval()

    class MeanPooledNormalised(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            hidden = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    return MeanPooledNormalised(bert).eval()


def _export_fp32(module, target: Path) -> str:
    import torch

    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.long)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                module, (ids, mask), str(target),
                input_names=["input_ids", "attention_mask"], output_names=["embeddings"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "sequence"},
                    "attention_mask": {0: "batch", 1: "sequence"},
                    "embeddings": {0: "batch"},
                },
                opset_version=OPSET, do_constant_folding=True, dynamo=False,
            )
            return "torchscript"
        except Exception:
            # A torch without the TorchScript exporter: the dynamo exporter (needs onnxscript),
            # then fold its external-data file back into one file.
            import onnx

            batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
            staging = target.with_suffix(".dynamo.onnx")
            torch.onnx.export(
                module, (ids, mask), str(staging),
                input_names=["input_ids", "attention_mask"], output_names=["embeddings"],
                dynamic_shapes={"input_ids": {0: batch, 1: sequence}, "attention_mask": {0: batch, 1: sequence}},
                opset_version=18, dynamo=True,
            )
            onnx.save_model(onnx.load(str(staging)), str(target), save_as_external_data=False)
            return "dynamo"


def _quantize(source: Path, target: Path) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # "consider pre-processing" advice, irrelevant for MatMul-only
    try:
        quantize_dynamic(
            str(source), str(target),
            op_types_to_quantize=["MatMul"], per_channel=True, weight_type=QuantType.QInt8,
        )
    finally:
        root.setLevel(level)


def _check(module, fp32_path: Path, int8_path: Path) -> dict:
    """fp32 export against torch (should be ~1.0) and int8 against fp32 (the quality bar)."""
    import torch

    tokenizer = load_tokenizer()
    fp32 = OnnxSession(fp32_path, tokenizer, threads=None)
    int8 = OnnxSession(int8_path, tokenizer, threads=None)
    v32 = fp32.encode(CHECK_SENTENCES, batch_size=8)
    v8 = int8.encode(CHECK_SENTENCES, batch_size=8)
    ids, mask = fp32.batch_arrays(CHECK_SENTENCES)
    with torch.no_grad():
        ref = module(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    export_cos = (v32 * ref).sum(axis=1)
    if export_cos.min() < 0.999:
        raise RuntimeError(f"ONNX export disagrees with torch: min cosine {export_cos.min():.4f}")
    cos = (v8 * v32).sum(axis=1)
    return {
        "sentences": len(CHECK_SENTENCES),
        "fp32_vs_torch_min_cosine": round(float(export_cos.min()), 6),
        "int8_vs_fp32_mean_cosine": round(float(cos.mean()), 6),
        "int8_vs_fp32_min_cosine": round(float(cos.min()), 6),
        "bar": {"mean": INT8_MIN_MEAN_COSINE, "min": INT8_MIN_COSINE},
        "meets_bar": bool(cos.mean() >= INT8_MIN_MEAN_COSINE and cos.min() >= INT8_MIN_COSINE),
    }


def ensure_onnx_export(root: Path) -> OnnxExport:
    """The ONNX files for the packaged model under `root`, exported on first use only."""
    force_offline()
    version = model_version()
    folder = export_folder(root, version)
    existing = _load_existing(folder)
    if existing is not None:
        return existing
    with _file_lock(folder.parent / f".{folder.name}.lock"):
        existing = _load_existing(folder)  # another process may have finished meanwhile
        if existing is not None:
            return existing
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(".export-*"):  # left by a killed export; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        started = time.perf_counter()
        import onnxruntime
        import torch

        module = _torch_module()
        with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as tmp:
            tmp_dir = Path(tmp)
            exporter = _export_fp32(module, tmp_dir / FP32_FILE)
            _quantize(tmp_dir / FP32_FILE, tmp_dir / INT8_FILE)
            check = _check(module, tmp_dir / FP32_FILE, tmp_dir / INT8_FILE)
            manifest = {
                "model": "sentence-transformers/all-MiniLM-L6-v2",
                "model_version": version,
                "export_format": EXPORT_FORMAT,
                "exporter": exporter,
                "opset": OPSET,
                "pooling": "mean, L2-normalised, inside the graph",
                "dimension": DIMENSION,
                "inputs": ["input_ids", "attention_mask"],
                "quantization": {
                    "method": "onnxruntime.quantization.quantize_dynamic",
                    "op_types_to_quantize": ["MatMul"], "per_channel": True, "weight_type": "QInt8",
                },
                "int8_check": check,
                "torch": torch.__version__,
                "onnxruntime": onnxruntime.__version__,
                "files": {
                    name: {"bytes": (tmp_dir / name).stat().st_size, "sha256": file_sha256(tmp_dir / name)}
                    for name in (FP32_FILE, INT8_FILE)
                },
                "export_seconds": round(time.perf_counter() - started, 2),
            }
            (tmp_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            for name in (FP32_FILE, INT8_FILE, MANIFEST_FILE):  # manifest last: it marks completion
                os.replace(tmp_dir / name, folder / name)
        return OnnxExport(folder, folder / FP32_FILE, folder / INT8_FILE, manifest)
