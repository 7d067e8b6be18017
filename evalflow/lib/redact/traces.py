"""Redact every text-bearing field of canonical traces, in batches, failing closed.

Presidio's dict analyzer crashes on lists of dicts (tool calls) and never looks at dict keys,
so we walk the trace ourselves: every string, at any depth, in messages, the query, the output,
retrieved context, tool-call arguments and results, metadata keys and values, error messages
and feedback comments becomes a *slot*. All slots of a batch of traces go to the detector at
once (each distinct text analysed once), and the replacements are written back.

Dict keys and tool names are *structural* slots: names in the data's shape ("notes",
"lookup"), which the name recognizers would take for persons under a name-like field. They get
the pattern recognizers only (an address or a phone number used as a key still goes), never
spaCy NER or the name rules; see `PiiDetector.detect_batch(..., structural=...)`.

A trace whose redaction raises is returned as a failure, never passed through: the caller
quarantines it. user_id and session_id are replaced by keyed pseudonyms so they still join.
"""

from __future__ import annotations

import copy
import datetime
import decimal
import hashlib
import inspect
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from evalflow.lib.common.gcpause import paused_gc
from evalflow.lib.redact.detection import Detection
from evalflow.lib.redact.pseudonym import Pseudonymizer

# Top-level fields whose strings (at any depth) are redacted. Ids the pipeline generates
# (trace_id, content hashes, file provenance) and configuration values (app, model, template
# ids) are not user text and stay as they are.
TEXT_FIELDS = ("messages", "user_query", "retrieved_context", "tool_calls", "output", "error_type",
               "feedback", "metadata", "truncated_fields")
ID_FIELDS = {"user_id": "user", "session_id": "session"}
# Numbers this long in JSON payloads may be card, phone or account numbers: scan them as text.
_LONG_NUMBER = 10**6
_INDEX = re.compile(r"\[\d+\]")
# A tool's name: tool_calls[i].name, or an OpenAI-style call inside a message,
# messages[i].tool_calls[j].function.name.
_TOOL_NAME = re.compile(r"(?:^|\.)tool_calls\[\d+\](?:\.function)?\.name$")
_MESSAGE_NAME = re.compile(r"messages\[\d+\]\.name$")
# What a detector that cannot be told about structure may not report for a structural slot.
_NAME_ENTITIES = frozenset(("PERSON", "LOCATION"))


@dataclass
class Slot:
    """One string inside one trace: where it is, and how to put its redacted text back."""

    trace_index: int
    path: str  # e.g. "tool_calls[0].result.email" (for reports, indices are stripped)
    text: str
    write: Callable[[str], None]
    structural: bool = False  # a dict key or a tool name: pattern recognizers only


@dataclass
class RedactionFailure:
    trace_index: int
    trace_id_sha256: str | None
    reason: str
    detail: str  # exception type and where; never the text


@dataclass
class BatchResult:
    traces: list[dict[str, Any] | None]  # None where the trace failed
    failures: list[RedactionFailure] = field(default_factory=list)
    entity_counts: Counter = field(default_factory=Counter)  # (field, entity_type) -> count
    trace_counts: Counter = field(default_factory=Counter)  # (trace_index, field, entity_type) -> count


def report_field(path: str) -> str:
    """A path without indices or keys below the first level: keys can themselves be PII."""
    path = _INDEX.sub("[]", path)
    head, _, rest = path.partition(".")
    if head.startswith(("metadata", "feedback")) or not rest:
        return head.split("{")[0]
    second = rest.split(".")[0].split("{")[0]
    while second.endswith("[]"):
        second = second[:-2]
    return f"{head}.{second}"


# What a slot's write does with the redacted text: set holder[key], rename the dict key, or
# (a long number scanned as text) set holder[key] back to the number when nothing was found.
_SET, _RENAME, _NUMBER = 0, 1, 2


