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

    def leak_counts(self) -> dict[str, int]:
        """Distinct leaking cases per boundary ("holdout|dev" -> n)."""
        found: dict[str, set[str]] = {}
        for leak in self.leaks:
            found.setdefault(f"{leak['split']}|{leak['other_split']}", set()).add(leak["case_id"])
        return {pair: len(ids) for pair, ids in sorted(found.items())}


def _known_answers() -> list[dict[str, Any]]:
    from importlib.resources import files

    text = (files("evalflow.lib.annotation") / "known_answers.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _trace_prompts(warehouse: Warehouse):
    """The trace_prompts corpus: system prompts and few-shot turns of the warehouse's traces."""
    from evalflow.lib.common.warehouse import has_table
    from evalflow.lib.contamination import Corpus, trace_prompt_documents

    if not warehouse.path.exists():
        return None
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "redacted_traces"):
            return None
        rows = con.execute("SELECT trace_id, CAST(messages AS VARCHAR) FROM redacted_traces "
                           "WHERE messages IS NOT NULL ORDER BY trace_id").fetchall()
    documents = list(trace_prompt_documents({"trace_id": t, "messages": m} for t, m in rows))
    return Corpus("trace-prompts", "trace_prompts", documents=documents) if documents else None


def contamination_run(warehouse: Warehouse, data_dir: Path, *, run_id: str, checked_at: datetime,
                      embedder=None) -> ContaminationOutcome:
    """The check described in the module doc; `embedder` None leaves paraphrases out."""
    from evalflow.lib.contamination import (
        case_text,
        check_cases,
        load_contamination_config,
        load_corpora_config,
        split_leaks,
    )
    from evalflow.lib.contamination.store import write_run
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
    cases = [{"case_id": c["case_id"], "text": case_text(c)} for c in golden]
    report = check_cases(cases, corpora, embedder=embedder, config=config)
    rolling_version = latest_version(data_dir, "rolling")
    rolling = read_cases(data_dir, f"rolling@{rolling_version}") if rolling_version else []
    golden_ids = {c["case_id"] for c in golden}
    splits = {
        "holdout": [c for c in golden if c.get("split") == "holdout"],
        "dev": [c for c in golden if c.get("split") == "dev"],
        "golden": golden,
        # A rolling case that is a golden case is not a leak across sets, it is the same case.
        "rolling": [c for c in rolling if c["case_id"] not in golden_ids],
        "known_answers": _known_answers(),
    }
    texts = {name: [{"case_id": c["case_id"], "text": case_text(c)} for c in items if case_text(c).strip()]
             for name, items in splits.items()}
    leaks = split_leaks(texts, pairs=list(LEAK_PAIRS), embedder=embedder, config=config)
    report["summary"]["golden"] = ref
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
