"""The disagreement queue as a Label Studio review project for subject-matter experts.

`write_review_project` writes `<out_dir>/<review_id>/` with review_config.xml (the pass-2
labelling interface plus a panel with the annotators' votes and critiques) and review_tasks.json
(one task per disputed item). The dimensions that were disputed are named at the top of the
panel; the expert answers those (the dimension choices are optional in this project, unlike
pass 2, so the agreed ones can be left alone) and writes a critique, which stays required: it
is the record of why the majority was overridden. Each task's data is the item's pass-2 data
plus `review: "expert"` (how the importer tells an expert's export from an annotator's: its
labels get role 'expert' and override the majority), `item_id`, and `review_votes` (the
panel's text; a data key starting with "review" is never read as an answer).

Annotators appear by pseudonym only; critiques are passed in already redacted (they come from
the labels table). Atomic and idempotent like annotation batches: files are written into a
hidden temporary folder and renamed into place; writing the same review id again with the same
content returns the existing folder untouched, with different content raises
ReviewConflictError (experts may already be working on it: choose a new id).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Mapping, Sequence

import polars as pl

from evalflow.lib.annotation.labelstudio import CRITIQUE, pass2_config
from evalflow.lib.annotation.task_validation import validate_tasks

TASKS_FILE = "review_tasks.json"
CONFIG_FILE = "review_config.xml"
VOTES_FIELD = "review_votes"  # a task data key starting with "review": the importer reads it as no control
_REVIEW_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_OUTPUT_TAG = '  <Text name="output" value="$output"/>\n'
_VOTES_BLOCK = ('  <Header value="Expert review: the annotators disagreed. Answer the disputed dimensions named '
                'below (the others may stay empty) and say why in the critique" size="5"/>\n'
                f'  <Text name="{VOTES_FIELD}" value="${VOTES_FIELD}"/>\n')


class ReviewConflictError(RuntimeError):
    """The review id exists with different content."""


def review_config(dimensions: Sequence[str]) -> str:
    """The pass-2 configuration with the votes panel under the model's answer."""
    if VOTES_FIELD in dimensions:
        raise ValueError(f"a dimension cannot be named {VOTES_FIELD!r} in a review project")
    config = pass2_config(dimensions)
    if _OUTPUT_TAG not in config:  # pass2_config changed shape: the panel would silently vanish
        raise AssertionError("pass-2 configuration has no output Text tag to put the votes under")
    config = config.replace(_OUTPUT_TAG, _OUTPUT_TAG + _VOTES_BLOCK, 1)
    for dim in dimensions:  # experts answer the disputed dimensions only
        required = f'<Choices name="{dim}" toName="output" choice="single" showInline="true" required="true">'
        if required not in config:
            raise AssertionError(f"pass-2 configuration has no required Choices for {dim!r}")
        config = config.replace(required, required.replace('required="true"', 'required="false"'))
    return config


def votes_text(item: dict, dimensions: Sequence[str]) -> str:
    """The panel: disputed dimensions, then each dimension's votes, then each critique."""
    votes = sorted(item.get("votes") or [], key=lambda v: v["annotator"])
    disputed = [d for d in dimensions if d in set(item.get("disputed") or [])]
    lines = [f"Disputed: {', '.join(disputed) if disputed else '(none named)'}"]
    for dim in dimensions:
        by_value: dict[str, list[str]] = {}
        for vote in votes:
            value = (vote.get("values") or {}).get(dim)
            by_value.setdefault(value if value else "(no answer)", []).append(vote["annotator"])
        counted = "; ".join(f"{value} x{len(who)} ({', '.join(who)})" for value, who in sorted(by_value.items()))
        lines.append(f"{dim}: {counted or '(no votes)'}")
    critiques = [(v["annotator"], (v.get(CRITIQUE) or "").strip()) for v in votes]
    lines += ["", "Critiques:"] + [f"{who}: {text or '(none)'}" for who, text in critiques]
    return "\n".join(lines)


