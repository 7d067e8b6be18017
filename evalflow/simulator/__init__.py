"""A deterministic production-traffic simulator: Northwind Bank's support assistant.

    summary = simulate(landing_dir, ground_truth_dir, days=30, per_day=1000, seed=7,
                       start_date=date(2026, 10, 1))
    # the planted changes on other days, or left out: a date, a day offset, or None
    simulate(..., changes={"prompt_template_change": date(2026, 10, 9), "kb_change": 20,
                           "intent_mix_shift": None})

Landing (raw production traffic, PII included): ``<landing>/<YYYY-MM-DD>/canonical.jsonl``
(about 80%), ``otlp.jsonl`` (one ExportTraceServiceRequest per line, OTel GenAI attributes) and
``langfuse.jsonl`` (one {"trace", "observations"} export document per line). A file can hold a
few late traces from the previous day. Ten malformed lines are planted in canonical files.

Ground truth (never read by the pipeline):

- ``traces.jsonl``: one line per good trace: trace_id, session_id, user_id, turn, dialect,
  file (relative to landing), line (1-based), date, timestamp, intent, is_rare,
  prompt_template_id, kb_version, model, status, faults (codes from `FAULT_CODES`), and pii:
  [{field, start, end, type, value}]. ``field`` is a path into the canonical trace
  (``messages[1].content``, ``tool_calls[0].result[2].merchant``, ``metadata.client_ip``;
  see `resolve_path`); start/end are str offsets into that string, and ``value`` is exactly
  the text there. For OTLP and Langfuse lines the path names the same field of the canonical
  form the simulator built; the value appears verbatim in the written line.
- ``expected_canonical.jsonl``: for every good trace of every dialect, in the order of
  traces.jsonl, the canonical trace the simulator meant (the line it writes for canonical
  traffic). Every dialect's copy must fold back to these values; Langfuse and OTLP lines carry
  the same interaction (messages: what the model saw, answer in ``output`` only; metadata: as
  ``app.*`` root-span attributes in OTLP, ``trace.metadata`` in Langfuse; feedback: an OTel
  ``gen_ai.evaluation.result`` event or a Langfuse score).
- ``malformed.jsonl``: file, line, kind, reason (a code from `evalflow.lib.ingest.reasons`),
  trace_id, note, and original_line for duplicates and conflicts.
- ``events.json``: the planted prompt-template change, model switch, knowledge-base change and
  intent-mix shift (each with ``at`` and ``date``; null when ``simulate(changes=...)`` left it
  out), and every intent with its base and shifted share.
"""

from evalflow.simulator.core import SimulationSummary, simulate
from evalflow.simulator.faults import FAULT_CODES
from evalflow.simulator.personal_data import PII_TYPES
from evalflow.simulator.tracked import resolve_path

__all__ = ["simulate", "SimulationSummary", "FAULT_CODES", "PII_TYPES", "resolve_path"]
