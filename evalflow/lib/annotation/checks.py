"""The annotation_queue asset check: a written batch imports into Label Studio and pass 1 keeps
the model's answer out of sight.

Re-reads the files from disk (not the objects that wrote them), so it catches what an annotator
would get: every task of both passes validates against its pass's labeling configuration
(`validate_tasks`), the files match the manifest's hashes, and no pass-1 task carries an
``output`` field or shows a candidate's answer as an assistant turn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from evalflow.lib.annotation.batch import BatchManifest, verify_batch
from evalflow.lib.annotation.task_validation import validate_tasks
from evalflow.lib.common.settings import text_setting

KNOWN_ANSWERS_ENV = "EVALFLOW_KNOWN_ANSWERS"


def known_answers_path(configured: str = "") -> str | None:
    """The known-answer file: the asset's config, else $EVALFLOW_KNOWN_ANSWERS, else None (the
    bundled demo cases)."""
    return configured or text_setting(KNOWN_ANSWERS_ENV)


def check_batch(batch_dir: Path, candidates: Sequence[dict]) -> list[str]:
    """Problems found in a written batch (empty: importable and leak-free). Messages name files,
    tasks and fields, never their text."""
    manifest = BatchManifest.load(batch_dir)
    problems = [f"hash mismatch: {name}" for name in verify_batch(manifest)]
    for pass_no in (1, 2):
        config = (batch_dir / f"pass{pass_no}_config.xml").read_text(encoding="utf-8")
        tasks = json.loads((batch_dir / f"pass{pass_no}_tasks.json").read_text(encoding="utf-8"))
        problems += [f"pass {pass_no}: {p}" for p in validate_tasks(config, tasks)]
        if pass_no == 1:
            problems += _answers_shown(tasks, candidates, manifest)
    return problems


def _answers_shown(tasks: list[dict], candidates: Sequence[dict], manifest: BatchManifest) -> list[str]:
    """Pass-1 tasks that show their own trace's answer: more assistant turns equal to it than the
    conversation had before the question (a canned reply can legitimately appear earlier in the
    history; the answer under review comes after the question and must not)."""
    trace_of = {item["item_id"]: item.get("trace_id") for item in manifest.data.get("items", [])}
    by_trace = {c["trace_id"]: c for c in candidates}
    problems = []
    for index, task in enumerate(tasks):
        data = task.get("data", {})
        if "output" in data:
            problems.append(f"pass 1 task {index}: has an output field")
        candidate = by_trace.get(trace_of.get(data.get("item_id")))
        answer = str((candidate or {}).get("output") or "").strip()
        if not answer:
            continue
        shown = sum(1 for turn in data.get("history") or [] if isinstance(turn, dict)
                    and turn.get("role") == "assistant" and str(turn.get("content", "")).strip() == answer)
        if shown > _answers_before_question(candidate.get("messages") or [], answer):
            problems.append(f"pass 1 task {index}: an assistant turn shows the answer under review")
    return problems


def _answers_before_question(messages: list, answer: str) -> int:
    last_user = max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"), default=-1)
    return sum(1 for m in messages[:last_user] if isinstance(m, dict) and m.get("role") == "assistant"
               and str(m.get("content", "")).strip() == answer)