def review_tasks(disputed: Sequence[dict], dimensions: Sequence[str]) -> list[dict]:
    """Tasks for the disputed items, in item_id order (so the same items give the same file)."""
    tasks = []
    for item in sorted(disputed, key=lambda i: i["item_id"]):
        data = dict(item["data"])
        if data.get("item_id", item["item_id"]) != item["item_id"]:
            raise ValueError(f"item {item['item_id']!r} carries the task data of {data['item_id']!r}")
        data.update({"item_id": item["item_id"], "review": "expert", VOTES_FIELD: votes_text(item, dimensions)})
        tasks.append({"data": data})
    return tasks


def disputed_items(consensus: pl.DataFrame, labels: pl.DataFrame, pass2_tasks: Mapping[str, dict]) -> list[dict]:
    """The `disputed` argument of write_review_project from consensus_labels rows (status
    'disputed'; 'feedback_only' rows wait for a first human rating, not an expert), the labels
    rows (item_id, annotator, field, value; pass-2 annotator rows are read) and the pass-2 task
    data by item_id (items without task data are skipped: their batch folder is gone)."""
    wanted = consensus.filter(pl.col("status") == "disputed")
    dims_of: dict[str, list[str]] = {}
    for item_id, dimension in wanted.select("item_id", "dimension").iter_rows():
        dims_of.setdefault(item_id, []).append(dimension)
    rows = labels.filter(pl.col("item_id").is_in(list(dims_of)))
    if "pass" in rows.columns:
        rows = rows.filter(pl.col("pass") == 2)
    if "role" in rows.columns:
        rows = rows.filter(pl.col("role").fill_null("annotator") == "annotator")
    votes: dict[str, dict[str, dict]] = {}
    for item_id, annotator, field, value in rows.select("item_id", "annotator", "field", "value").iter_rows():
        vote = votes.setdefault(item_id, {}).setdefault(annotator, {"annotator": annotator, "values": {}})
        if field == CRITIQUE:
            vote[CRITIQUE] = value
        else:
            vote["values"][field] = value
    return [{"item_id": item_id, "data": pass2_tasks[item_id], "disputed": sorted(dims),
             "votes": list(votes.get(item_id, {}).values())}
            for item_id, dims in sorted(dims_of.items()) if item_id in pass2_tasks]


def _write_file(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _same_content(target: Path, files: dict[str, str]) -> bool:
    try:
        present = {p.name for p in target.iterdir()}
        return present == set(files) and all((target / n).read_text(encoding="utf-8") == t for n, t in files.items())
    except OSError:
        return False


def write_review_project(disputed: Sequence[dict], out_dir: str | Path, review_id: str,
                         dimensions: Sequence[str]) -> Path:
    """Write `<out_dir>/<review_id>/` (review_tasks.json, review_config.xml); return the folder.

    `disputed`: one dict per item: item_id, data (the item's pass-2 task data), disputed (the
    dimensions without consensus), votes ([{annotator (pseudonym), values {dimension: value},
    critique}]). `dimensions`: the batch's scoring dimensions (manifest["dimensions"])."""
    if not _REVIEW_ID.match(review_id):
        raise ValueError(f"review_id {review_id!r} must be letters, digits, '.', '_' or '-'")
    config = review_config(dimensions)
    tasks = review_tasks(disputed, dimensions)
    problems = validate_tasks(config, tasks)
    if problems:
        raise ValueError(f"review tasks do not fit the review configuration: {problems[:5]}")
    files = {CONFIG_FILE: config, TASKS_FILE: json.dumps(tasks, ensure_ascii=False, indent=1) + "\n"}
    out_dir = Path(out_dir)
    target = out_dir / review_id
    if target.exists():
        if _same_content(target, files):
            return target
        raise ReviewConflictError(f"review project {review_id!r} already exists in {out_dir} with other "
                                  "content; experts may be working on it, choose a new review id")
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(f".{review_id}.tmp-*"):  # left by a writer killed mid-write
        shutil.rmtree(stale, ignore_errors=True)
    staging = out_dir / f".{review_id}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        for name, text in files.items():
            _write_file(staging / name, text)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
