"""The ingest stage: landing files -> staged traces -> daily raw_traces, every bad line explained.

- `landing`: parse each landing file once, stage its traces, account for every line
  (`land_new_files`, `reject_rate_for_days`, `all_event_dates`).
- `parse_file`: one file in, canonical traces and an explained quarantine out (`ingest_file`,
  `iter_landing_files`, `KnownTraces`, `IngestOptions`).
- `reader`: records out of a file (JSONL lines or one JSON document; gzip/zstd by magic bytes),
  bounded by the line caps.
- `dialects/`: detect a record's dialect and fold it into canonical traces (OTLP, OpenInference,
  Langfuse with the ChatML port, LangSmith, canonical JSONL).
- `validation`: one contract for every dialect's traces; `reasons`: the quarantine reason codes.
- `canonical`: the canonical trace's fields; `contract`: the Great Expectations suite on
  raw_traces (a blocking asset check).
- `store`: the raw store's tables (`staged_traces`, `raw_traces`, `landed_files`, `quarantine`).

Import the module you need; this package imports nothing, so `evalflow.lib.ingest.reasons` stays
cheap to import.
"""
