"""Write one annotation batch: both passes for Label Studio and as CSV, plus a manifest.

`out_dir/<batch_id>/` holds pass1_config.xml, pass1_tasks.json, pass1.csv, pass2_config.xml,
pass2_tasks.json, pass2.csv and manifest.json. Only the pass files go to annotators; the
manifest says which tasks are gold and what their answers are.

Atomic: everything is written into a hidden temporary folder beside the target and renamed
into place last, so a crash leaves either the whole batch or none of it (a stale temporary
folder at worst, removed on the next write). Idempotent: the manifest stores a sha256 of
every input (candidates, known answers, gold rate, seed, dimensions); writing a batch id that
exists with the same fingerprint returns the existing manifest without touching the files, a
different fingerprint raises BatchConflictError (a published batch is never overwritten:
annotators may already be working on it).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from evalflow.lib.annotation import csv_export, gold, labelstudio, tasks
from evalflow.lib.annotation.task_validation import validate_tasks
from evalflow.lib.ingest.canonical import file_sha256

SCHEMA_VERSION = 1
DEFAULT_DIMENSIONS = ("accuracy", "relevance", "groundedness", "safety", "policy")
MANIFEST = "manifest.json"
SAMPLING_KEYS = ("session_id", "intent_id", "intent_name", "stratum", "reason",
                 "failure_modes", "difficulty_bucket")
WORKFLOW = """\
Two passes, in two Label Studio projects (or two spreadsheets):
1. Pass 1 (gold answer first): create a project with pass1_config.xml as its labelling
   interface and import pass1_tasks.json (or fill pass1.csv). Annotators see the redacted
   input only (conversation, question, retrieved documents, tool calls), never the model's
   answer, and write the expected behaviour, a gold answer and a risk level.
2. Pass 2 (verdicts), after pass 1 is done: a second project with pass2_config.xml and
   pass2_tasks.json (or pass2.csv). Annotators now see the model's answer and give Pass/Fail
   per scoring dimension with a written critique.
Tasks join across passes and back to traces by data.item_id (the manifest maps it).
Some tasks are known-answer gold cases, listed only in manifest.json: do not share the
manifest with annotators. Score annotators with score_gold(manifest, export) on each
project's JSON export.
"""

_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class BatchConflictError(RuntimeError):
    """The batch id exists with different inputs."""


@dataclass(frozen=True)
class BatchManifest:
    path: Path  # the batch folder
    data: dict  # manifest.json as written
    created: bool = True  # False when the same batch already existed (a no-op call)

    @property
    def batch_id(self) -> str:
        return self.data["batch_id"]

    @property
    def counts(self) -> dict:
        return self.data["counts"]

    @property
    def gold_item_ids(self) -> list[str]:
        return self.data["gold_item_ids"]

    @property
    def files(self) -> dict[str, str]:
        return self.data["files"]

    def to_dict(self) -> dict:
        return self.data

    @classmethod
    def load(cls, path: str | Path) -> "BatchManifest":
        folder = Path(path)
        return cls(folder, json.loads((folder / MANIFEST).read_text(encoding="utf-8")), created=False)


def verify_batch(manifest: BatchManifest) -> list[str]:
    """Files whose content no longer matches the manifest (empty: intact)."""
    problems = []
    for name, expected in manifest.files.items():
        path = manifest.path / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif file_sha256(path) != expected:
            problems.append(f"{name}: sha256 differs from the manifest")
    return problems


def _fingerprint(batch_id: str, candidates: list[dict], known_answers: list[dict],
                 gold_rate: float, seed: int, dimensions: tuple[str, ...]) -> str:
    payload = {"schema_version": SCHEMA_VERSION, "batch_id": batch_id, "candidates": candidates,
               "known_answers": known_answers, "gold_rate": gold_rate, "seed": seed,
               "dimensions": list(dimensions)}
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _plan(candidates: list[dict], known_answers: list[dict], batch_id: str, gold_rate: float,
          seed: int) -> tuple[list[tuple[str, dict]], int]:
    """Task order as (origin, record) pairs, origin "trace" or "gold"; and the gold wanted."""
    wanted = gold.gold_count(len(candidates), gold_rate)
    rng = random.Random(f"{batch_id}\x1f{seed}")
    chosen = rng.sample(known_answers, min(wanted, len(known_answers)))
    real = list(candidates)
    rng.shuffle(real)
    n_tasks = len(real) + len(chosen)
    slots: list[tuple[str, dict] | None] = [None] * n_tasks
    for position, case in zip(gold.gold_positions(n_tasks, len(chosen), rng), chosen):
        slots[position] = ("gold", case)
    remaining = iter(real)
    order = [slot or ("trace", next(remaining)) for slot in slots]
    return order, wanted


def _dump_json(value) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1) + "\n"


def _build(candidates, known_answers, batch_id, gold_rate, seed, dims) -> tuple[dict[str, str], dict]:
    """The batch's files as {name: text}, and the manifest without file hashes."""
    order, wanted = _plan(candidates, known_answers, batch_id, gold_rate, seed)
    pass1, pass2, items, gold_keys = [], [], [], []
    for position, (origin, record) in enumerate(order):
        if origin == "gold":
            item_id = tasks.item_id_for(batch_id, f"gold:{record['case_id']}")
            shown = gold.gold_candidate(record)
            gold_keys.append({"item_id": item_id, "position": position, **gold.answer_key(record)})
            items.append({"position": position, "item_id": item_id, "origin": "gold",
                          "case_id": record["case_id"]})
        else:
            item_id = tasks.item_id_for(batch_id, f"trace:{record['trace_id']}")
            shown = record
            items.append({"position": position, "item_id": item_id, "origin": "trace",
                          "trace_id": record["trace_id"],
                          **{k: record[k] for k in SAMPLING_KEYS if k in record}})
        pass1.append({"data": tasks.pass1_data(shown, item_id)})
        pass2.append({"data": tasks.pass2_data(shown, item_id)})
    configs = {"pass1": labelstudio.pass1_config(), "pass2": labelstudio.pass2_config(dims)}
    for name, task_list in (("pass1", pass1), ("pass2", pass2)):
        problems = validate_tasks(configs[name], task_list)
        if problems:  # our own output: a problem here is a bug, never something to ship
            raise AssertionError(f"{name} tasks do not fit their config: {problems[:5]}")
    files = {
        "pass1_config.xml": configs["pass1"],
        "pass1_tasks.json": _dump_json(pass1),
        "pass1.csv": csv_export.tasks_to_csv(pass1, tasks.PASS1_FIELDS, labelstudio.PASS1_CONTROLS),
        "pass2_config.xml": configs["pass2"],
        "pass2_tasks.json": _dump_json(pass2),
        "pass2.csv": csv_export.tasks_to_csv(pass2, tasks.PASS2_FIELDS, (*dims, labelstudio.CRITIQUE)),
    }
    n_tasks = len(order)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "batch_id": batch_id,
        "counts": {"candidates": n_tasks - len(gold_keys), "gold": len(gold_keys),
                   "gold_requested": wanted, "tasks": n_tasks},
        "gold_rate": gold_rate,
        "gold_share": len(gold_keys) / n_tasks if n_tasks else 0.0,
        "seed": seed,
        "dimensions": list(dims),
        "gold_item_ids": [g["item_id"] for g in gold_keys],
        "gold": gold_keys,
        "items": items,
        "workflow": WORKFLOW,
    }
    return files, manifest


