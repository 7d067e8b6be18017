"""What the contamination_report asset runs: the latest golden version's cases against every
registered corpus (contamination.toml) and the system prompts and few-shot examples seen in the
traces, plus the leaks across the eval set's own boundaries (holdout vs development cases, golden
vs the newest rolling set, golden vs the known-answer gold cases mixed into annotation batches).
Written with store.write_run (one transaction); the report JSON goes to
`<data>/reports/contamination/<run_id>.json` (ids, corpora, methods and scores, no text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from evalflow.lib.common.warehouse import Warehouse

# Which split boundaries are checked, and in which direction (the first side is indexed).
LEAK_PAIRS = (("holdout", "dev"), ("golden", "rolling"), ("golden", "known_answers"))


@dataclass
class ContaminationOutcome:
    skipped: str | None = None
    golden: str | None = None
    run: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    leaks: list[dict[str, Any]] = field(default_factory=list)
    report_path: Path | None = None

    def contaminated_cases(self) -> list[dict[str, Any]]:
        return [case for case in self.report.get("cases", []) if case["contaminated"]]


def _known_answers() -> list[dict[str, Any]]:
    """The known-answer cases the annotation stage mixes into batches ($EVALFLOW_KNOWN_ANSWERS, else
    the bundled ones), read and checked by the annotation stage's own loader."""
    from evalflow.lib.annotation.checks import known_answers_path
    from evalflow.lib.annotation.gold import load_known_answers

    return load_known_answers(known_answers_path())


def _trace_prompts(warehouse: Warehouse):
    """The trace_prompts corpus: system prompts and few-shot turns of the warehouse's traces. The
    rows are streamed: only the distinct prompts are held, not every trace's messages."""
    from evalflow.lib.common.warehouse import has_table
    from evalflow.lib.contamination import Corpus, trace_prompt_documents

    if not warehouse.path.exists():
        return None
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "redacted_traces"):
            return None
        cursor = con.execute("SELECT trace_id, CAST(messages AS VARCHAR) FROM redacted_traces "
                             "WHERE messages IS NOT NULL ORDER BY trace_id")

        def rows():
            while batch := cursor.fetchmany(10_000):
                yield from ({"trace_id": t, "messages": m} for t, m in batch)

        documents = list(trace_prompt_documents(rows()))
    return Corpus("trace-prompts", "trace_prompts", documents=documents) if documents else None


class _Remembering:
    """An embedder that remembers the vectors of `keep` texts: the golden cases are embedded by
    check_cases, then again by split_leaks as cases (golden, holdout) and as documents (dev); once
    is enough. Every other attribute (describe, model_version...) is the wrapped embedder's."""

    def __init__(self, embedder, keep: set[str]):
        self.embedder, self.keep, self.kept = embedder, keep, {}

    def encode(self, texts):
        import numpy as np

        texts = list(texts)
        if not texts:
            return self.embedder.encode(texts)
        todo = [t for t in dict.fromkeys(texts) if t not in self.kept]
        fresh = dict(zip(todo, np.asarray(self.embedder.encode(todo), dtype=np.float32))) if todo else {}
        self.kept.update((t, v) for t, v in fresh.items() if t in self.keep)
        return np.stack([fresh[t] if t in fresh else self.kept[t] for t in texts])

    def __getattr__(self, name: str):
        return getattr(self.embedder, name)


def contamination_run(warehouse: Warehouse, data_dir: Path, *, run_id: str, checked_at: datetime,
                      embedder=None) -> ContaminationOutcome:
    """The check described in the module doc. `embedder`: an embedder, or a function that makes
    one (called only when there is a golden version to check, so a skipped run loads no model);
    None leaves paraphrases out."""
    from evalflow.lib.contamination import (
        case_text,
        check_cases,
        load_contamination_config,
        load_corpora_config,
        split_leaks,
    )
    from evalflow.lib.contamination.store import write_run
    from evalflow.lib.contamination.text import for_embedding
    from evalflow.lib.snapshots.store import latest_version, read_cases

    golden_version = latest_version(data_dir, "golden")
    if golden_version is None:
        return ContaminationOutcome(skipped="no golden version yet: promote one first (docs/snapshots.md)")
    ref = f"golden@{golden_version}"
    golden = read_cases(data_dir, ref)
    config = load_contamination_config(data_dir)
    corpora = list(load_corpora_config(data_dir))
    prompts = _trace_prompts(warehouse)
    if prompts is not None:
        corpora.append(prompts)
    rolling_version = latest_version(data_dir, "rolling")
    rolling = read_cases(data_dir, f"rolling@{rolling_version}") if rolling_version else []

    def texts(items):
        return [{"case_id": c["case_id"], "text": t} for c in items if (t := case_text(c)).strip()]

    cases = [{"case_id": c["case_id"], "text": case_text(c)} for c in golden]
    if callable(embedder) and not hasattr(embedder, "encode"):
        embedder = embedder()
    if embedder is not None:
        embedder = _Remembering(embedder, {for_embedding(c["text"]) for c in cases})
    report = check_cases(cases, corpora, embedder=embedder, config=config)
    golden_texts = [c for c in cases if c["text"].strip()]
    golden_ids = {c["case_id"] for c in golden}
    split_of = {c["case_id"]: c.get("split") for c in golden}
    splits = {
        "holdout": [c for c in golden_texts if split_of[c["case_id"]] == "holdout"],
        "dev": [c for c in golden_texts if split_of[c["case_id"]] == "dev"],
        "golden": golden_texts,
        # A rolling case that is a golden case is not a leak across sets, it is the same case.
        "rolling": texts(c for c in rolling if c["case_id"] not in golden_ids),
        "known_answers": texts(_known_answers()),
    }
    leaks = split_leaks(splits, pairs=list(LEAK_PAIRS), embedder=embedder, config=config)
    report["summary"]["golden"] = ref
    # Distinct leaking cases per boundary ("holdout|dev" -> n), every boundary named.
    report["summary"]["split_leaks"] = {
        f"{a}|{b}": len({x["case_id"] for x in leaks if (x["split"], x["other_split"]) == (a, b)})
        for a, b in LEAK_PAIRS}
    run = write_run(warehouse, report, leaks, run_id=run_id, checked_at=checked_at)
    path = Path(data_dir) / "reports" / "contamination" / f"{run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"report": report, "split_leaks": leaks}, sort_keys=True, default=str) + "\n",
                   encoding="utf-8")
    tmp.replace(path)
    return ContaminationOutcome(golden=ref, run=run, report=report, leaks=leaks, report_path=path)
