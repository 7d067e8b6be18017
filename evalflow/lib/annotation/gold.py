"""Known-answer gold cases: loading them, how many go into a batch, and where.

A known answer is a hand-written case with an answer key (known_answers.jsonl beside this
module; one JSON object per line):
  case_id            stable id, never shown to annotators
  input              {user_query, messages?, retrieved_context?, tool_calls?}, written like a
                     redacted production trace (placeholders such as <PERSON_1f0c9a3e>)
  expected_behavior  plain-language rules a correct answer follows
  key_facts          facts a correct pass-1 gold answer must contain; each entry a string or a
                     list of acceptable spellings (any one of them counts)
  output             a model answer to judge in pass 2
  verdicts           its known Pass/Fail per scoring dimension (only clear-cut dimensions)

How many: a batch of n real candidates gets g = ceil(n * r / (1 - r)) gold cases for a gold
rate r, so gold is at least a share r of the n + g tasks annotators see (r = 0.10: 200
candidates -> 23 gold, 10.3%), and a batch with any candidate and r > 0 gets at least one.
If fewer known answers exist than g, all of them are used (a case is never repeated within a
batch: an annotator would notice) and the manifest records the shortfall.

Which and where (deterministic for batch id and seed): the cases are drawn at random, so
successive batches rotate through the pool. The n + g positions are cut into g equal segments
and one gold case goes at a random position inside each segment, so gold is spread over the
whole batch (accuracy by position, i.e. fatigue, is measurable from start to end); the real
candidates are shuffled into the other positions, so no ordering of the sample (by stratum,
by intent) makes a gold case stand out.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

from evalflow.lib.annotation.labelstudio import VERDICTS

DEFAULT_KNOWN_ANSWERS = Path(__file__).with_name("known_answers.jsonl")
_REQUIRED = ("case_id", "input", "expected_behavior", "key_facts", "output", "verdicts")


def _check_case(case: Any, where: str) -> None:
    if not isinstance(case, dict):
        raise ValueError(f"{where}: a known answer must be a JSON object")
    missing = [key for key in _REQUIRED if key not in case]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    if not isinstance(case["input"], dict) or not case["input"].get("user_query"):
        raise ValueError(f"{where}: input needs a user_query")
    if not case["key_facts"] or not all(isinstance(f, (str, list)) and f for f in case["key_facts"]):
        raise ValueError(f"{where}: key_facts must be a non-empty list of strings or lists")
    bad = {dim: v for dim, v in case["verdicts"].items() if v not in VERDICTS}
    if not case["verdicts"] or bad:
        raise ValueError(f"{where}: verdicts must map dimensions to Pass/Fail, got {bad or 'none'}")


def load_known_answers(path: str | Path | None = None) -> list[dict]:
    """The known-answer cases, checked; `path` defaults to the project's own file."""
    source = Path(path) if path is not None else DEFAULT_KNOWN_ANSWERS
    cases: list[dict] = []
    seen: set[str] = set()
    with source.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{source.name}:{line_no}"
            try:
                case = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{where}: not JSON ({exc})") from exc
            _check_case(case, where)
            if case["case_id"] in seen:
                raise ValueError(f"{where}: duplicate case_id {case['case_id']!r}")
            seen.add(case["case_id"])
            cases.append(case)
    return cases


def gold_count(n_candidates: int, gold_rate: float) -> int:
    if not 0.0 <= gold_rate < 1.0:
        raise ValueError(f"gold_rate must be in [0, 1), got {gold_rate}")
    if n_candidates <= 0 or gold_rate == 0.0:
        return 0
    # Rounded first so float noise (9 * 0.1 / 0.9 = 1.0000000000000002) cannot add a case.
    return math.ceil(round(n_candidates * gold_rate / (1.0 - gold_rate), 9))


def gold_positions(n_tasks: int, n_gold: int, rng: random.Random) -> list[int]:
    """One position per equal segment of the batch, at random inside its segment."""
    return [rng.randrange(i * n_tasks // n_gold, (i + 1) * n_tasks // n_gold) for i in range(n_gold)]


def gold_candidate(case: dict) -> dict:
    """A known answer in the shape of a redacted trace, so it renders like one."""
    source = case["input"]
    return {
        "messages": source.get("messages", []),
        "user_query": source["user_query"],
        "retrieved_context": source.get("retrieved_context", []),
        "tool_calls": source.get("tool_calls", []),
        "output": case["output"],
    }


def answer_key(case: dict) -> dict:
    """What the manifest keeps about a gold case so annotations can be scored later."""
    return {
        "case_id": case["case_id"],
        "key_facts": case["key_facts"],
        "expected_behavior": case["expected_behavior"],
        "known_verdicts": case["verdicts"],
    }
