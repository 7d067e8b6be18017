"""LangSmith run payloads -> canonical traces.

The SDKs send a run twice: ``post`` when it starts (inputs, start_time) and ``patch`` when it
ends (outputs, end_time, error). A document is the batch body ``{"post": [...], "patch": [...]}``,
a list of runs, or one run (``{"id", "run_type", ...}``, as the read API returns them, possibly
with nested ``child_runs``). Runs are merged by id, grouped by trace, and each trace is folded
from its root: the last LLM run gives messages (its input: what the model saw; its answer is
``output`` only, as in every dialect), the LLM runs model/usage, tool runs tool_calls,
retriever runs retrieved_context, and any run's ``error`` marks the trace as failed.
"""

from __future__ import annotations

import re
from typing import Any

from evalflow.lib.ingest.canonical import (
    last_user_query,
    new_trace,
    stable_hash,
    system_prompt,
    tool_schema_hash,
)
from evalflow.lib.ingest.dialects import Dialect
from evalflow.lib.ingest.dialects.messages import (
    normalize_messages,
    normalize_output,
    parse_json_maybe,
    to_text,
    tool_calls_from_messages,
)
from evalflow.lib.ingest.dialects.spans import latency_ms

ERROR_TYPE_MAX = 200
_RUN_KEYS = ("run_type", "dotted_order", "trace_id", "parent_run_id")
# "ValueError('boom')", "openai.RateLimitError: ..." -> the exception class name.
_EXCEPTION_NAME = re.compile(
    r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Timeout)\w*)"
)


# --- detection and merging ------------------------------------------------------------------


def detect(document: Any) -> bool:
    if isinstance(document, dict) and ("post" in document or "patch" in document):
        batches = [document.get("post"), document.get("patch")]
        runs = [r for batch in batches if isinstance(batch, list) for r in batch]
        return all(isinstance(r, dict) for r in runs) and any(_is_run(r) for r in runs)
    if isinstance(document, list):
        return bool(document) and all(_is_run(r) and "id" in r for r in document)
    return _is_run(document) and "id" in document and "run_type" in document


def to_traces(document: Any) -> list[dict[str, Any]]:
    """One canonical trace per trace in the document; [] when it holds no runs."""
    if not detect(document):
        return []
    runs = merge_runs(*_batches(document))
    return [_fold(group) for group in group_runs(runs)]


def _is_run(value: Any) -> bool:
    return isinstance(value, dict) and any(key in value for key in _RUN_KEYS)


def _batches(document: Any) -> tuple[list[dict], list[dict]]:
    if isinstance(document, dict) and ("post" in document or "patch" in document):
        posts = [r for r in document.get("post") or [] if isinstance(r, dict)]
        patches = [r for r in document.get("patch") or [] if isinstance(r, dict)]
        return _with_children(posts), _with_children(patches)
    runs = document if isinstance(document, list) else [document]
    return _with_children(runs), []


