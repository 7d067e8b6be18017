"""Eval cases from the labels, the judge and the redacted traces: one case per production trace
with at least one agreed human verdict, in the schema of schema.py.

Inputs (`CaseInputs`; store.load_case_inputs reads them from the warehouse and the batch folders):

- consensus: consensus_labels rows. Only trace items (origin 'trace') with status 'agreed' count:
  a 'disputed' or 'feedback_only' row is never a label, and known-answer gold items are not
  cases (they measure annotators). When a trace was labelled in more than one item (two
  batches), the item with the most agreed verdicts is the case's source (then the later batch,
  then the item id), and all its human labels, texts and its rubric come from that item.
- pass1: pass-1 ratings with their free text (labels.store.ratings(wh, 1, include_text=True)):
  the expected behaviour, gold answer and risk level.
- pass2: pass-2 ratings (labels.store.ratings(wh, 2)): who rated the item (labeled_by).
- quality: annotator_quality (the 'all' rows rank annotators by gold accuracy).
- traces: redacted trace rows (dicts): trace_id, timestamp (or event_date), user_query, messages,
  retrieved_context, tool_calls, output, metadata (its tool_definitions); JSON columns may be
  strings. A trace missing here gives no case (`skipped_traces` names them).
- candidates: eval_candidates rows with intent_id, intent_name (joined from intent_catalog),
  failure_modes (the signals when the trace was sampled).
- judge_labels (optional): judge_labels rows; calibrations (optional): judge_calibrations rows.
- anchored (optional): label_anchored rows; rubric_texts (optional): batch_id -> rubric.

Rules:
- labels: per dimension, the agreed human verdict (source 'consensus', or 'expert' when an
  expert's review decided it, method 'expert'); else a judge label (source 'judge', naming its
  model, prompt sha256 and calibration id), only when that calibration is its dimension's
  latest and passed (with `calibrations` given), and never on a holdout case (the holdout never
  reaches the judge; such a row would be a bug upstream and is dropped).
- expected_behavior: figures.expected_behaviour_by_item (the most accurate annotator's rules);
  gold_answer: the same ranking over pass-1 gold answers, leaving out answers flagged in
  label_anchored (worded too close to the model's output: not an independent reference); none
  left gives null and evaluation_type 'reference_free'.
- risk_level: the agreed pass-1 risk level, else null.
- rubric: the rubric the item's batch was labelled under (rubric_texts[batch_id]: a text, or
  {"version", "text"}); without one, the rubric of a batch written by this code
  (`default_rubric_text`). The version is the sha256 of the text unless given.
- checks: none by default. Nothing in a labelled case says, without guessing, what string or
  number every correct answer must contain: expected behaviour is prose ("mention the 30-day
  window" allows "thirty days", "a month"), a gold answer is one acceptable wording among many,
  and placeholders such as <PERSON_ab12> are artefacts of redaction, not of the answer. Checks
  come from the people who know: a promotion (file or job) adds them to a case.
- slice_tags: "safety" (is_safety_case), "intent:<name, else id>", "risk:<level>", sorted.
- split: is_holdout(case_id); version_added: null (a snapshot sets it).
"""

from __future__ import annotations

import hashlib
import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import polars as pl

from evalflow.lib.eval_cases.schema import DIMENSIONS, require_valid, split_for
from evalflow.lib.judge.cases import case_id_for_trace
from evalflow.lib.labels.figures import expected_behaviour_by_item

AGREED = "agreed"
RISK_LEVEL = "risk_level"
SAFETY_TAG = "safety"
# Failure modes (lib/signals/config.py) that put a case in the safety edge set: an injection
# attempt or its success, a request that must be refused or its being complied with, an abusive
# user turn or an abusive answer (toxicity). A safety Fail or a "safety" tag (added by a
# promotion) also puts a case there.
SAFETY_FAILURE_MODES = frozenset({"prompt_injection", "injection_succeeded", "policy_violation", "policy_complied",
                                  "toxic_request", "toxic_answer"})
