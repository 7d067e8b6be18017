"""Turn a redacted trace into the data of a pass-1 task and of a pass-2 task.

Rules:
- Pass 1 shows only what the model saw as input: earlier turns of the conversation, the
  customer's question, the retrieved documents and the tool calls with their results. The
  model's answer is never copied into it: not the `output` field, and not a trailing assistant
  message equal to the output (some dialects fold the answer into `messages`). Where the input
  itself quotes the same words (the model repeated a retrieved document verbatim), that is input
  the model saw and stays visible.
- System messages are not shown: every trace of a prompt version carries the same one, and the
  labelling instructions state the policy annotators judge against.
- The final user message is the question, shown on its own; `history` holds the turns before it
  and is never empty (Label Studio's Paragraphs tag needs items), so a single-turn trace gets one
  explanatory line.
- Every task has the same keys whatever its origin (a production trace or a known-answer gold
  case), and no key names the origin: `item_id` is an opaque hash, and trace ids, intents,
  strata and failure modes stay in the manifest, away from annotators.
- Values are plain strings, except `history` (a list of {role, content} string pairs).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

PASS1_FIELDS = ("item_id", "history", "query", "context", "tool_calls")
PASS2_FIELDS = PASS1_FIELDS + ("output",)

NO_EARLIER_TURNS = {"role": "note", "content": "(no earlier turns: this is the first message)"}
NO_CONTEXT = "(no documents were retrieved)"
NO_TOOL_CALLS = "(no tools were called)"
NO_OUTPUT = "(the assistant returned no answer: the request failed)"


def item_id_for(batch_id: str, source_id: str) -> str:
    """An id that joins annotations back to the manifest without telling gold from real."""
    return hashlib.sha256(f"{batch_id}\x1f{source_id}".encode()).hexdigest()[:16]


def _as_list(value: Any) -> list:
    # Warehouse JSON columns arrive as strings; in-memory traces as lists.
    if value is None:
        return []
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _turns(candidate: dict) -> tuple[list[dict], str]:
    """(earlier turns, final question) with system messages and the answer removed."""
    turns = [
        {"role": _text(m.get("role")) or "unknown", "content": _text(m.get("content"))}
        for m in _as_list(candidate.get("messages"))
        if isinstance(m, dict) and m.get("role") != "system"
    ]
    output = _text(candidate.get("output")).strip()
    while turns and turns[-1]["role"] == "assistant" and output and turns[-1]["content"].strip() == output:
        turns.pop()
    query = _text(candidate.get("user_query"))
    if turns and turns[-1]["role"] == "user" and (not query or turns[-1]["content"] == query):
        query = query or turns[-1]["content"]
        turns.pop()
    return turns, query


def render_history_text(history: list[dict]) -> str:
    """The conversation as plain lines, for CSV cells."""
    return "\n".join(f"{turn['role']}: {turn['content']}" for turn in history)


def render_context(candidate: dict) -> str:
    docs = [d for d in _as_list(candidate.get("retrieved_context")) if isinstance(d, dict)]
    if not docs:
        return NO_CONTEXT
    blocks = []
    for doc in docs:
        score = doc.get("score")
        score_note = f" (retrieval score {float(score):.2f})" if isinstance(score, (int, float)) else ""
        blocks.append(f"[{_text(doc.get('doc_id')) or 'document'}]{score_note}\n{_text(doc.get('text'))}")
    return "\n\n".join(blocks)


def render_tool_calls(candidate: dict) -> str:
    calls = [c for c in _as_list(candidate.get("tool_calls")) if isinstance(c, dict)]
    if not calls:
        return NO_TOOL_CALLS
    blocks = []
    for call in calls:
        arguments = call.get("arguments")
        if isinstance(arguments, str):  # some dialects keep arguments as a JSON string
            try:
                arguments = json.loads(arguments)
            except ValueError:
                pass
        blocks.append(
            f"{_text(call.get('name')) or 'tool'}({json.dumps(arguments, ensure_ascii=False)})\n"
            f"-> {json.dumps(call.get('result'), ensure_ascii=False)}"
        )
    return "\n\n".join(blocks)


def pass1_data(candidate: dict, item_id: str) -> dict:
    turns, query = _turns(candidate)
    return {
        "item_id": item_id,
        "history": turns or [dict(NO_EARLIER_TURNS)],
        "query": query,
        "context": render_context(candidate),
        "tool_calls": render_tool_calls(candidate),
    }


def pass2_data(candidate: dict, item_id: str) -> dict:
    data = pass1_data(candidate, item_id)
    data["output"] = _text(candidate.get("output")) or NO_OUTPUT
    return data
