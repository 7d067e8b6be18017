"""Annotator accuracy on the gold cases of a batch, from a Label Studio JSON export.

Input: the batch manifest and Label Studio's "JSON" export of one project (a list of tasks,
each with `data.item_id` and `annotations[].result[]`). Tasks that are not gold, and
annotations that were cancelled (skipped), are ignored.

Scoring rules, per annotation of a gold task:
- pass 2: each dimension with a known verdict counts once; correct when the chosen value
  equals the known verdict. A dimension the annotator left empty counts as wrong.
- pass 1: the gold answer is correct when it contains every key fact (any one spelling of a
  fact with alternatives), compared case-insensitively with whitespace collapsed. A simple
  check, meant to catch careless or wrong gold answers, not to grade wording.
The pass of an annotation is read from its result names (a dimension -> pass 2, gold_answer ->
pass 1), so one function reads both projects' exports.

Output: overall and per-dimension accuracy, accuracy per annotator, one row per scored
annotation with its position in the batch (for fatigue curves), and accuracy over the first
and second half of the batch.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from evalflow.lib.annotation.labelstudio import PASS1_CONTROLS


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u2019", "'")).strip().casefold()


def contains_key_facts(answer: str, key_facts: list) -> bool:
    text = _normalise(answer)
    for fact in key_facts:
        spellings = fact if isinstance(fact, list) else [fact]
        if not any(_normalise(s) in text for s in spellings):
            return False
    return True


def _results_by_name(annotation: dict) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for result in annotation.get("result") or []:
        value = result.get("value") or {}
        if "choices" in value:
            values[result.get("from_name")] = (value["choices"] or [None])[0]
        elif "text" in value:
            text = value["text"]
            values[result.get("from_name")] = "\n".join(text) if isinstance(text, list) else str(text)
    return values


def _annotator(annotation: dict) -> str:
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    return "unknown" if who is None else str(who)


def _ratio(correct: int, total: int) -> dict:
    return {"correct": correct, "total": total, "accuracy": correct / total if total else None}


def _tally(rows: list[dict]) -> dict:
    return _ratio(sum(r["correct"] for r in rows), sum(r["total"] for r in rows))


def score_gold(manifest: Any, annotations: list[dict]) -> dict:
    """Accuracy of annotators on a batch's gold tasks. `manifest`: BatchManifest or its dict."""
    data = manifest.to_dict() if hasattr(manifest, "to_dict") else manifest
    gold = {entry["item_id"]: entry for entry in data["gold"]}
    n_tasks = data["counts"]["tasks"]
    dimensions = set(data["dimensions"])
    rows: list[dict] = []
    per_dimension: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for task in annotations:
        key = gold.get((task.get("data") or {}).get("item_id"))
        if key is None:
            continue
        for annotation in task.get("annotations") or []:
            if annotation.get("was_cancelled"):
                continue
            values = _results_by_name(annotation)
            row = {"item_id": key["item_id"], "case_id": key["case_id"],
                   "position": key["position"], "annotator": _annotator(annotation)}
            if dimensions & values.keys() or "critique" in values:
                verdicts = key["known_verdicts"]
                hits = {dim: values.get(dim) == verdict for dim, verdict in verdicts.items()}
                for dim, hit in hits.items():
                    per_dimension[dim][0] += hit
                    per_dimension[dim][1] += 1
                rows.append({**row, "pass": 2, "correct": sum(hits.values()), "total": len(hits)})
            elif set(PASS1_CONTROLS) & values.keys():
                hit = contains_key_facts(values.get("gold_answer") or "", key["key_facts"])
                rows.append({**row, "pass": 1, "correct": int(hit), "total": 1})
    rows.sort(key=lambda r: (r["position"], r["annotator"], r["pass"]))
    by_annotator: dict[str, dict] = {}
    for who in sorted({r["annotator"] for r in rows}):
        mine = [r for r in rows if r["annotator"] == who]
        by_annotator[who] = {f"pass{p}": _tally([r for r in mine if r["pass"] == p]) for p in (1, 2)}
    scored_items = {r["item_id"] for r in rows}
    return {
        "gold_tasks": len(gold),
        "gold_annotated": len(scored_items),
        "unannotated_gold": sorted(set(gold) - scored_items),
        "pass1": _tally([r for r in rows if r["pass"] == 1]),
        "pass2": {**_tally([r for r in rows if r["pass"] == 2]),
                  "by_dimension": {d: _ratio(*per_dimension[d]) for d in sorted(per_dimension)}},
        "by_annotator": by_annotator,
        "by_position": rows,
        "fatigue": {"first_half": _tally([r for r in rows if r["position"] < n_tasks / 2]),
                    "second_half": _tally([r for r in rows if r["position"] >= n_tasks / 2])},
    }