def _write_file(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable: without it a power cut can forget the new entry.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _discard_staging(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)


def _clear_stale_temporaries(out_dir: Path, batch_id: str) -> None:
    # Left by a writer that was killed before it could clean up; never visible as a batch.
    for stale in out_dir.glob(f".{batch_id}.tmp-*"):
        _discard_staging(stale)


def _existing(target: Path, fingerprint: str) -> BatchManifest:
    try:
        manifest = BatchManifest.load(target)
    except (OSError, ValueError) as exc:
        raise BatchConflictError(f"{target} exists but has no readable manifest: {exc}") from exc
    if manifest.data.get("inputs_sha256") != fingerprint:
        raise BatchConflictError(
            f"batch {manifest.batch_id!r} already exists in {target.parent} with different "
            "inputs; published batches are never overwritten, choose a new batch id")
    problems = verify_batch(manifest)
    if problems:
        raise BatchConflictError(f"batch {manifest.batch_id!r} was modified after writing: {problems}")
    return manifest


def write_annotation_batch(candidates: list[dict], out_dir: Path, *, batch_id: str,
                           known_answers: list[dict], gold_rate: float = 0.10, seed: int = 0,
                           dimensions: Sequence[str] = DEFAULT_DIMENSIONS) -> BatchManifest:
    """Write `out_dir/<batch_id>/` (see the module docstring) and return its manifest."""
    if not _BATCH_ID.match(batch_id):
        raise ValueError(f"batch_id {batch_id!r} must be letters, digits, '.', '_' or '-'")
    dims = labelstudio.check_dimensions(dimensions)
    gold.gold_count(len(candidates), gold_rate)  # validates the rate before any work
    trace_ids = [c.get("trace_id") for c in candidates]
    if any(not t for t in trace_ids) or len(set(trace_ids)) != len(trace_ids):
        raise ValueError("every candidate needs a trace_id, and trace ids must be unique")
    out_dir = Path(out_dir)
    target = out_dir / batch_id
    fingerprint = _fingerprint(batch_id, candidates, known_answers, gold_rate, seed, dims)
    if target.exists():
        return _existing(target, fingerprint)

    files, manifest = _build(candidates, known_answers, batch_id, gold_rate, seed, dims)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_stale_temporaries(out_dir, batch_id)
    staging = out_dir / f".{batch_id}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        for name, text in files.items():
            _write_file(staging / name, text)
        manifest = {**manifest, "inputs_sha256": fingerprint,
                    "files": {name: file_sha256(staging / name) for name in files}}
        _write_file(staging / MANIFEST, _dump_json(manifest))
        # Fails if another writer published the same id meanwhile: theirs stays, ours is dropped.
        os.rename(staging, target)
    except BaseException:
        _discard_staging(staging)
        raise
    _fsync_dir(out_dir)
    return BatchManifest(target, manifest, created=True)
