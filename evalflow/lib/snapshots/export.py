"""Export a version to files: `<out>/<name>/<version>/` (default `<data>/exports/`).

Two variants, named in the file names:

- `all.jsonl` / `all.parquet`: every case, holdout included (the CI gate's input);
- `dev.jsonl` / `dev.parquet`: the development export for prompt work, holdout cases left out.

Every exported case carries its `split` ("dev" or "holdout"). The JSONL holds one case per line
in the snapshot's canonical serialisation, sorted by case_id, so the sha256 of `all.jsonl` is
the version's `content_sha256` (anyone can check an export without evalflow). The Parquet file
has one row per case: name, version, case_id, split, source_date, intent_id, slice_tags,
case_sha256 and case_json (the same canonical JSON). `<variant>.export.json` says what was
exported (the version, its manifest and content sha256, whether the holdout is in, the
files' sha256); `manifest.json` is the version's manifest. The version is verified before
anything is written, and each file is written to a temporary name and renamed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from evalflow.lib.snapshots.content import canonical_case, case_sha256, content_sha256
from evalflow.lib.snapshots.refs import DatasetRef

VARIANTS = ("all", "dev")


@dataclass(frozen=True)
class ExportResult:
    ref: str
    variant: str
    folder: Path
    jsonl: Path
    parquet: Path
    cases: int
    holdout_cases: int
    jsonl_sha256: str


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_export(ref: DatasetRef, cases: list[dict[str, Any]], manifest: dict[str, Any], out_dir: Path,
                 variant: str = "all") -> ExportResult:
    if variant not in VARIANTS:
        raise ValueError(f"export variant {variant!r}: one of {', '.join(VARIANTS)} (dev leaves the holdout out)")
    chosen = sorted((c for c in cases if variant == "all" or c["split"] == "dev"), key=lambda c: c["case_id"])
    folder = Path(out_dir) / ref.name / ref.version
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(canonical_case(c) + "\n" for c in chosen).encode("utf-8")
    jsonl = folder / f"{variant}.jsonl"
    _replace(jsonl, lines)
    table = pa.table({
        "name": pa.array([ref.name] * len(chosen), pa.string()),
        "version": pa.array([ref.version] * len(chosen), pa.string()),
        "case_id": pa.array([c["case_id"] for c in chosen], pa.string()),
        "split": pa.array([c["split"] for c in chosen], pa.string()),
        "source_date": pa.array([c.get("source_date") for c in chosen], pa.string()),
        "intent_id": pa.array([None if c.get("intent_id") is None else str(c["intent_id"]) for c in chosen],
                              pa.string()),
        "slice_tags": pa.array([[str(t) for t in c.get("slice_tags") or []] for c in chosen], pa.list_(pa.string())),
        "case_sha256": pa.array([case_sha256(c) for c in chosen], pa.string()),
        "case_json": pa.array([canonical_case(c) for c in chosen], pa.string()),
    })
    parquet = folder / f"{variant}.parquet"
    tmp = parquet.with_name(f".{parquet.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, parquet)
    holdout = sum(1 for c in chosen if c["split"] == "holdout")
    jsonl_sha = hashlib.sha256(lines).hexdigest()
    info = {"ref": str(ref), "variant": variant, "holdout_included": variant == "all", "cases": len(chosen),
            "holdout_cases": holdout, "version_content_sha256": manifest["content_sha256"],
            "exported_content_sha256": content_sha256(chosen), "jsonl_sha256": jsonl_sha,
            "parquet_sha256": hashlib.sha256(parquet.read_bytes()).hexdigest()}
    _replace(folder / f"{variant}.export.json", (json.dumps(info, sort_keys=True, indent=2) + "\n").encode("utf-8"))
    _replace(folder / "manifest.json",
             (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return ExportResult(str(ref), variant, folder, jsonl, parquet, len(chosen), holdout, jsonl_sha)
