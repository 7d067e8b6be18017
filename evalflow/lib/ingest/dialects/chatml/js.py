"""JavaScript semantics and JSON parsing, as the TypeScript normaliser gets them for free.

Not a file of upstream ``chatml/``: truthiness, ``key in obj``, ``obj.key`` on null, ``a ?? b``,
``JSON.stringify`` spacing and ``JSON.parse`` strictness, plus Langfuse's ``deepParseJson``, which
its UI applies to payloads and metadata before normalising. The adapters use these wherever
Python's own semantics would change the result.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

ABSENT = object()  # JavaScript's ``undefined`` where None (``null``) means something else


def truthy(value: Any) -> bool:
    """JavaScript truthiness: empty lists/dicts are truthy, 0/""/None/False are not."""
    if value is None or value is False:
        return False
    if isinstance(value, (list, dict)):
        return True
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0 and not (isinstance(value, float) and math.isnan(value))  # NaN: falsy
    if isinstance(value, str):
        return value != ""
    return True


def has(value: Any, key: str) -> bool:
    """JS ``key in value`` for the values we meet: only objects have named keys."""
    return isinstance(value, dict) and key in value


def prop(obj: Any, key: str) -> Any:
    """JS property read ``obj.key``: undefined on non-objects, a TypeError on null."""
    if obj is None:
        raise TypeError(f"cannot read {key!r} of null")
    return obj.get(key) if isinstance(obj, dict) else None


def coalesce(*values: Any) -> Any:
    """JS ``a ?? b``: the first value that is not None (absent keys read as None here)."""
    for value in values:
        if value is not None:
            return value
    return None


def _js_number(value: Any) -> Any:
    """Integral floats print without ".0" in JavaScript; make Python agree before dumping."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, list):
        return [_js_number(v) for v in value]
    if isinstance(value, dict):
        return {k: _js_number(v) for k, v in value.items()}
    return value


def js_stringify(value: Any, indent: int | None = None) -> str:
    """``JSON.stringify`` output: no spaces after separators unless indented."""
    separators = (",", ": ") if indent else (",", ":")
    return json.dumps(_js_number(value), ensure_ascii=False, separators=separators, indent=indent)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")  # JSON.parse rejects NaN/Infinity


def json_parse(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def _parse_python_literal(text: str) -> Any:
    """Langfuse's fallback for Python ``repr`` dicts/lists (LangChain logs tool args that way).

    Like Langfuse, it swaps True/False/None and all single quotes for their JSON spelling and
    tries again; anything that still fails stays a string.
    """
    if "'" not in text or ("{" not in text and "[" not in text) or len(text) > 1_000_000:
        return ABSENT
    trimmed = text.strip()
    if trimmed[:1] not in ("{", "["):
        return ABSENT
    converted = re.sub(r"\bTrue\b", "true", trimmed)
    converted = re.sub(r"\bFalse\b", "false", converted)
    converted = re.sub(r"\bNone\b", "null", converted).replace("'", '"')
    try:
        return json_parse(converted)
    except (ValueError, RecursionError):
        return ABSENT


def deep_parse_json(value: Any, max_depth: int = 3, _depth: int = 0) -> Any:
    """Langfuse's ``deepParseJson``: parse JSON text, then strings nested in it, to a depth.

    Langfuse stores payloads and metadata as JSON text, often with JSON strings inside (OTel
    attributes, tool results). Its UI parses them before normalising, but only three levels
    deep, so a string nested deeper stays a string; numeric strings ("42") are never parsed.
    """
    if _depth >= max_depth:
        return value
    if isinstance(value, str):
        try:
            parsed = json_parse(value)
        except (ValueError, RecursionError):
            parsed = _parse_python_literal(value)
            if parsed is ABSENT:
                return value
        if isinstance(parsed, (int, float)) and not isinstance(parsed, bool):
            return value
        return deep_parse_json(parsed, max_depth, _depth + 1)
    if isinstance(value, list):
        return [deep_parse_json(v, max_depth, _depth + 1) for v in value]
    if isinstance(value, dict):
        return {k: deep_parse_json(v, max_depth, _depth + 1) for k, v in value.items()
                if k not in ("__proto__", "constructor", "prototype")}
    return value


def parse_json_text(value: Any) -> Any:
    """One level of parsing: a stored payload that is JSON text becomes data, else unchanged.

    Langfuse parses an observation's input/output once before normalising; JSON text nested
    inside (a tool result that is itself a JSON string) stays text, as the UI shows it.
    """
    if not isinstance(value, str):
        return value
    try:
        return json_parse(value)
    except (ValueError, RecursionError):
        return value