def _with_children(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs plus their nested ``child_runs`` (read-API shape), flattened depth-first."""
    flat: list[dict[str, Any]] = []
    for run in runs:
        flat.append(run)
        children = run.get("child_runs")
        if isinstance(children, list):
            flat.extend(_with_children([c for c in children if isinstance(c, dict)]))
    return flat


def run_key(run: dict[str, Any]) -> str | None:
    """The run id; patches from langsmith-js carry no id, but dotted_order ends with it."""
    if run.get("id"):
        return str(run["id"])
    dotted = run.get("dotted_order")
    if isinstance(dotted, str) and "Z" in dotted:
        return dotted.rsplit(".", 1)[-1].split("Z", 1)[-1] or None
    return None


def merge_runs(posts: list[dict[str, Any]], patches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Posts updated by their patches (patch values win, but a null never erases a value)."""
    merged: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for index, run in enumerate([*posts, *patches]):
        key = run_key(run) or f"anonymous-{index}"
        if key not in merged:
            merged[key] = {}
            order.append(key)
        target = merged[key]
        for field, value in run.items():
            if (value is not None and value != {}) or field not in target:
                target[field] = value
        target.setdefault("id", key)
    return [merged[key] for key in order]


def group_runs(runs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Runs grouped by trace (trace_id, else the root reached through parent_run_id)."""
    by_id = {str(run["id"]): run for run in runs}
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        key = str(run.get("trace_id") or _root_id(run, by_id))
        groups.setdefault(key, []).append(run)
    return [sorted(group, key=_run_order) for group in groups.values()]


def _root_id(run: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> str:
    seen = set()
    while run.get("parent_run_id") and str(run["parent_run_id"]) in by_id:
        if run["id"] in seen:
            break
        seen.add(run["id"])
        run = by_id[str(run["parent_run_id"])]
    return str(run.get("parent_run_id") or run["id"])


def _run_order(run: dict[str, Any]) -> str:
    # dotted_order is "<start>Z<id>.<start>Z<id>...": sorting it gives parents before children
    # and siblings by start time, which is exactly the execution order.
    return str(run.get("dotted_order") or run.get("start_time") or "")


# --- folding --------------------------------------------------------------------------------


def _fold(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ids = {str(run["id"]) for run in runs}
    roots = [r for r in runs if not r.get("parent_run_id") or str(r["parent_run_id"]) not in ids]
    root = (roots or runs)[0]
    llm_runs = [r for r in runs if r.get("run_type") in ("llm", "chat")]
    last_llm = llm_runs[-1] if llm_runs else None
    history, answer = _llm_messages(last_llm) if last_llm else _chain_messages(root)
    tool_runs = [r for r in runs if r.get("run_type") == "tool"]
    tool_calls = [_tool_call(r) for r in tool_runs] or tool_calls_from_messages(history + answer)
    meta = _run_metadata(root)
    trace = new_trace(
        trace_id=str(root.get("trace_id") or root["id"]),
        timestamp=root.get("start_time"),
        end_time=root.get("end_time"),
        app=root.get("session_name"),
        session_id=_first(meta, ("session_id", "thread_id", "conversation_id")),
        user_id=_first(meta, ("user_id", "userId", "user")),
        model=_model(last_llm) if last_llm else None,
        messages=history,
        user_query=last_user_query(history),
        # the root's own output is what the user saw when the last LLM call only asked for a tool
        output=_output_text(answer) or _output_text(normalize_output(_outputs(root))),
        retrieved_context=[d for r in runs if r.get("run_type") == "retriever" for d in _docs(r)],
        tool_calls=tool_calls,
        latency_ms=latency_ms(root.get("start_time"), root.get("end_time")),
        input_tokens=_sum(llm_runs, "input"),
        output_tokens=_sum(llm_runs, "output"),
        cost_usd=_cost(runs),
        prompt_template_id=_prompt_template_id(runs),
        system_prompt_hash=stable_hash(system_prompt(history)),
        tool_schema_hash=tool_schema_hash(_tool_definitions(last_llm)) if last_llm else None,
    )
    _apply_error(trace, runs)
    trace["payload_kept"] = bool(
        history or tool_calls or trace["retrieved_context"] or trace["output"]
    )
    trace["metadata"] = _metadata(root, runs, last_llm)
    return trace


def _dict(value: Any) -> dict[str, Any]:
    """The value if it is a dict, else {}: run fields are often null or absent."""
    return value if isinstance(value, dict) else {}


def _run_metadata(run: dict[str, Any]) -> dict[str, Any]:
    return _dict(_dict(run.get("extra")).get("metadata"))


def _invocation_params(run: dict[str, Any]) -> dict[str, Any]:
    return _dict(_dict(run.get("extra")).get("invocation_params"))


def _first(mapping: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if mapping.get(key) not in (None, ""):
            return str(mapping[key])
    return None


def _outputs(run: dict[str, Any]) -> dict[str, Any]:
    return _dict(parse_json_maybe(run.get("outputs")))


def _inputs(run: dict[str, Any]) -> dict[str, Any]:
    return _dict(parse_json_maybe(run.get("inputs")))


def _llm_messages(run: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the call's input messages, what the model answered)."""
    inputs = _inputs(run)
    messages = normalize_messages(inputs.get("messages"))
    if not messages and isinstance(inputs.get("prompts"), list):  # completion-style LLMs
        messages = [{"role": "user", "content": to_text(p)} for p in inputs["prompts"]]
    if not messages and isinstance(inputs.get("input"), str):
        messages = [{"role": "user", "content": inputs["input"]}]
    if isinstance(inputs.get("system"), str) and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": inputs["system"]})  # Anthropic wrapper
    return messages, (normalize_output(_outputs(run)) or _streamed_output(run))


def _chain_messages(root: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Runs without an LLM child (a traced function): (its input messages, its answer)."""
    inputs, outputs = _inputs(root), _outputs(root)
    messages = normalize_messages(inputs.get("messages"))
    if not messages:
        texts = (inputs.get(k) for k in ("input", "question", "query"))
        question = next((t for t in texts if isinstance(t, str)), None)
        messages = [{"role": "user", "content": question}] if question else []
    return (messages, normalize_output(outputs)) if messages else ([], [])


def _streamed_output(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Streaming runs without an aggregated message: join the ``new_token`` event deltas."""
    pieces = []
    for event in run.get("events") or []:
        token = (event.get("kwargs") or {}).get("token") if isinstance(event, dict) else None
        if isinstance(token, str):
            pieces.append(token)
        elif isinstance(token, dict):
            for choice in token.get("choices") or []:
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                    pieces.append(delta["content"])
    text = "".join(pieces)
    return [{"role": "assistant", "content": text}] if text else []


def _output_text(messages: list[dict[str, Any]]) -> str | None:
    if messages and messages[-1].get("role") == "assistant":
        return messages[-1].get("content")
    return None


def _model(run: dict[str, Any]) -> str | None:
    """The model that answered (outputs.model) before the one requested: drift and cost
    analyses need the dated snapshot, which the request name hides. Same rule as spans.py."""
    params = _invocation_params(run)
    for value in (
        _outputs(run).get("model"),
        _outputs(run).get("model_name"),
        _run_metadata(run).get("ls_model_name"),
        params.get("model"),
        params.get("model_name"),
        _inputs(run).get("model"),
    ):
        if isinstance(value, str) and value:
            return value
    return None


def _usage(run: dict[str, Any]) -> dict[str, Any]:
    """The usage block, wherever this SDK / integration put it."""
    outputs = _outputs(run)
    llm_output = _dict(outputs.get("llm_output"))
    for usage in (
        outputs.get("usage_metadata"),
        outputs.get("usage"),
        llm_output.get("token_usage"),
        llm_output.get("usage"),
        _run_metadata(run).get("usage_metadata"),
    ):
        if isinstance(usage, dict) and usage:
            return usage
    return {k: run[k] for k in ("prompt_tokens", "completion_tokens") if run.get(k) is not None}


def _sum(runs: list[dict[str, Any]], side: str) -> int | None:
    """Summed input or output tokens; None when no run reports usage (unknown, not zero)."""
    if side == "input":
        keys = ("input_tokens", "prompt_tokens")
    else:
        keys = ("output_tokens", "completion_tokens")
    values = []
    for run in runs:
        usage = _usage(run)
        value = next((usage[k] for k in keys if isinstance(usage.get(k), (int, float))), None)
        if value is not None and not isinstance(value, bool):
            values.append(int(value))
    return sum(values) if values else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cost(runs: list[dict[str, Any]]) -> float | None:
    costs = [r.get("total_cost") for r in runs if r.get("run_type") in ("llm", "chat")]
    numbers = []
    for cost in costs:
        try:
            numbers.append(float(cost))
        except (TypeError, ValueError):
            continue
    return sum(numbers) if numbers else None


def _tool_call(run: dict[str, Any]) -> dict[str, Any]:
    inputs, outputs = _inputs(run), _outputs(run)
    # The SDK wraps a tool's single string argument as {"input": ...} and its return value as
    # {"output": ...}; unwrap those so arguments/results look like other dialects'.
    arguments: Any = inputs["input"] if set(inputs) == {"input"} else (inputs or None)
    result: Any = outputs["output"] if set(outputs) == {"output"} else (outputs or None)
    return {
        "name": run.get("name"),
        "arguments": parse_json_maybe(arguments),
        "result": parse_json_maybe(result),
    }


def _docs(run: dict[str, Any]) -> list[dict[str, Any]]:
    docs = _outputs(run).get("documents")
    out = []
    for doc in docs if isinstance(docs, list) else []:
        if not isinstance(doc, dict):
            continue
        meta = _dict(doc.get("metadata"))
        doc_id = doc.get("id") or meta.get("id") or meta.get("doc_id") or meta.get("source")
        score = meta.get("score", meta.get("relevance_score", doc.get("score")))
        out.append(
            {
                "doc_id": None if doc_id is None else str(doc_id),
                "text": to_text(doc.get("page_content", doc.get("content"))),
                "score": score if _is_number(score) else None,
            }
        )
    return out


def _prompt_template_id(runs: list[dict[str, Any]]) -> str | None:
    """LangChain Hub commit, else a hash of the first prompt run's template."""
    for run in runs:
        meta = _run_metadata(run)
        if meta.get("lc_hub_commit_hash"):
            commit, repo = str(meta["lc_hub_commit_hash"]), meta.get("lc_hub_repo")
            return f"{repo}:{commit}" if repo else commit
    for run in runs:
        if run.get("run_type") == "prompt":
            kwargs = _dict(_dict(run.get("serialized")).get("kwargs"))
            template = kwargs.get("template") or kwargs.get("messages")
            if template:
                return stable_hash(template)
    return None


def _tool_definitions(run: dict[str, Any]) -> Any:
    params = _invocation_params(run)
    return _inputs(run).get("tools") or params.get("tools") or params.get("functions")


def _apply_error(trace: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    errors = [r["error"] for r in runs if r.get("error")]
    if not errors:
        return
    trace["status"] = "error"
    trace["error_type"] = error_type(errors[0])


def error_type(error: Any) -> str:
    """LangSmith stores the exception as text: keep its class name, else its first line."""
    text = to_text(error) or ""
    match = _EXCEPTION_NAME.match(text)
    if match:
        return match.group(1)[:ERROR_TYPE_MAX]
    lines = text.strip().splitlines()
    return lines[0][:ERROR_TYPE_MAX] if lines else "error"


def _metadata(
    root: dict[str, Any], runs: list[dict[str, Any]], last_llm: dict[str, Any] | None
) -> dict[str, Any]:
    runtime = _dict(_dict(root.get("extra")).get("runtime"))
    meta = _run_metadata(last_llm or root)
    requested = meta.get("ls_model_name") or (_inputs(last_llm).get("model") if last_llm else None)
    metadata: dict[str, Any] = {
        "dialect": "langsmith",
        "run_count": len(runs),
        "root_run_name": root.get("name"),
        "root_run_type": root.get("run_type"),
    }
    optional = {
        "project": root.get("session_name"),
        "sdk": runtime.get("sdk"),
        "provider": meta.get("ls_provider"),
        "request_model": requested,
        "tags": root.get("tags"),
        "tool_definitions": _tool_definitions(last_llm) if last_llm else None,
    }
    metadata.update({k: v for k, v in optional.items() if v not in (None, "", [], {})})
    return metadata


DIALECT = Dialect("langsmith", detect, to_traces=to_traces)
