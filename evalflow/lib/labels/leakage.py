"""Label leakage: gold answers anchored on the model's answer.

Pass 1 asks for a gold answer before the annotator sees any model output; a gold answer worded
like the output that pass 2 shows was most likely written with the output in view (pass 2 done
first, a shared spreadsheet), and then measures the model against itself. Such an answer is
flagged `anchored`.

Similarity: the share of the gold answer's own wording that is the output's wording. Text is
tokenised into words (case-folded; redaction placeholders such as <PERSON_1f0c9a3e> are one
token each, so a copied placeholder counts like a copied word) and cut into word 3-grams.
The 3-grams that also occur in what pass 1 showed (question, conversation, documents, tool
calls) are set aside: an annotator may quote a retrieved document, and a model that quoted the
same document must not make that look like copying. Of the remaining 3-grams of the answer,
similarity = the share that occurs in the output. Answers with no 3-gram of their own score 0.

Threshold (EVALFLOW_ANCHORED_SIMILARITY, default 0.5), measured on the known-answer cases ka-001
and ka-002 (see the tests):
  the output copied verbatim        1.00, 1.00
  the output lightly edited         0.64, 0.67  (one clause reworded, a name dropped)
  a paraphrase of the same facts    0.09, 0.00
  sentences from the documents      0.00, 0.00
0.5 sits between the edited copies and the paraphrases with room on both sides. Besides, at
least MIN_SHARED_NGRAMS (3) of the answer's own 3-grams must be found in the output (a five-word
run), so a two-line answer that shares one stock phrase ("I can help") is not flagged.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Mapping

import polars as pl

from evalflow.lib.common.settings import float_setting

THRESHOLD_ENV = "EVALFLOW_ANCHORED_SIMILARITY"
DEFAULT_THRESHOLD = 0.5
MIN_SHARED_NGRAMS = 3
NGRAM = 3
_TOKEN = re.compile(r"<[A-Z][A-Z0-9_]*_[0-9a-f]{4,}>|\w+(?:[.,']\w+)*")
ANCHORED_SCHEMA = {"batch_id": pl.String, "item_id": pl.String, "annotator": pl.String, "similarity": pl.Float64}


def anchored_threshold() -> float:
    return float_setting(THRESHOLD_ENV, DEFAULT_THRESHOLD, low=0.0, high=1.0)


def _tokens(text: str) -> list[str]:
    text = text.replace("\u2019", "'")
    return [t if t.startswith("<") else t.casefold() for t in _TOKEN.findall(text)]


def _ngrams(text: str) -> set[tuple[str, ...]]:
    words = _tokens(text)
    return {tuple(words[i:i + NGRAM]) for i in range(len(words) - NGRAM + 1)}


def _overlap(answer: str, output: str, shown_input: str) -> tuple[float, int]:
    own = _ngrams(answer) - _ngrams(shown_input)
    if not own:
        return 0.0, 0
    shared = len(own & _ngrams(output))
    return shared / len(own), shared


def anchoring_similarity(answer: str, output: str, shown_input: str = "") -> float:
    """Share of the answer's word 3-grams not found in `shown_input` that occur in `output`."""
    return _overlap(answer, output, shown_input)[0]


def shown_input(data: dict) -> str:
    """What pass 1 showed of a task (everything of the pass-2 data but the output)."""
    history = data.get("history") or []
    turns = [t.get("content") or "" for t in history if isinstance(t, dict)]
    return "\n".join([*turns, *(str(data.get(k) or "") for k in ("query", "context", "tool_calls"))])


def load_pass2_tasks(batch_dir: str | Path) -> dict[str, dict]:
    """item_id -> pass-2 task data of a batch folder."""
    tasks = json.loads((Path(batch_dir) / "pass2_tasks.json").read_text(encoding="utf-8"))
    return {task["data"]["item_id"]: task["data"] for task in tasks}


def anchored(gold_answers: pl.DataFrame, pass2_tasks: Mapping[str, dict],
             threshold: float | None = None) -> pl.DataFrame:
    """Gold answers anchored on the output: batch_id, item_id, annotator, similarity.

    `gold_answers`: labels rows (batch_id, item_id, annotator, value; when the frame has `field`
    and `pass` columns, only pass-1 'gold_answer' rows are read). `pass2_tasks`: item_id -> the
    pass-2 task data (load_pass2_tasks); items not in it are skipped."""
    limit = anchored_threshold() if threshold is None else threshold
    frame = gold_answers
    if "field" in frame.columns:
        frame = frame.filter(pl.col("field") == "gold_answer")
    if "pass" in frame.columns:
        frame = frame.filter(pl.col("pass") == 1)
    rows = []
    for batch_id, item_id, annotator, value in frame.select("batch_id", "item_id", "annotator", "value").iter_rows():
        data = pass2_tasks.get(item_id)
        if data is None or not value:
            continue
        similarity, shared = _overlap(value, str(data.get("output") or ""), shown_input(data))
        if shared >= MIN_SHARED_NGRAMS and similarity >= limit:
            rows.append({"batch_id": batch_id, "item_id": item_id, "annotator": annotator,
                         "similarity": round(similarity, 6)})
    return pl.DataFrame(rows, schema=ANCHORED_SCHEMA).sort("batch_id", "item_id", "annotator")