def _gather(value: Any, path: str, trace_index: int, holder: Any, key: Any, out: list) -> None:
    """(trace_index, path, text, holder, key, how) for every string (and long number) in value,
    dict keys included, in the order the slots are written back (a dict's values before its
    keys, so a rename never strands a pending write)."""
    if isinstance(value, str):
        out.append((trace_index, path, value, holder, key, _SET))
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) >= _LONG_NUMBER:
            out.append((trace_index, path, str(value), holder, key, _NUMBER))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if type(item) is str:
                out.append((trace_index, f"{path}[{i}]", item, value, i, _SET))
            else:
                _gather(item, f"{path}[{i}]", trace_index, value, i, out)
    elif isinstance(value, dict):
        keys = list(value.keys())
        for k in keys:
            item = value[k]
            item_path = f"{path}.{k}" if isinstance(k, str) else path
            if type(item) is str:
                out.append((trace_index, item_path, item, value, k, _SET))
            else:
                _gather(item, item_path, trace_index, value, k, out)
        key_path = f"{path}{{key}}"
        for k in keys:
            if isinstance(k, str):
                out.append((trace_index, key_path, k, value, k, _RENAME))


def _structural(path: str, holder: Any, key: Any, how: int) -> bool:
    """A dict key, or a tool's name (a tool message's `name` too; a user's `name` is a person's)."""
    if how == _RENAME:
        return True
    if key != "name" or not isinstance(holder, dict):
        return False
    if _TOOL_NAME.search(path):
        return True
    return _MESSAGE_NAME.match(path) is not None and holder.get("role") in ("tool", "function")


def _accepts_structural(detect_batch: Callable) -> bool:
    try:
        parameters = inspect.signature(detect_batch).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "structural" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _gather_trace(trace: dict[str, Any], trace_index: int) -> list[tuple]:
    out: list[tuple] = []
    for name in TEXT_FIELDS:
        if name in trace and trace[name] is not None:
            _gather(trace[name], name, trace_index, trace, name, out)
    return out


def _write(holder: Any, key: Any, how: int, old: str, new: str) -> None:
    if how == _SET:
        holder[key] = new
    elif how == _RENAME:
        _rename_key(holder, key, new)
    else:
        holder[key] = holder[key] if new == old else new


def _writer(holder: Any, key: Any, how: int, old: str) -> Callable[[str], None]:
    return lambda new: _write(holder, key, how, old, new)


def _rename_key(mapping: dict, old: str, new: str) -> None:
    if new == old:
        return
    # Keep the key order a reader saw: rebuild the dict in place.
    items = [(new if k == old else k, v) for k, v in mapping.items()]
    mapping.clear()
    mapping.update(items)


def trace_slots(trace: dict[str, Any], trace_index: int) -> list[Slot]:
    """Every string of the trace's text fields (at any depth, dict keys included) as a Slot."""
    return [Slot(index, path, text, _writer(holder, key, how, text), _structural(path, holder, key, how))
            for index, path, text, holder, key, how in _gather_trace(trace, trace_index)]


# Immutable leaf types a trace copy can share with its original.
_ATOMIC = frozenset((str, int, float, bool, type(None), bytes, complex, datetime.datetime, datetime.date,
                     datetime.time, datetime.timedelta, decimal.Decimal))


