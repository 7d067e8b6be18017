"""Planted failures: per-trace fault codes and the malformed lines of the landing files.

Fault codes are the ground-truth labels a failure detector is scored against. Attack intents
carry their attack code whatever the outcome; a correct refusal of an attack is not a
"refusal" fault (that code means refusing a legitimate request).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from evalflow.lib.ingest import reasons

ERROR = "error"  # status "error", error_type set, no output
REFUSAL = "refusal"  # a legitimate request refused
NEGATIVE_FEEDBACK = "negative_feedback"  # thumbs down, score 0.0
CONTRADICTS_CONTEXT = "contradicts_context"  # the answer states the opposite of the retrieved doc
VERBOSE_ANSWER = "verbose_answer"  # runaway padding, thousands of output tokens
TOOL_ERROR = "tool_error"  # a tool returned an error; status stays "ok"
LATENCY_OUTLIER = "latency_outlier"
COST_OUTLIER = "cost_outlier"  # context stuffing: tens of thousands of input tokens
PROMPT_INJECTION = "prompt_injection"  # an injection attempt (refused or not)
INJECTION_SUCCEEDED = "injection_succeeded"  # ...that made the assistant leak its instructions
POLICY_VIOLATION = "policy_violation"  # a request for fraud / other customers' data
POLICY_COMPLIED = "policy_complied"  # ...that the assistant went along with
TOXIC_REQUEST = "toxic_request"  # an abusive customer turn, in this turn or earlier in the session
TOXIC_ANSWER = "toxic_answer"  # the assistant answered an abusive customer in kind

FAULT_CODES = (
    ERROR, REFUSAL, NEGATIVE_FEEDBACK, CONTRADICTS_CONTEXT, VERBOSE_ANSWER, TOOL_ERROR,
    LATENCY_OUTLIER, COST_OUTLIER, PROMPT_INJECTION, INJECTION_SUCCEEDED, POLICY_VIOLATION,
    POLICY_COMPLIED, TOXIC_REQUEST, TOXIC_ANSWER,
)
_ORDER = {code: i for i, code in enumerate(FAULT_CODES)}

# Per-trace probabilities. support-v4 asks for short answers but its larger model rambles more:
# the verbose rate rises after the prompt change, a regression the drift report should show.
RATES = {
    ERROR: 0.03,
    REFUSAL: 0.015,
    CONTRADICTS_CONTEXT: 0.025,
    VERBOSE_ANSWER: 0.01,
    "verbose_answer_v4": 0.04,
    TOOL_ERROR: 0.015,
    LATENCY_OUTLIER: 0.01,
    COST_OUTLIER: 0.006,
    INJECTION_SUCCEEDED: 0.12,
    POLICY_COMPLIED: 0.08,
    # Abuse is drawn from its own random stream (core.Simulator.toxic_rng), so adding it left
    # every other trace as it was: per turn of a banking session, an abusive customer line; per
    # ordinary answer to an abusive session, an abusive answer.
    TOXIC_REQUEST: 0.01,
    TOXIC_ANSWER: 0.1,
}


def sorted_faults(codes: set[str]) -> list[str]:
    return sorted(codes, key=_ORDER.__getitem__)


def draw_faults(rng: random.Random, *, attack: str | None, prompt_version: str,
                has_kb: bool, has_tools: bool) -> set[str]:
    """The output-shaping faults of one turn (feedback is drawn later, from the outcome)."""
    faults: set[str] = set()
    if rng.random() < RATES[LATENCY_OUTLIER]:
        faults.add(LATENCY_OUTLIER)
    if rng.random() < RATES[COST_OUTLIER]:
        faults.add(COST_OUTLIER)
    if attack:
        faults.add(attack)
        if attack == PROMPT_INJECTION and rng.random() < RATES[INJECTION_SUCCEEDED]:
            faults.add(INJECTION_SUCCEEDED)
        if attack == POLICY_VIOLATION and rng.random() < RATES[POLICY_COMPLIED]:
            faults.add(POLICY_COMPLIED)
        return faults
    if rng.random() < RATES[ERROR]:
        faults.add(ERROR)
        return faults
    r = rng.random()
    verbose = RATES["verbose_answer_v4"] if prompt_version == "support-v4" else RATES[VERBOSE_ANSWER]
    if r < RATES[REFUSAL]:
        faults.add(REFUSAL)
    elif has_tools and r < RATES[REFUSAL] + RATES[TOOL_ERROR]:
        faults.add(TOOL_ERROR)
    elif has_kb and r < RATES[REFUSAL] + RATES[TOOL_ERROR] + RATES[CONTRADICTS_CONTEXT]:
        faults.add(CONTRADICTS_CONTEXT)
    if REFUSAL not in faults and TOOL_ERROR not in faults and rng.random() < verbose:
        faults.add(VERBOSE_ANSWER)
    return faults


def draw_feedback(rng: random.Random, faults: set[str], comments: tuple, praise: tuple) -> dict | None:
    """Users rate rarely, and mostly when something went wrong."""
    if ERROR in faults:
        return None
    p_down = 0.02
    for code, p in ((REFUSAL, 0.4), (CONTRADICTS_CONTEXT, 0.35), (VERBOSE_ANSWER, 0.3),
                    (TOOL_ERROR, 0.25), (LATENCY_OUTLIER, 0.15)):
        if code in faults:
            p_down = max(p_down, p)
    r = rng.random()
    if r < p_down:
        faults.add(NEGATIVE_FEEDBACK)
        return {"thumbs": "down", "score": 0.0, "comment": rng.choice(comments)}
    if r < p_down + 0.06:
        return {"thumbs": "up", "score": 1.0, "comment": rng.choice(praise)}
    return None


# --- malformed lines -----------------------------------------------------------------------

MALFORMED_KINDS = (
    ("truncated_json", reasons.TRUNCATED_JSON),
    ("not_json", reasons.INVALID_JSON),
    ("nul_byte", reasons.NUL_BYTE),
    ("missing_trace_id", reasons.MISSING_TRACE_ID),
    ("missing_timestamp", reasons.MISSING_TIMESTAMP),
    ("wrong_type", reasons.WRONG_TYPE),
    ("exact_duplicate", reasons.DUPLICATE),
    ("conflicting_duplicate", reasons.CONFLICT),
    ("timestamp_before_2000", reasons.TIMESTAMP_BEFORE_2000),
    ("end_before_start", reasons.END_BEFORE_START),
)


@dataclass
class Planted:
    kind: str
    reason: str
    text: str  # the line, without its newline
    after: int  # insert after this many existing lines of the file
    trace_id: str | None
    note: str


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def make_malformed(kind: str, rng: random.Random, lines: list[str],
                   fresh: dict[str, Any], taken: set[int]) -> Planted:
    """One bad line for a canonical file holding `lines`.

    `fresh` is a valid canonical trace that is not written anywhere else (its trace id is new),
    so the broken copies of it cannot collide with real traces; duplicates copy a real line,
    never one that another planted duplicate already copied (`taken`), so each bad line has
    exactly one reading.
    """
    reason = dict(MALFORMED_KINDS)[kind]
    position = rng.randint(0, len(lines))
    tid = fresh["trace_id"]
    if kind == "truncated_json":
        full = _dump(fresh)
        cut = rng.randint(len(full) // 3, 2 * len(full) // 3)
        return Planted(kind, reason, full[:cut], position, tid, "line cut mid-record (torn write)")
    if kind == "not_json":
        # Starts with a letter: a line starting with a digit would begin like a JSON number.
        text = "WARNING 2026-10-03 04:12:55,118 exporter: retry queue full, dropping 12 spans"
        return Planted(kind, reason, text, position, None, "a log line in the export")
    if kind == "nul_byte":
        full = _dump(fresh)
        cut = len(full) // 2
        return Planted(kind, reason, full[:cut] + "\x00\x00" + full[cut:], position, tid,
                       "NUL bytes inside the record")
    if kind == "missing_trace_id":
        broken = dict(fresh)
        del broken["trace_id"]
        return Planted(kind, reason, _dump(broken), position, None, "no trace_id key")
    if kind == "missing_timestamp":
        broken = dict(fresh)
        del broken["timestamp"]
        del broken["end_time"]
        return Planted(kind, reason, _dump(broken), position, tid, "no timestamp or end_time")
    if kind == "wrong_type":
        broken = dict(fresh)
        broken["input_tokens"] = "ten"
        return Planted(kind, reason, _dump(broken), position, tid, 'input_tokens is "ten"')
    if kind == "timestamp_before_2000":
        broken = dict(fresh)
        broken["timestamp"] = "1970-01-01T00:00:00+00:00"
        broken["end_time"] = "1970-01-01T00:00:01.250+00:00"
        return Planted(kind, reason, _dump(broken), position, tid, "epoch-zero timestamp")
    if kind == "end_before_start":
        broken = dict(fresh)
        broken["end_time"], broken["timestamp"] = broken["timestamp"], broken["end_time"]
        return Planted(kind, reason, _dump(broken), position, tid,
                       "timestamp and end_time swapped")
    # Duplicates need an earlier line of the same file to copy.
    free = [i for i in range(len(lines)) if i not in taken]
    source_index = rng.choice(free)
    taken.add(source_index)
    source = lines[source_index]
    after = rng.randint(source_index + 1, len(lines))
    original = json.loads(source)
    if kind == "exact_duplicate":
        return Planted(kind, reason, source, after, original["trace_id"],
                       "byte-identical copy of an earlier line (original_line)")
    conflicting = dict(original)
    conflicting["output"] = "Sorry, something went wrong on my side. (retried response)"
    conflicting["latency_ms"] = round((original.get("latency_ms") or 0) + 4321.0, 1)
    return Planted(kind, reason, _dump(conflicting), after, original["trace_id"],
                   "same trace_id as an earlier line (original_line), different output and latency")
