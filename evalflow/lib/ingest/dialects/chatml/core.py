"""Entry points: pick an adapter, let it rewrite the payload, validate the result.

Upstream: ``packages/shared/src/utils/chatml/core.ts``. `chatml_input_messages` and
`chatml_output_messages` are its ``normalizeInput`` and ``normalizeOutput``; `map_to_chatml` and
`map_output_to_chatml` are ``mapToChatMl`` and ``mapOutputToChatMl``.
"""

from __future__ import annotations

from typing import Any

from evalflow.lib.ingest.dialects.chatml.adapters import select_adapter
from evalflow.lib.ingest.dialects.chatml.schema import validate_array
from evalflow.lib.ingest.dialects.chatml.types import NormalizerContext


def map_to_chatml(value: Any) -> list[dict[str, Any]] | None:
    """Input side: a list of messages, ``[[...]]``, ``{messages: [...]}`` or one message."""
    result = validate_array(value)
    if result is not None:
        return result
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        return validate_array(value[0])
    if isinstance(value, dict) and "messages" in value:
        result = validate_array(value["messages"])
        if result is not None:
            # Langfuse validates the already-validated messages a second time here, which
            # nests each message's extras one level deeper (json -> {"json": {...}}).
            return validate_array(result)
    # The normaliser our fixtures record takes no bare single message on the input side
    # (newer Langfuse versions do); callers fall back to their own reading of such payloads.
    return None


def map_output_to_chatml(value: Any) -> list[dict[str, Any]] | None:
    """Output side: ``{messages: [...]}`` (LangGraph state) or any message(s)."""
    if isinstance(value, dict) and "messages" in value:
        return validate_array(value["messages"])
    return validate_array(value if isinstance(value, list) else [value])


def _context(data: Any, metadata: Any, observation_name: str | None) -> NormalizerContext:
    # normalizeInput falls back to the payload itself when there is no metadata
    return {
        "metadata": metadata if metadata is not None else data,
        "observationName": observation_name,
        "data": data,
    }


def _normalise(data: Any, kind: str, metadata: Any, observation_name: str | None) -> Any:
    ctx = _context(data, metadata, observation_name)
    preprocessed = select_adapter(ctx).preprocess(data, kind, ctx)
    return map_to_chatml(preprocessed) if kind == "input" else map_output_to_chatml(preprocessed)


def _safely(data: Any, kind: str, metadata: Any, observation_name: str | None) -> Any:
    # The TypeScript adapters read missing fields of odd payloads as undefined; the Python
    # port mirrors that where it matters, and anything it still trips over is simply not chat.
    try:
        return _normalise(data, kind, metadata, observation_name)
    except (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError):
        return None


def chatml_input_messages(
    data: Any, metadata: Any = None, observation_name: str | None = None
) -> list[dict[str, Any]] | None:
    """ChatML messages of an observation input (already deep-parsed), or None."""
    return _safely(data, "input", metadata, observation_name)


def chatml_output_messages(
    data: Any, metadata: Any = None, observation_name: str | None = None
) -> list[dict[str, Any]] | None:
    """ChatML messages of an observation output (already deep-parsed), or None."""
    return _safely(data, "output", metadata, observation_name)