def _copy(value: Any) -> Any:
    """copy.deepcopy for JSON-like values (dicts, lists, immutable leaves), a few times faster;
    anything else goes through copy.deepcopy."""
    kind = type(value)
    if kind is dict:
        return {k: v if type(v) in _ATOMIC else _copy(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _ATOMIC else _copy(v) for v in value]
    if kind in _ATOMIC:
        return value
    return copy.deepcopy(value)


def _copy_trace(trace: Any) -> Any:
    try:
        return _copy(trace)
    except RecursionError:  # a cyclic structure: deepcopy keeps the cycle (the walk rejects it)
        return copy.deepcopy(trace)


def apply_detections(text: str, detections: Sequence[Detection], pseudonymizer: Pseudonymizer) -> str:
    """Replace each detected span (non-overlapping, any order) with its placeholder."""
    pieces: list[str] = []
    cursor = 0
    for detection in sorted(detections, key=lambda d: d.start):
        if detection.start < cursor:  # overlapping: the earlier, already replaced span wins
            continue
        pieces.append(text[cursor:detection.start])
        pieces.append(pseudonymizer.placeholder(detection.entity_type, text[detection.start:detection.end]))
        cursor = detection.end
    pieces.append(text[cursor:])
    return "".join(pieces)


class _MemoPlaceholders:
    """The pseudonymizer's placeholders, each (type, value) computed once per batch."""

    def __init__(self, pseudonymizer: Pseudonymizer):
        self._pseudonymizer = pseudonymizer
        self._memo: dict[tuple[str, str], str] = {}

    def placeholder(self, entity_type: str, value: str) -> str:
        key = (entity_type, value)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self._pseudonymizer.placeholder(entity_type, value)
        return found


def _trace_id_hash(trace: dict[str, Any]) -> str | None:
    tid = trace.get("trace_id")
    return hashlib.sha256(str(tid).encode()).hexdigest() if tid not in (None, "") else None


class TraceRedactor:
    """Redacts batches of traces with `detect_batch(texts, field_paths[, structural=flags])`.

    A detector that takes `structural` (PiiDetector.detect_batch) is told which texts are dict
    keys and tool names; for one that does not, PERSON and LOCATION results on those texts are
    dropped instead, so a structural name is never pseudonymised as a person either way.
    """

    def __init__(self, detect_batch: Callable[..., list[list[Detection]]], pseudonymizer: Pseudonymizer):
        self.detect_batch = detect_batch
        self.pseudonymizer = pseudonymizer
        self._tells_structure = _accepts_structural(detect_batch)

    def redact(self, traces: Sequence[dict[str, Any]]) -> BatchResult:
        """Redacted copies of the traces; the input is not modified."""
        # A batch builds hundreds of thousands of small tuples and strings, none cyclic: with
        # the cyclic collector on, its full passes over the growing heap cost more than the
        # walk itself (see evalflow.lib.common.gcpause).
        with paused_gc():
            return self._redact(traces)

    def _redact(self, traces: Sequence[dict[str, Any]]) -> BatchResult:
        copies = [_copy_trace(trace) for trace in traces]
        result = BatchResult(traces=list(copies))
        slots_by_trace: dict[int, list[tuple]] = {}
        for index, trace in enumerate(copies):
            try:
                slots_by_trace[index] = _gather_trace(trace, index)
            except Exception as exc:  # an odd structure: quarantine, never pass through
                self._fail(result, index, traces[index], "unwalkable", exc)
        try:
            self._redact_slots(result, [s for slots in slots_by_trace.values() for s in slots])
        except Exception:
            # One bad text must not take the batch down: retry trace by trace to isolate it.
            for index, slots in slots_by_trace.items():
                if result.traces[index] is None:
                    continue
                try:
                    self._redact_slots(result, slots)
                except Exception as exc:
                    self._fail(result, index, traces[index], "detector_failed", exc)
        for trace in result.traces:
            if trace is None:
                continue
            for name, kind in ID_FIELDS.items():
                value = trace.get(name)
                trace[name] = self.pseudonymizer.identifier(kind, str(value)) if value is not None else None
        return result

    def _redact_slots(self, result: BatchResult, slots: list[tuple]) -> None:
        traces = result.traces
        live = [s for s in slots if traces[s[0]] is not None]
        # The path is context for the detector: a string under "holder_name" or "email" is
        # more likely a name or an address than the same string in free text.
        texts, paths = [s[2] for s in live], [s[1] for s in live]
        structural = [_structural(path, holder, key, how) for _, path, _, holder, key, how in live]
        if self._tells_structure:
            detections = self.detect_batch(texts, paths, structural=structural)
        else:
            detections = self.detect_batch(texts, paths)
        if len(detections) != len(live):
            raise RuntimeError("detector returned a different number of results than texts")
        if not self._tells_structure:
            detections = [[d for d in found if d.entity_type not in _NAME_ENTITIES] if flag else found
                          for found, flag in zip(detections, structural)]
        counted: Counter = Counter()
        fields: dict[str, str] = {}
        placeholders = _MemoPlaceholders(self.pseudonymizer)  # a value recurs across slots
        for (trace_index, path, text, holder, key, how), found in zip(live, detections):
            if not found:
                continue
            _write(holder, key, how, text, apply_detections(text, found, placeholders))
            field_name = fields.get(path)
            if field_name is None:
                field_name = fields[path] = report_field(path)
            for detection in found:
                counted[(trace_index, field_name, detection.entity_type)] += 1
        result.trace_counts.update(counted)
        for (_, field_name, entity), n in counted.items():
            result.entity_counts[(field_name, entity)] += n

    @staticmethod
    def _fail(result: BatchResult, index: int, original: dict[str, Any], reason: str, exc: Exception) -> None:
        result.traces[index] = None
        for key in [k for k in result.trace_counts if k[0] == index]:
            result.entity_counts[key[1:]] -= result.trace_counts.pop(key)
        result.failures.append(RedactionFailure(index, _trace_id_hash(original), reason, type(exc).__name__))