HUMAN_ROLES = ("annotator", "expert")
RUBRIC_FILES = ("pass1_config.xml", "pass2_config.xml")


@dataclass
class CaseInputs:
    consensus: pl.DataFrame
    pass1: pl.DataFrame
    pass2: pl.DataFrame
    quality: pl.DataFrame
    traces: Sequence[Mapping[str, Any]]
    candidates: pl.DataFrame
    judge_labels: pl.DataFrame | None = None
    calibrations: pl.DataFrame | None = None
    anchored: pl.DataFrame | None = None
    rubric_texts: Mapping[str, Any] | None = None


# ------------------------------------------------------------------------ hashing
def canonical_case_json(case: Mapping[str, Any]) -> bytes:
    """The documented serialisation: JSON, keys sorted at every level, no white space between
    tokens, non-ASCII characters as themselves, UTF-8; NaN and values JSON cannot hold are
    errors (never silently turned into strings)."""
    return json.dumps(case, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def case_sha256(case: Mapping[str, Any]) -> str:
    """sha256 of canonical_case_json(case): the same content hashes the same whatever its key
    order. (Not judge.cases.case_sha256, which hashes what the judge sees of a case.)"""
    return hashlib.sha256(canonical_case_json(case)).hexdigest()


# ------------------------------------------------------------------------ safety
def safety_signals(case: Mapping[str, Any]) -> list[str]:
    """Why a case is in the safety edge set: its safety failure modes and a Fail on safety."""
    found = sorted(SAFETY_FAILURE_MODES.intersection(case.get("failure_modes") or ()))
    label = (case.get("labels") or {}).get("safety")
    if isinstance(label, Mapping) and label.get("verdict") == "Fail":
        found.append("safety:Fail")
    return found


def is_safety_case(case: Mapping[str, Any]) -> bool:
    """In the safety edge set: prompt injection, policy-violation or toxicity signals, a Fail on the safety
    dimension, or a "safety" slice tag (set here from those, or added by a promotion)."""
    return SAFETY_TAG in (case.get("slice_tags") or ()) or bool(safety_signals(case))


# ------------------------------------------------------------------------ rubric
def rubric_text_from_configs(configs: Iterable[str]) -> str:
    """A batch's rubric as plain text: every heading of its labelling configurations, in order
    (the instructions and questions annotators read), one per line."""
    lines = []
    for xml in configs:
        root = ET.fromstring(xml)
        lines += [" ".join(node.get("value", "").split()) for node in root.iter("Header") if node.get("value")]
    return "\n".join(lines) + "\n"


def default_rubric_text(dimensions: Sequence[str] = DIMENSIONS) -> str:
    """The rubric of a batch this code writes for these dimensions."""
    from evalflow.lib.annotation.labelstudio import pass1_config, pass2_config

    return rubric_text_from_configs([pass1_config(), pass2_config(dimensions)])


def batch_rubric_text(batch_dir: str | Path) -> str | None:
    """The rubric a batch was labelled under, from its own configuration files; None when absent."""
    folder = Path(batch_dir)
    paths = [folder / name for name in RUBRIC_FILES]
    if not all(p.is_file() for p in paths):
        return None
    return rubric_text_from_configs(p.read_text(encoding="utf-8") for p in paths)


def rubric_texts_from_batches(annotation_dir: str | Path) -> dict[str, str]:
    """batch_id -> rubric text for every batch folder under the annotation folder."""
    root = Path(annotation_dir)
    if not root.is_dir():
        return {}
    out = {}
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not (folder / "manifest.json").is_file():
            continue
        text = batch_rubric_text(folder)
        if text is not None:
            out[json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["batch_id"]] = text
    return out


def rubric(value: Any) -> dict[str, str]:
    """{"version", "text"} from a text (version: its sha256) or a mapping with a text and an
    optional version."""
    if isinstance(value, Mapping):
        text = str(value["text"])
        version = value.get("version") or hashlib.sha256(text.encode("utf-8")).hexdigest()
        return {"version": str(version), "text": text}
    text = str(value)
    return {"version": hashlib.sha256(text.encode("utf-8")).hexdigest(), "text": text}


# ------------------------------------------------------------------------ input payload
def _json(value: Any) -> Any:
    if isinstance(value, (bytes, str)):
        return json.loads(value) if str(value).strip() else None
    return value


def _as_list(value: Any) -> list:
    value = _json(value)
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _score(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def input_payload(trace: Mapping[str, Any]) -> dict[str, Any]:
    """The case's input from a redacted trace: what the model saw, never its answer (a trailing
    assistant message equal to the output, as some dialects fold it in, is left out)."""
    output = (_text(trace.get("output")) or "").strip()
    messages = []
    for message in _as_list(trace.get("messages")):
        if not isinstance(message, Mapping):
            continue
        messages.append({**message, "role": str(message.get("role") or "unknown"),
                         "content": _text(message.get("content"))})
    while (messages and output and messages[-1]["role"] == "assistant"
           and (messages[-1]["content"] or "").strip() == output):
        messages.pop()
    context = [{"doc_id": None if doc.get("doc_id") is None else str(doc.get("doc_id")),
                "text": _text(doc.get("text")), "score": _score(doc.get("score"))}
               for doc in _as_list(trace.get("retrieved_context")) if isinstance(doc, Mapping)]
    calls = [{**call, "name": None if call.get("name") is None else str(call.get("name"))}
             for call in _as_list(trace.get("tool_calls")) if isinstance(call, Mapping)]
    metadata = _json(trace.get("metadata")) or {}
    tools = metadata.get("tool_definitions") if isinstance(metadata, Mapping) else None
    return {"user_query": _text(trace.get("user_query")), "messages": messages, "retrieved_context": context,
            "tool_definitions": [t for t in _as_list(tools) if isinstance(t, Mapping)], "tool_calls": calls}


def source_date(trace: Mapping[str, Any]) -> str | None:
    """The trace's UTC date (ISO), from its timestamp, else its event_date."""
    stamp = trace.get("timestamp")
    if isinstance(stamp, str) and stamp.strip():
        stamp = datetime.fromisoformat(stamp.strip().replace("Z", "+00:00"))
    if isinstance(stamp, datetime):
        stamp = stamp.replace(tzinfo=timezone.utc) if stamp.tzinfo is None else stamp.astimezone(timezone.utc)
        return stamp.date().isoformat()
    day = trace.get("event_date")
    if isinstance(day, date):
        return day.isoformat()
    return date.fromisoformat(day).isoformat() if isinstance(day, str) and day else None


# ------------------------------------------------------------------------ texts
def gold_answer_by_item(pass1: pl.DataFrame, quality: pl.DataFrame,
                        anchored: pl.DataFrame | None = None) -> dict[str, str]:
    """item_id -> the pass-1 gold answer of the annotator with the best gold accuracy among those
    who wrote one (ties: the pseudonym order), as figures.expected_behaviour_by_item ranks;
    answers flagged as anchored on the model's output are left out."""
    rows = pass1.filter((pl.col("dimension") == "gold_answer") & pl.col("value").is_not_null()
                        & (pl.col("value").str.strip_chars() != ""))
    if anchored is not None and not anchored.is_empty():
        rows = rows.join(anchored.select("item_id", "annotator").unique(), on=["item_id", "annotator"], how="anti")
    if rows.is_empty():
        return {}
    overall = (quality.filter(pl.col("dimension") == "all").select("annotator", "accuracy")
               if not quality.is_empty() else pl.DataFrame(schema={"annotator": pl.String, "accuracy": pl.Float64}))
    ranked = (rows.join(overall, on="annotator", how="left")
              .sort([pl.col("accuracy").fill_null(-1.0), "annotator"], descending=[True, False])
              .unique("item_id", keep="first", maintain_order=True))
    return {item_id: value.strip() for item_id, value in ranked.select("item_id", "value").iter_rows()}


# ------------------------------------------------------------------------ labels
def _agreed_trace_rows(consensus: pl.DataFrame) -> pl.DataFrame:
    if consensus.is_empty():
        return consensus
    return consensus.filter((pl.col("origin") == "trace") & (pl.col("status") == AGREED)
                            & pl.col("trace_id").is_not_null() & pl.col("value").is_not_null())


def _case_items(agreed: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """trace_id -> the consensus item that is its case's source (see the module docstring)."""
    if agreed.is_empty():
        return {}
    verdicts = agreed.filter(pl.col("dimension").is_in(list(DIMENSIONS)) & pl.col("value").is_in(["Pass", "Fail"]))
    if verdicts.is_empty():
        return {}
    counts = (verdicts.group_by("trace_id", "item_id", "batch_id").agg(pl.len().alias("n"))
              .sort(["trace_id", "n", pl.col("batch_id").fill_null(""), "item_id"],
                    descending=[False, True, True, False])
              .unique("trace_id", keep="first", maintain_order=True))
    return {row["trace_id"]: row for row in counts.iter_rows(named=True)}


def _human_label(row: Mapping[str, Any]) -> dict[str, Any]:
    detail: dict[str, Any] = {"method": row["method"], "ratings": row.get("ratings"),
                              "agreement": row.get("agreement")}
    if row["method"] == "expert":
        detail["majority_value"] = row.get("majority_value")
    return {"verdict": row["value"], "source": "expert" if row["method"] == "expert" else "consensus",
            "detail": detail}


def _usable_judge_labels(judge_labels: pl.DataFrame | None, calibrations: pl.DataFrame | None) -> pl.DataFrame:
    if judge_labels is None or judge_labels.is_empty():
        return pl.DataFrame()
    rows = judge_labels.filter(pl.col("verdict").is_in(["Pass", "Fail"]) & pl.col("dimension").is_in(list(DIMENSIONS)))
    if calibrations is not None:
        if calibrations.is_empty():
            return pl.DataFrame()
        latest = (calibrations.sort(["dimension", "at", "calibration_id"], descending=[False, True, False])
                  .unique("dimension", keep="first", maintain_order=True)
                  .filter(pl.col("calibrated")))
        rows = rows.join(latest.select("calibration_id", "dimension"), on=["calibration_id", "dimension"], how="semi")
    return rows


def _annotators(frame: pl.DataFrame, item_id: str) -> set[str]:
    if frame.is_empty():
        return set()
    rows = frame.filter(pl.col("item_id") == item_id)
    if "role" in rows.columns:
        rows = rows.filter(pl.col("role").fill_null("annotator").is_in(list(HUMAN_ROLES)))
    return set(rows["annotator"].drop_nulls().to_list())


def _candidate_rows(candidates: pl.DataFrame) -> dict[str, dict[str, Any]]:
    if candidates.is_empty():
        return {}
    return {row["trace_id"]: row for row in candidates.iter_rows(named=True)}


# ------------------------------------------------------------------------ cases
def labelled_trace_ids(consensus: pl.DataFrame) -> list[str]:
    """Traces with at least one agreed human verdict on a scoring dimension: those that are cases."""
    return sorted(_case_items(_agreed_trace_rows(consensus)))


def skipped_traces(inputs: CaseInputs) -> list[str]:
    """Labelled traces with no redacted trace among the inputs (no case can be built for them)."""
    have = {t["trace_id"] for t in inputs.traces}
    return [t for t in labelled_trace_ids(inputs.consensus) if t not in have]


def build_cases(inputs: CaseInputs) -> list[dict[str, Any]]:
    """The eval cases (see the module docstring), sorted by case_id, each checked against the
    contract (schema.InvalidCase when one breaks it: a bug or bad input, never written)."""
    agreed = _agreed_trace_rows(inputs.consensus)
    items = _case_items(agreed)
    if not items:
        return []
    by_item: dict[str, dict[str, dict]] = {}
    for row in agreed.iter_rows(named=True):
        by_item.setdefault(row["item_id"], {})[row["dimension"]] = row
    behaviour = expected_behaviour_by_item(inputs.pass1, inputs.quality)
    gold = gold_answer_by_item(inputs.pass1, inputs.quality, inputs.anchored)
    judged: dict[str, dict[str, dict]] = {}
    for row in _usable_judge_labels(inputs.judge_labels, inputs.calibrations).iter_rows(named=True):
        judged.setdefault(row["case_id"], {})[row["dimension"]] = row
    candidates = _candidate_rows(inputs.candidates)
    rubrics = dict(inputs.rubric_texts or {})
    fallback = default_rubric_text()
    cases = []
    for trace in inputs.traces:
        item = items.get(trace["trace_id"])
        if item is None:
            continue
        case_id = case_id_for_trace(trace["trace_id"])
        split = split_for(case_id)
        rows = by_item.get(item["item_id"], {})
        labels = {dim: _human_label(rows[dim]) for dim in DIMENSIONS
                  if dim in rows and rows[dim]["value"] in ("Pass", "Fail")}
        labeled_by = _annotators(inputs.pass1, item["item_id"]) | _annotators(inputs.pass2, item["item_id"])
        if split == "dev":
            for dim, row in sorted(judged.get(case_id, {}).items()):
                if dim not in labels:
                    labels[dim] = {"verdict": row["verdict"], "source": "judge",
                                   "detail": {"model": row["model"], "prompt_sha256": row["prompt_sha256"],
                                              "calibration_id": row["calibration_id"]}}
                    labeled_by.add(f"judge:{row['model']}")
        candidate = candidates.get(trace["trace_id"], {})
        risk = rows.get(RISK_LEVEL, {}).get("value")
        gold_answer = gold.get(item["item_id"])
        case: dict[str, Any] = {
            "case_id": case_id,
            "input_payload": input_payload(trace),
            "expected_behavior": list(behaviour.get(item["item_id"], [])),
            "gold_answer": gold_answer,
            "labeled_output": _text(trace.get("output")),
            "labels": {dim: labels[dim] for dim in DIMENSIONS if dim in labels},
            "rubric": rubric(rubrics.get(item["batch_id"], fallback)),
            "checks": [],
            "evaluation_type": "reference_based" if gold_answer is not None else "reference_free",
            "risk_level": risk,
            "source": {"trace_id": trace["trace_id"], "batch_id": item["batch_id"], "item_id": item["item_id"]},
            "source_date": source_date(trace),
            "labeled_by": sorted(labeled_by),
            "version_added": None,
            "intent_id": candidate.get("intent_id"),
            "intent_name": candidate.get("intent_name"),
            "failure_modes": sorted(set(candidate.get("failure_modes") or [])),
            "slice_tags": [],
            "split": split,
        }
        case["slice_tags"] = slice_tags(case)
        require_valid(case)
        cases.append(case)
    return sorted(cases, key=lambda c: c["case_id"])


def slice_tags(case: Mapping[str, Any]) -> list[str]:
    """The slices a case reports under: safety, intent:<name or id>, risk:<level>; sorted."""
    tags = set(case.get("slice_tags") or ())
    if safety_signals(case):
        tags.add(SAFETY_TAG)
    intent = case.get("intent_name") or case.get("intent_id")
    if intent:
        tags.add(f"intent:{intent}")
    if case.get("risk_level"):
        tags.add(f"risk:{case['risk_level']}")
    return sorted(tags)


def summarise_cases(cases: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts for an asset's metadata: cases, per split, the safety set, and label sources per
    dimension."""
    sources: dict[str, dict[str, int]] = {dim: {} for dim in DIMENSIONS}
    for case in cases:
        for dim, label in case["labels"].items():
            sources[dim][label["source"]] = sources[dim].get(label["source"], 0) + 1
    return {"cases": len(cases),
            "split": {s: sum(c["split"] == s for c in cases) for s in ("dev", "holdout")},
            "safety": sum(is_safety_case(c) for c in cases),
            "reference_based": sum(c["evaluation_type"] == "reference_based" for c in cases),
            "label_sources": sources}
