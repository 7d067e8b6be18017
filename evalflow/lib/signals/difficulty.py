"""Difficulty: how hard a trace is likely to be for the assistant, on 0..1.

    difficulty = 0.3 x turns + 0.3 x context + 0.2 x tools + 0.2 x rarity     (weights configurable)

- turns = min(user turns - 1, 3) / 3: a fourth turn is as hard as it gets (history to track).
- context = log(tokens / 256) / log(32768 / 256), clipped to 0..1: the prompt size (input
  tokens, or characters / 4 of messages, context and tool calls when no count was exported),
  on a log scale from a short prompt (256 tokens) to a stuffed one (32k).
- tools = min(tool calls, 3) / 3.
- rarity = log10(0.10 / share) / 2, clipped to 0..1, where share is the intent's share of the
  traces given (the window): an intent with 10% of traffic or more scores 0, one at 0.1% or
  less scores 1. A trace with no intent scores 1: nothing it resembles is common.

Buckets: "easy" up to the first tertile of the window's difficulty, "medium" up to the second,
"hard" above, so each stratum of the sampler is populated whatever the traffic looks like;
ties fall to the lower bucket. `SignalConfig.difficulty_cuts` sets fixed cut points instead,
for buckets comparable across windows.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any, Sequence

import numpy as np

from evalflow.lib.signals.text import content_text, contexts, messages_of, tool_calls, user_turns


def recorded_prompt_tokens(trace: dict[str, Any]) -> int | None:
    """Characters / 4 of the prompt the trace records (messages, retrieved context, tool calls);
    None for a metadata-only trace."""
    if trace.get("payload_kept") is False:
        return None
    chars = sum(len(content_text(m.get("content"))) for m in messages_of(trace))
    chars += sum(len(str(d.get("text") or "")) for d in contexts(trace))
    chars += sum(len(json.dumps(c, ensure_ascii=False, default=str)) for c in tool_calls(trace))
    if not chars and isinstance(trace.get("user_query"), str):
        chars = len(trace["user_query"])
    return chars // 4 if chars else None


def context_tokens(trace: dict[str, Any]) -> int:
    tokens = trace.get("input_tokens")
    if isinstance(tokens, (int, float)) and not isinstance(tokens, bool) and tokens > 0:
        return int(tokens)
    return recorded_prompt_tokens(trace) or 0


def turn_count(trace: dict[str, Any]) -> int:
    turns = len(user_turns(trace))
    if turns:
        return turns
    metadata = trace.get("metadata")
    turn = metadata.get("turn") if isinstance(metadata, dict) else None
    return int(turn) if isinstance(turn, int) and turn > 0 else 1


def intent_shares(intent_ids: Sequence[str | None]) -> dict[str, float]:
    counts = Counter(i for i in intent_ids if i is not None)
    total = len(intent_ids) or 1
    return {intent: n / total for intent, n in counts.items()}


def rarity(share: float | None) -> float:
    if share is None or share <= 0:
        return 1.0
    return min(1.0, max(0.0, math.log10(0.10 / share) / 2))


def difficulty_scores(traces: Sequence[dict[str, Any]], intent_ids: Sequence[str | None], *,
                      weights: tuple[float, float, float, float], tokens_easy: int,
                      tokens_hard: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    shares = intent_shares(intent_ids)
    turns = np.array([turn_count(t) for t in traces], dtype=float)
    ctx = np.array([context_tokens(t) for t in traces], dtype=float)
    tools = np.array([len(tool_calls(t)) for t in traces], dtype=float)
    rare = np.array([rarity(shares.get(i) if i is not None else None) for i in intent_ids], dtype=float)
    parts = {
        "turns": np.minimum(np.maximum(turns - 1, 0), 3) / 3,
        "context": np.clip(np.log(np.maximum(ctx, 1) / tokens_easy) / math.log(tokens_hard / tokens_easy), 0, 1),
        "tools": np.minimum(tools, 3) / 3,
        "rarity": rare,
    }
    w_turns, w_ctx, w_tools, w_rare = weights
    total = w_turns + w_ctx + w_tools + w_rare
    score = (w_turns * parts["turns"] + w_ctx * parts["context"] + w_tools * parts["tools"]
             + w_rare * parts["rarity"]) / total
    features = {"turns": turns.astype(int), "context_tokens": ctx.astype(int), "tool_calls": tools.astype(int),
                "intent_share": np.array([shares.get(i, 0.0) if i is not None else np.nan for i in intent_ids])}
    return score, features


def difficulty_buckets(scores: np.ndarray, cuts: tuple[float, float] | None) -> list[str]:
    if len(scores) == 0:
        return []
    low, high = cuts if cuts is not None else tuple(np.quantile(scores, [1 / 3, 2 / 3]))
    return ["easy" if s <= low else "medium" if s <= high else "hard" for s in scores]
