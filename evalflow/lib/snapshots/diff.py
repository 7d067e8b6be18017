"""What changed between two versions of a set: cases added and removed, labels changed (old and
new side by side), rubric changes. Pure: the store reads both versions and passes them in."""

from __future__ import annotations

from typing import Any, Mapping, Sequence


def _verdicts(case: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for dimension, label in (case.get("labels") or {}).items():
        if isinstance(label, Mapping):
            out[dimension] = {"verdict": label.get("verdict"), "source": label.get("source")}
    return out


def diff_cases(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]],
               rubrics_a: Mapping[str, Any] | None = None, rubrics_b: Mapping[str, Any] | None = None,
               ref_a: str = "a", ref_b: str = "b") -> dict[str, Any]:
    """{added, removed, relabelled, changed, rubric_changes} from version a to version b.

    relabelled: one entry per (case, dimension) whose verdict or source differs, with old and new;
    changed: ids of cases in both whose content differs other than by labels (e.g. a case
    re-derived); rubric_changes: dimensions whose set rubric version differs."""
    by_a = {c["case_id"]: c for c in a}
    by_b = {c["case_id"]: c for c in b}
    added = [{"case_id": cid, "split": by_b[cid].get("split"), "intent_id": by_b[cid].get("intent_id")}
             for cid in sorted(set(by_b) - set(by_a))]
    removed = [{"case_id": cid, "split": by_a[cid].get("split"), "intent_id": by_a[cid].get("intent_id")}
               for cid in sorted(set(by_a) - set(by_b))]
    relabelled, changed = [], []
    for cid in sorted(set(by_a) & set(by_b)):
        old, new = _verdicts(by_a[cid]), _verdicts(by_b[cid])
        for dimension in sorted(set(old) | set(new)):
            if old.get(dimension) != new.get(dimension):
                relabelled.append({"case_id": cid, "dimension": dimension, "old": old.get(dimension),
                                   "new": new.get(dimension), "split": by_b[cid].get("split")})
        rest_a = {k: v for k, v in by_a[cid].items() if k != "labels"}
        rest_b = {k: v for k, v in by_b[cid].items() if k != "labels"}
        if rest_a != rest_b:
            changed.append(cid)
    rubrics_a, rubrics_b = dict(rubrics_a or {}), dict(rubrics_b or {})
    rubric_changes = []
    for dimension in sorted(set(rubrics_a) | set(rubrics_b)):
        va = (rubrics_a.get(dimension) or {}).get("version")
        vb = (rubrics_b.get(dimension) or {}).get("version")
        if va != vb:
            rubric_changes.append({"dimension": dimension, "old_version": va, "new_version": vb,
                                   "text": (rubrics_b.get(dimension) or {}).get("text")})
    return {"from": ref_a, "to": ref_b, "added": added, "removed": removed, "relabelled": relabelled,
            "changed": changed, "rubric_changes": rubric_changes}
