"""The warehouse's base tables: redacted traces and the redaction audit.

`redacted_traces` (the partitioned, redacted copy of `raw_traces`: no raw text past here),
`pii_audit` (detections per day, field and entity type: counts only), `redaction_quarantine`
(traces whose redaction failed, held back), `redaction_runs` (which detector redacted each day).
The warehouse also holds the ingest accounting (`landed_files`, `quarantine`), copied from the
raw store, and every later stage's tables (each created by that stage's store.py).
"""

from __future__ import annotations

from evalflow.lib.common.settings import Settings
from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.ingest.store import ACCOUNTING_SCHEMA, TRACE_COLUMNS

REDACTION_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS redacted_traces ({TRACE_COLUMNS}, PRIMARY KEY (trace_id));
-- How much PII each field of each day held: counts only, never values.
CREATE TABLE IF NOT EXISTS pii_audit (
    event_date DATE NOT NULL,
    field VARCHAR NOT NULL,
    entity_type VARCHAR NOT NULL,
    detections BIGINT NOT NULL
);
-- Traces whose redaction failed: held back (fail closed), with the reason, never the text.
CREATE TABLE IF NOT EXISTS redaction_quarantine (
    event_date DATE NOT NULL,
    trace_id_sha256 VARCHAR,
    reason VARCHAR NOT NULL,
    detail VARCHAR,
    quarantined_at TIMESTAMPTZ
);
-- Which detector redacted each day: later snapshot manifests cite it.
CREATE TABLE IF NOT EXISTS redaction_runs (
    event_date DATE NOT NULL,
    redacted_at TIMESTAMPTZ NOT NULL,
    presidio_analyzer VARCHAR,
    spacy VARCHAR,
    spacy_model VARCHAR,
    spacy_model_version VARCHAR
);
"""

# The warehouse: what analysts, annotators, reports and the Dagster UI read. No raw text.
# The warehouse: what analysts, annotators, reports and the Dagster UI read. No raw text.
WAREHOUSE_SCHEMA = ACCOUNTING_SCHEMA + REDACTION_SCHEMA


def analyst_warehouse(settings: Settings) -> Warehouse:
    """The warehouse, its base tables created: what analysts, annotators, reports and the UI read."""
    warehouse = Warehouse(settings.warehouse_path, schema=WAREHOUSE_SCHEMA)
    warehouse.ensure_schema()
    return warehouse
