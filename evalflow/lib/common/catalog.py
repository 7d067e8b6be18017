"""The warehouse's catalog: what every table, column and view means, in one place.

`TABLES` maps each warehouse table to (its description, {column: description}); `VIEWS` does the
same for the analyst views, whose queries are in `VIEW_QUERIES`. These dicts are the one source
of truth for the `COMMENT ON` text in the warehouse (`SELECT table_name, comment FROM
duckdb_tables()`), and docs/warehouse.md documents the same tables and columns
(evalflow_tests/test_warehouse_catalog.py fails when the two disagree). Importing this module
imports nothing but the standard library, so anything (Dagster column schemas, docs tools) can
read the dicts.

`apply_catalog(con, tables)` is called by each store's writer, for its own tables, inside the
write's transaction: the comments commit with the data or not at all. It then (re)creates the
views whose source tables all exist, so after a full run every view exists, and a partial run
never leaves a view that fails to bind. Comments are constant text from these dicts, never data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    import duckdb

Described = tuple[str, dict[str, str]]

# Tables of the raw store only (traces with PII). No view may read them, or the attached raw store.
RAW_STORE_TABLES = ("staged_traces", "raw_traces")

# ----------------------------------------------------------------------------- trace columns
# redacted_traces has the canonical trace's columns (lib/ingest/store.py TRACE_COLUMNS).
_TRACE_COLUMNS: dict[str, str] = {
    "trace_id": "The source's trace id (one user-facing interaction: a request and its answer).",
    "event_date": "UTC day of timestamp; the daily partition.",
    "timestamp": "Start of the interaction (UTC instant).",
    "end_time": "End of the interaction, when the source gives it.",
    "session_id": "Pseudonymised session (session_<hmac>): joins across traces and tables.",
    "user_id": "Pseudonymised user (user_<hmac>).",
    "app": "Application name.",
    "model": "Model that answered.",
    "prompt_template_id": "Prompt template version.",
    "system_prompt_hash": "Identifies the system prompt version.",
    "tool_schema_hash": "Identifies the tool schema version.",
    "messages": "Conversation: JSON list of {role, content, ...}; redacted.",
    "user_query": "The user's request this trace answers; redacted.",
    "retrieved_context": "JSON list of {doc_id, text, score}; redacted.",
    "tool_calls": "JSON list of {name, arguments, result}; redacted.",
    "output": "The answer; redacted. NULL when there is none.",
    "latency_ms": "Latency in milliseconds.",
    "input_tokens": "Prompt tokens.",
    "output_tokens": "Generated tokens.",
    "cost_usd": "Cost in US dollars.",
    "status": "ok or error.",
    "error_type": "Error class when status = 'error'.",
    "feedback": "JSON {thumbs, score, comment}, or NULL.",
    "metadata": "Source metadata as JSON, keys and values redacted; keys vary by source (always dialect).",
    "payload_kept": "False when payload sampling (EVALFLOW_PAYLOAD_KEEP_FRACTION) dropped messages, query, "
                    "context, tool calls and output; the numbers stay.",
    "content_sha256": "Hash of the trace's content as ingested (before redaction): a re-sent trace hashes the same.",
    "flags": "Ingest flags (epoch_milliseconds, naive_timestamp_assumed_utc, clock_skew, field_truncated...); "
             "empty list when none.",
    "truncated_fields": "JSON list of {path, original_bytes, sha256} for string fields cut at ingest; [] when none.",
    "dialect": "Source format: canonical, otlp, openinference, genai_attributes, langfuse, langsmith.",
    "source_file_sha256": "The landing file it came from: -> landed_files.file_sha256.",
    "source_path": "Landing file path, as in landed_files.path.",
    "line_no": "First line of the trace in that file.",
    "byte_offset": "Byte offset of that line in the decompressed file.",
}

# ----------------------------------------------------------------------------- tables
TABLES: dict[str, Described] = {
    # -- ingest accounting (copied from the raw store at each landing) --------------------
    "landed_files": (
        "One row per landing file, recognised by the sha256 of its bytes; ingested + quarantined + "
        "deduplicated = lines_read. Copied from the raw store at each landing.",
        {
            "file_sha256": "sha256 of the file as landed (primary key): a renamed copy is the same file.",
            "path": "Path relative to the landing folder.",
            "size_bytes": "File size in bytes.",
            "landed_at": "When it was parsed; the same for all files of one landing.",
            "lines_read": "Records read (blank lines are not records).",
            "ingested": "Records that became (part of) a staged trace.",
            "quarantined": "Records rejected (see quarantine).",
            "deduplicated": "Exact duplicate lines, or traces already staged with identical content.",
            "traces_staged": "Traces staged from this file (span dialects fold many lines into one trace).",
            "traces_duplicate": "Traces already staged with identical content.",
            "reasons": "JSON {reason: count} of quarantined lines.",
            "flags": "JSON {flag: count} of kept-but-flagged records and traces.",
            "dialects": "JSON {dialect: count} of records by detected format.",
        },
    ),
    "quarantine": (
        "One row per rejected input line: where it is and why, never what it said (it may hold PII). "
        "Copied from the raw store at each landing.",
        {
            "file_sha256": "-> landed_files.file_sha256.",
            "path": "File path relative to the landing folder.",
            "line_no": "Line number, 1-based, in the decompressed stream.",
            "byte_offset": "Offset of the line in the decompressed stream.",
            "raw_sha256": "sha256 of the line's bytes.",
            "raw_length": "Length of the line in bytes.",
            "scope": "record (the line itself is unreadable) or trace (a readable trace failed validation).",
            "reason": "Reason code (invalid_json, truncated_json, nul_byte, wrong_type, missing_trace_id, "
                      "missing_timestamp, conflict...; all codes in docs/bad-input.md).",
            "detail": "One line that explains it, without content.",
            "trace_id_sha256": "sha256(trace_id) when the trace had an id.",
            "event_date": "The trace's day, set only for conflict rows; NULL otherwise.",
            "quarantined_at": "The landing's landed_at.",
        },
    ),
    # -- redaction ------------------------------------------------------------------------
    "redacted_traces": (
        "One row per trace (one user-facing interaction), every text field redacted: the fact table, "
        "which the per-trace tables join on trace_id. Replaced per daily partition.",
        _TRACE_COLUMNS,
    ),
    "pii_audit": (
        "PII found by redaction per day, field and entity type: counts, never values. Replaced per daily partition.",
        {
            "event_date": "Day.",
            "field": "Field path: user_query, messages[].content, tool_calls[].arguments, tool_calls[].result, "
                     "retrieved_context[].text, output, metadata...",
            "entity_type": "Entity type: PERSON, EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE, ACCOUNT_ID...",
            "detections": "Spans replaced.",
        },
    ),
    "redaction_quarantine": (
        "Traces whose redaction raised an error: held back (fail closed), not in redacted_traces. "
        "Replaced per daily partition.",
        {
            "event_date": "The trace's day.",
            "trace_id_sha256": "sha256(trace_id).",
            "reason": "Reason code.",
            "detail": "Exception type (no text).",
            "quarantined_at": "When.",
        },
    ),
    "redaction_runs": (
        "One row per redacted day, with the detector versions that redacted it. Replaced per daily partition.",
        {
            "event_date": "Day.",
            "redacted_at": "When the day was (last) redacted.",
            "presidio_analyzer": "Presidio version.",
            "spacy": "spaCy version.",
            "spacy_model": "spaCy model name.",
            "spacy_model_version": "spaCy model version.",
        },
    ),
    # -- embeddings and intents -----------------------------------------------------------
    "embedding_cache": (
        "One row per distinct embedded text, per model version and backend (the text itself is not stored). "
        "Key (text_sha256, model_version, backend); append only.",
        {
            "text_sha256": "sha256 of the embedded text.",
            "model": "Model name.",
            "model_version": "Packaged model version.",
            "backend": "Encoder backend (ONNX int8 on CPU, or torch); vectors differ slightly between backends.",
            "vector": "The normalised 384-d embedding.",
            "created_at": "When it was computed.",
        },
    ),
    "trace_embeddings": (
        "One row per embedded redacted trace: points to its vector in embedding_cache. Traces with "
        "payload_kept = false are not embedded. Replaced per daily partition.",
        {
            "trace_id": "-> redacted_traces (primary key).",
            "event_date": "The trace's day (partition).",
            "text_sha256": "Hash of the text that was embedded (by default the query with the session's first "
                           "user turn, placeholders, amounts and numbers removed), so many traces share one text.",
            "model_version": "With text_sha256 and backend, -> embedding_cache.",
            "backend": "With text_sha256 and model_version, -> embedding_cache.",
        },
    ),
    "intent_assignments": (
        "The intent of each trace in the current 28-day clustering window (ending at the newest embedded day). "
        "Replaced whole at each clustering: older traces have no row.",
        {
            "trace_id": "-> redacted_traces (primary key).",
            "event_date": "The trace's day.",
            "intent_id": "-> intent_catalog.",
            "confidence": "How well the trace fits its intent; below 0.5 for low-confidence rows.",
            "low_confidence": "HDBSCAN called it noise (or it is far from its intent's centroid), and it was "
                              "given the nearest intent.",
            "clustered_at": "The clustering (-> intent_runs.clustered_at).",
        },
    ),
    "intent_catalog": (
        "The current intents; an id stays the same across re-clusterings while the intent continues. "
        "Replaced whole at each clustering.",
        {
            "intent_id": "Stable intent id (primary key).",
            "name": "Top c-TF-IDF keywords joined as a name.",
            "keywords": "Top keywords.",
            "examples": "Representative redacted texts, closest to the centroid first (placeholders without "
                        "their digest).",
            "size": "Traces of the window in this intent.",
            "share": "size / traces in the window (0..1).",
            "first_seen": "Wall-clock time of the clustering that first produced this intent (inherited through "
                          "continues and merges), not a trace time.",
            "last_seen": "Wall-clock time of the latest clustering that produced it.",
            "centroid": "Centroid in the 384-d embedding space.",
            "updated_at": "The clustering that wrote the row (= intent_runs.clustered_at).",
            "reviewed_name": "The name a reviewer gave it (intent_overrides.toml); then also name.",
            "pinned": "A reviewer pinned it (or it is a part of a reviewer's split): every re-clustering keeps it.",
            "anchors": "Centroids of the intents a reviewer merged into it; their requests keep coming here.",
            "decision": "What reviewers decided about it, in words.",
        },
    ),
    "intent_events": (
        "How the intent catalog changed: each clustering appends its birth, death, merge, split and continue events.",
        {
            "clustered_at": "The clustering.",
            "kind": "birth (to_ids = the new id), death (from_ids = the id that ended), merge (several -> one "
                    "kept), split (one -> itself + new ids), continue (matched the previous centroid).",
            "from_ids": "Intent ids before.",
            "to_ids": "Intent ids after.",
            "detail": "Why (first catalog, similarities).",
        },
    ),
    "intent_runs": (
        "One row per clustering that re-fitted; appended at each clustering.",
        {
            "clustered_at": "When.",
            "window_start": "First day of the window (newest embedded day - 27); can be earlier than the first "
                            "day with data.",
            "rows": "Traces clustered.",
            "input_sha256": "Fingerprint of the input; an unchanged fingerprint skips the next re-fit.",
            "intents": "Intents in the catalog.",
            "noise_share": "Share of low-confidence rows.",
        },
    ),
    # -- failure signals and taxonomy -----------------------------------------------------
    "trace_signals": (
        "One row per trace of the signals window: what went wrong and how unusual it is. A run replaces the "
        "rows from the window's start on; older rows stay, with the intent they had then.",
        {
            "trace_id": "-> redacted_traces.",
            "session_id": "Pseudonymised session.",
            "event_date": "Day.",
            "timestamp": "Trace start.",
            "intent_id": "Intent at the time of the run.",
            "failure_modes": "Detected modes: error, tool_error, refusal, negative_feedback, empty_output, "
                             "verbose_output, unsupported_answer, low_retrieval_score, latency_outlier, cost_outlier, "
                             "prompt_injection, injection_succeeded, policy_violation, policy_complied, "
                             "toxic_request, toxic_answer.",
            "is_failure": "Any failure mode.",
            "severity": "Severity of the worst mode, 0..1 (0 when none).",
            "latency_outlier": "Latency is an outlier for its intent x model.",
            "cost_outlier": "Cost is an outlier for its intent x model.",
            "latency_score": "Robust z of latency (log scale).",
            "cost_score": "Robust z of cost (log scale).",
            "is_outlier": "Latency or cost outlier, or low-confidence intent.",
            "difficulty": "0..1: turns, context length, tool calls, rarity of the intent.",
            "difficulty_bucket": "easy, medium, hard: tertiles of the window, not comparable across windows.",
            "support_score": "Token overlap of the answer with the retrieved context; NULL when there is no "
                             "answer or the request failed.",
            "retrieval_max_score": "Best retrieval score.",
            "signal_reasons": "Why, in words.",
            "low_confidence_intent": "= intent_assignments.low_confidence.",
            "model": "Copied from the trace.",
            "status": "Copied from the trace.",
            "latency_ms": "Copied from the trace.",
            "cost_usd": "Copied from the trace.",
            "output_tokens": "Copied from the trace.",
            "turns": "User turns in the conversation.",
            "context_tokens": "Prompt size used for difficulty: input_tokens, else characters / 4.",
            "tool_call_count": "Tool calls.",
            "intent_share": "The intent's share of the window.",
            "payload_kept": "Copied from the trace.",
            "computed_at": "The run.",
        },
    ),
    "failure_clusters": (
        "One row per failure cluster (a failure category x an intent) of the current window; rank 1 is the "
        "highest score. Re-created at each run.",
        {
            "failure_cluster_id": "F-<category>-<intent_id> (unassigned when no intent); stable while the "
                                  "intent id is.",
            "category": "prompt_injection, policy, hallucination, error, empty_output, refusal, tool_error, "
                        "retrieval_miss, verbose, latency_cost, dissatisfaction.",
            "intent_id": "-> intent_catalog.",
            "intent_name": "The intent's name when the taxonomy was built.",
            "traces": "Failed traces in the cluster.",
            "share_of_failures": "traces / all failed traces in the window.",
            "severity": "Mean severity of its traces.",
            "score": "share_of_failures x severity.",
            "rank": "1 = highest score.",
            "built_at": "The run.",
        },
    ),
    "failure_cluster_members": (
        "One row per failed trace of the window -> its failure cluster (the category of its most severe mode). "
        "Re-created at each run.",
        {
            "trace_id": "-> redacted_traces, trace_signals.",
            "failure_cluster_id": "-> failure_clusters.",
        },
    ),
    # -- sampling and annotation ----------------------------------------------------------
    "eval_candidates": (
        "One row per trace ever picked for labelling: which traces and sessions have been used. Appended per "
        "sample; status updated; exported and retired rows are never deleted.",
        {
            "trace_id": "-> redacted_traces (primary key).",
            "session_id": "Pseudonymised session.",
            "event_date": "Day.",
            "timestamp": "Trace start.",
            "intent_id": "Intent when picked (may have left the catalog since).",
            "failure_modes": "Failure modes when picked.",
            "difficulty_bucket": "easy, medium, hard.",
            "stratum": "intent=...|failure=...|difficulty=...",
            "time_bucket": "First day (ISO date) of its 7-day time bucket, counted from the oldest eligible trace.",
            "reason": "Why it was picked (top failure cluster, failure mode, outlier, intent coverage, facet "
                      "coverage, stratum floor, stratum allocation...).",
            "pick_order": "Order within its sampling run.",
            "sample_run_id": "-> sample_runs.",
            "sampled_at": "The sampling run.",
            "status": "candidate (not exported yet), exported (in a batch), retired (stale before export).",
            "batch_id": "-> annotation_batches, once exported.",
            "stale_reason": "Why it went stale (intent left the catalog, trace moved to another intent, too old, "
                            "trace gone); exported candidates get a reason but stay exported.",
            "retired_at": "When it was retired.",
        },
    ),
    "sample_runs": (
        "One row per sampling run, with its budget, seed and coverage figures. Appended per sample.",
        {
            "sample_run_id": "sample-<UTC time> (primary key).",
            "sampled_at": "When.",
            "window_start": "First day of the window sampled.",
            "budget": "Traces asked for.",
            "seed": "Random seed (the same inputs and seed give the same sample).",
            "chosen": "Traces picked.",
            "retired": "Earlier candidates this run retired.",
            "coverage": "JSON coverage figures (population, intents_covered, intents_in_population, "
                        "failure_share_population, failure_share_sample, strata, reasons...).",
        },
    ),
    "annotation_batches": (
        "One row per annotation batch folder written under data/annotation/<batch_id>/ (Label Studio tasks, "
        "CSV files, manifest.json).",
        {
            "batch_id": "batch-<UTC time>, the same time as its sample run (primary key).",
            "sample_run_id": "-> sample_runs.",
            "created_at": "When it was recorded.",
            "path": "Absolute path of the batch folder.",
            "candidates": "Traces in the batch.",
            "gold": "Known-answer gold tasks mixed in.",
            "tasks": "candidates + gold.",
            "manifest_sha256": "sha256 of manifest.json.",
        },
    ),
    # -- labels (what annotators handed back) ----------------------------------------------
    "labels": (
        "One row per batch, item, annotator and field: that annotator's latest submission (an expert's review "
        "answer is a row of its own). Annotators are pseudonyms; free text is redacted. Written by the label "
        "import, one transaction per file; an earlier submission that a later one replaced is in label_audit.",
        {
            "label_id": "Hash of batch, item, annotator, field (and role, for an expert) (primary key).",
            "batch_id": "-> annotation_batches.",
            "item_id": "The task's opaque id in its batch; the batch's manifest.json links it to its trace or gold "
                       "case.",
            "origin": "trace (a production trace) or gold (a known-answer gold case mixed into the batch).",
            "trace_id": "-> redacted_traces; NULL for gold items.",
            "case_id": "The eval case: case-<hash of trace_id> for a trace, the gold case's own id for gold; "
                       "-> judge_calibration_cases, judge_labels.",
            "position": "Position of the item in its batch, from 0 (the order the tasks were shown).",
            "pass": "1 (before the model output: expected_behavior, gold_answer, risk_level) or 2 (the output "
                    "judged: Pass or Fail per dimension, and a critique).",
            "role": "annotator, or expert (a subject-matter expert's answer from the disagreement review project; "
                    "it overrides the majority in consensus_labels).",
            "annotator": "Pseudonymised annotator (annotator_<hmac>, the keyed HMAC of traces): one person has "
                         "the same pseudonym in every file.",
            "field": "A scoring dimension of the batch or critique (pass 2); expected_behavior, gold_answer or "
                     "risk_level (pass 1).",
            "value": "Pass or Fail for a dimension; low, medium or high for risk_level; the text, redacted, for "
                     "critique, expected_behavior and gold_answer.",
            "annotated_at": "When the annotator submitted it (the export's updated_at, else created_at); NULL when "
                            "the file gives no time.",
            "lead_time_s": "Seconds spent on the task (Label Studio's lead_time); NULL when the file does not say.",
            "source_format": "Format of the file it came from: labelstudio_json, labelstudio_json_min, "
                             "labelstudio_csv or batch_csv.",
            "ground_truth": "Label Studio's ground_truth flag on the annotation (Enterprise exports).",
            "feedback_only": "True for a label derived only from production feedback; imported labels are false "
                             "(thumbs enter consensus_labels as status feedback_only).",
            "imported_at": "The import that wrote this submission.",
            "file_sha256": "The file this submission came from: -> label_files.file_sha256.",
        },
    ),
    "label_files": (
        "One row per file the label import looked at, recognised by the sha256 of its bytes: a re-dropped or "
        "renamed copy adds nothing. Each answer of the file is counted once in labels, unchanged, quarantined or "
        "superseded. Appended per file.",
        {
            "file_sha256": "sha256 of the file's bytes (primary key).",
            "path": "Path of the file when it was imported (in the drop folder).",
            "format": "Detected format: labelstudio_json, labelstudio_json_min, labelstudio_csv, batch_csv, or "
                      "labelstudio_export_info (an export's info file, skipped); NULL when it is not an export.",
            "imported_at": "When it was imported.",
            "labels": "Answers that became the current label.",
            "unchanged": "Answers identical to a label already stored (as in a cumulative re-export).",
            "quarantined": "Answers held back (-> label_quarantine); 1 for a whole file that is not an export or "
                           "is unreadable.",
            "superseded": "Answers of this file that lost to a later submission of the same annotator, item and "
                          "field (-> label_audit).",
        },
    ),
    "label_quarantine": (
        "One row per answer, or whole file, that the label import held back, with a reason. The detail names "
        "fields and ids, never the text. Appended per file.",
        {
            "file_sha256": "-> label_files.file_sha256.",
            "path": "Path of the file when it was imported.",
            "locator": "Where in the file: task n (id ...) annotation m (id ...), record n, row n; file for a "
                       "whole-file reason.",
            "batch_id": "-> annotation_batches, when the item is in a batch manifest.",
            "item_id": "The item id the file gave, when it has one that looks like an id.",
            "annotator": "Pseudonymised annotator, when the file names one.",
            "field": "The field (control or column) name; (not an identifier) for a column header that is not one.",
            "reason": "unknown_item, missing_item_id, missing_annotator, value_not_allowed, required_empty, "
                      "cancelled, not_an_export, unreadable, unknown_field or redaction_failed.",
            "detail": "One line that explains it, naming fields and ids, never quoting the answer.",
            "imported_at": "The import that held it back.",
        },
    ),
    "label_audit": (
        "One row per submission that a later one replaced (per annotator, item and field the latest annotated_at "
        "wins): the old and the new answer side by side. Appended per file.",
        {
            "label_id": "-> labels.label_id (the current label).",
            "batch_id": "-> annotation_batches.",
            "item_id": "The item, as in labels.item_id.",
            "annotator": "Pseudonymised annotator.",
            "field": "The field, as in labels.field.",
            "old_value": "The replaced answer (text redacted).",
            "old_annotated_at": "When the replaced answer was submitted.",
            "old_file_sha256": "The file it came from: -> label_files.file_sha256.",
            "new_value": "The answer that replaced it.",
            "new_annotated_at": "When that answer was submitted.",
            "new_file_sha256": "The file it came from: -> label_files.file_sha256.",
            "recorded_at": "The import that recorded the replacement.",
        },
    ),
    # -- labels: consensus, agreement, annotator quality (rebuilt whole at each run) -------
    "consensus_labels": (
        "One row per labelled item and dimension (the pass-2 dimensions and the pass-1 risk_level): the "
        "annotators' majority, or an expert's override. Only status agreed counts as a label downstream "
        "(judge calibration, the golden set). Rebuilt whole at each run.",
        {
            "batch_id": "-> annotation_batches.",
            "item_id": "The item, as in labels.item_id.",
            "origin": "trace or gold.",
            "trace_id": "-> redacted_traces; NULL for gold items.",
            "case_id": "The eval case: -> judge_calibration_cases, judge_labels.",
            "dimension": "A pass-2 dimension, or risk_level (pass 1).",
            "value": "The consensus value: the expert's for method expert, else the majority's (NULL on a tie; "
                     "kept on a disputed row as the majority's leaning).",
            "method": "unanimous (2+ ratings, all equal), majority (2+ ratings), single (one rating) or expert "
                      "(an expert's review overrode the annotators).",
            "ratings": "Annotators' ratings counted (for status feedback_only: feedback ratings).",
            "agreement": "Share of those ratings equal to the majority (for method expert: equal to the expert's "
                         "value); NULL when there are none.",
            "status": "agreed; disputed (a tie, agreement below EVALFLOW_CONSENSUS_MIN_AGREEMENT, a single rating, "
                      "or experts who disagree: sent to the expert review queue); feedback_only (only production "
                      "thumbs, never a label until a person rates it).",
            "majority_value": "What the annotators' majority said (NULL on a tie or when no annotator rated); kept "
                              "when an expert overrides it.",
            "updated_at": "The run that built the table.",
        },
    ),
    "label_anchored": (
        "One row per pass-1 gold answer worded too close to the model output that pass 2 shows (word 3-gram "
        "similarity >= EVALFLOW_ANCHORED_SIMILARITY, default 0.5): most likely written with the output in view. "
        "Rebuilt whole at each run.",
        {
            "batch_id": "-> annotation_batches.",
            "item_id": "The item, as in labels.item_id.",
            "annotator": "Pseudonymised annotator who wrote the gold answer.",
            "similarity": "Share of the answer's own word 3-grams (those not in the question, conversation, "
                          "documents or tool calls) that occur in the output, 0..1.",
        },
    ),
    "label_agreement": (
        "Inter-annotator agreement per dimension and slice: percent agreement and Krippendorff's alpha with a "
        "bootstrap 95% interval, over role annotator ratings (experts do not vote). Rebuilt whole at each run.",
        {
            "dimension": "A pass-2 dimension, or risk_level (pass 1).",
            "level": "Level of measurement: nominal (Pass/Fail) or ordinal (risk_level: low < medium < high).",
            "slice_kind": "all (every rating), intent (the item's intent when it was sampled, from the batch "
                          "manifest; gold items have none), risk_level (the item's agreed consensus risk level) "
                          "or batch_id.",
            "slice_value": "The slice's value: an intent name, low / medium / high, a batch id; all for slice_kind "
                           "all.",
            "items": "Items with a rating in the slice.",
            "pairable_items": "Items with two or more ratings (only these measure agreement).",
            "annotators": "Annotators who rated in the slice.",
            "ratings": "Ratings in the slice.",
            "percent_agreement": "Mean over pairable items of the share of their rating pairs that agree, 0..1.",
            "alpha": "Krippendorff's alpha at the dimension's level; NULL when undefined (see alpha_reason).",
            "alpha_lo": "Lower end of alpha's bootstrap 95% interval over items.",
            "alpha_hi": "Upper end of alpha's bootstrap 95% interval over items.",
            "alpha_reason": "Why alpha is NULL (no pairable item, or no variation); NULL when alpha is given.",
            "computed_at": "The run.",
        },
    ),
    "label_agreement_pairs": (
        "One row per dimension (the pass-2 dimensions and risk_level), slice and pair of annotators who rated at "
        "least one item of that slice in common: their agreement and Cohen's kappa over those items. Rebuilt "
        "whole at each run.",
        {
            "dimension": "A pass-2 dimension, or risk_level (pass 1).",
            "slice_kind": "all (every rating), intent, risk_level or batch_id: the slices of label_agreement.",
            "slice_value": "The slice's value: an intent name, low / medium / high, a batch id; all for slice_kind "
                           "all.",
            "a": "Pseudonymised annotator (a < b).",
            "b": "Pseudonymised annotator.",
            "items": "Items both rated.",
            "agreement": "Share of those items with equal values, 0..1.",
            "kappa": "Cohen's unweighted kappa over those items; NULL when undefined (both gave one and the same "
                     "value throughout).",
        },
    ),
    "label_gates": (
        "One row per pass-2 dimension: the automation gate. Open (a judge may label the dimension) when human "
        "percent agreement >= EVALFLOW_HUMAN_AGREEMENT_MIN (default 0.80) on >= EVALFLOW_GATE_MIN_ITEMS (default "
        "50) items rated twice or more. Rebuilt whole at each run.",
        {
            "dimension": "The dimension (primary key).",
            "items": "Items with two or more annotator ratings of the dimension.",
            "percent_agreement": "Human percent agreement over those items, 0..1 (what the gate reads).",
            "alpha": "Krippendorff's alpha (shown beside it, not gated on).",
            "alpha_lo": "Lower end of alpha's bootstrap 95% interval.",
            "alpha_hi": "Upper end of alpha's bootstrap 95% interval.",
            "gate_open": "Whether a judge may label this dimension (calibration also needs it).",
            "reason": "Why it is open or closed, with the figures and thresholds.",
            "computed_at": "The run.",
        },
    ),
    "annotator_quality": (
        "Accuracy on the known-answer gold cases per annotator and dimension, plus an all row per annotator, with "
        "flags. Only role annotator is scored. Rebuilt whole at each run.",
        {
            "annotator": "Pseudonymised annotator.",
            "dimension": "A pass-2 dimension, gold_answer (pass 1: correct when it has every key fact), or all "
                         "(every gold rating of the annotator).",
            "gold_ratings": "Gold ratings scored (an empty answer counts as wrong).",
            "correct": "Of which correct.",
            "accuracy": "correct / gold_ratings, 0..1.",
            "flagged": "Accuracy below EVALFLOW_ANNOTATOR_MIN_ACCURACY (default 0.80) on >= "
                       "EVALFLOW_ANNOTATOR_MIN_GOLD gold ratings, or (all row) fatigue.",
            "reason": "Why it is flagged; empty when it is not.",
        },
    ),
    "annotator_fatigue": (
        "Accuracy on gold cases per annotator and segment of the work, all dimensions pooled: by position in the "
        "batch (quartiles) and over the annotator's own order of work (thirds). Rebuilt whole at each run.",
        {
            "annotator": "Pseudonymised annotator.",
            "segment": "position_q1..position_q4 (quartiles of position in the batch) or time_1of3..time_3of3 "
                       "(thirds of the annotator's work by annotated_at; only when the file has times).",
            "gold_ratings": "Gold ratings scored in the segment.",
            "accuracy": "Share correct, 0..1.",
        },
    ),
    # -- the LLM judge ------------------------------------------------------------------------
    "judge_verdict_cache": (
        "Every reply the judge endpoint gave, keyed by (model, prompt_sha256, case_sha256): a key in the cache is "
        "never sent again. Upserted by each judge call.",
        {
            "model": "Judge model (EVALFLOW_JUDGE_MODEL).",
            "prompt_sha256": "sha256 of the prompt template's text (its version).",
            "case_sha256": "sha256 of what the judge saw of the case (id, input, output, expected behaviour, "
                           "rubric, dimension).",
            "case_id": "The eval case: -> judge_calibration_cases, judge_labels, consensus_labels.case_id.",
            "dimension": "The dimension judged.",
            "verdict": "Pass or Fail; NULL when the reply was unparseable.",
            "critique": "The judge's critique, when the reply had one.",
            "raw_reply": "The reply's text as received.",
            "prompt_tokens": "Prompt tokens the endpoint reported.",
            "completion_tokens": "Completion tokens the endpoint reported.",
            "created_at": "When the reply was stored.",
        },
    ),
    "judge_calibrations": (
        "One row per calibration of a (dimension, model, prompt) against agreed human consensus labels: figures "
        "on the test part and whether it is calibrated. The id hashes what was calibrated on which labels, so the "
        "same calibration run again replaces its row.",
        {
            "calibration_id": "cal-<hash> (primary key).",
            "dimension": "The dimension.",
            "model": "Judge model.",
            "prompt_sha256": "The prompt variant chosen on the tune part (its sha256).",
            "variant": "That variant's name (default, or <dimension>.<variant>.md's variant).",
            "n_tune": "Tune cases with a parseable verdict of the chosen variant.",
            "n_test": "Test cases with a parseable verdict.",
            "agreement": "Test part: share of cases where judge and human agree, 0..1.",
            "kappa": "Test part: Cohen's kappa; NULL when undefined.",
            "tpr": "Test part: share of human Fails the judge also fails (Fail is positive).",
            "tnr": "Test part: share of human Passes the judge passes.",
            "calibrated": "Test agreement >= EVALFLOW_JUDGE_MIN_AGREEMENT (0.85), kappa >= EVALFLOW_JUDGE_MIN_KAPPA "
                          "(0.6), >= EVALFLOW_JUDGE_MIN_TEST_CASES scored cases, and the gate open.",
            "gate_open": "The dimension's automation gate (label_gates.gate_open) at calibration time.",
            "at": "When it was calibrated.",
        },
    ),
    "judge_calibration_cases": (
        "One row per case of a calibration: its split and the human and judge verdicts. Replaced with its "
        "calibration.",
        {
            "calibration_id": "-> judge_calibrations.",
            "case_id": "The eval case: -> consensus_labels.case_id.",
            "split": "tune, test or holdout (20% of cases by a hash of case_id, never sent to the judge).",
            "human": "The agreed human consensus verdict, Pass or Fail.",
            "judge": "The chosen variant's verdict; NULL for holdout cases and unparseable replies.",
        },
    ),
    "judge_labels": (
        "One row per unlabelled case and dimension that a calibrated judge labelled: the latest calibrated "
        "judge's verdict. Holdout cases are never judge-labelled. Upserted per run.",
        {
            "case_id": "The eval case (case-<hash of trace_id>).",
            "trace_id": "-> redacted_traces, eval_candidates.",
            "dimension": "The dimension.",
            "verdict": "Pass or Fail.",
            "critique": "The judge's critique.",
            "model": "Judge model.",
            "prompt_sha256": "The prompt template's sha256.",
            "calibration_id": "The calibration that allowed it: -> judge_calibrations.",
            "labelled_at": "When it was written.",
        },
    ),
    "eval_cases": (
        "The current eval cases, one per production trace with an agreed human verdict on at least one dimension, "
        "in the eval-case schema (docs/eval-cases.md). Rebuilt whole from the labels, the judge and the redacted "
        "traces at each run, in one transaction; the versions that never change are the lake's snapshots.",
        {
            "case_id": "case-<16 hex of a hash of trace_id> (primary key); decides the split.",
            "case_json": "The whole case as canonical JSON (sorted keys, no white space); "
                         "e.g. case_json->>'$.labels.accuracy.verdict'.",
            "split": "dev or holdout (20% by a hash of case_id; the holdout never reaches the judge).",
            "intent_id": "-> intent_catalog, when the trace was sampled with one.",
            "risk_level": "The agreed pass-1 risk level (low, medium, high); NULL when disputed or absent.",
            "safety": "In the safety edge set: prompt-injection or policy-violation signals, a Fail on safety, "
                      "or a 'safety' tag.",
            "source_date": "UTC date of the trace.",
            "updated_at": "When the case's content last changed (an unchanged case keeps its time across rebuilds).",
            "case_sha256": "sha256 of case_json: what snapshot manifests build on.",
        },
    ),
    # -- drift (the weekly report) ---------------------------------------------------------
    "drift_history": (
        "One row per week, drift signal and baseline: the signal's value, its threshold and whether it breached. "
        "What the drift report's trend charts read. A week's rows are replaced when its report is computed again.",
        {
            "week_start": "Monday of the week (weeks run Monday to Sunday, UTC).",
            "signal": "intent_mix, embedding, system_prompt, tool_schema, prompt_template, retrieval, kb_changed_docs, "
                      "kb_new_docs, staleness, version_age, safety_share, safety_coverage, safety_pass_rate, "
                      "score_inflation, stall, traffic (docs/drift.md).",
            "baseline": "golden (the golden version's recorded production baseline), previous_week, or none.",
            "value": "The signal's value (JS bits, MMD^2, a share, a mean overlap, a count, days...); NULL when it "
                     "could not be computed (the detail says why).",
            "threshold": "The threshold it was compared with (for intent_mix: max(floor, the null quantile at the "
                         "week's size)); NULL when none applies.",
            "severity": "WARN or ERROR when it breached; NULL otherwise.",
            "detail": "One line a person reads: figures, ids, hashes and intent names, never trace text.",
            "computed_at": "When the week's report was computed.",
        },
    ),
    "alerts": (
        "One row per drift breach: a signal over its threshold in a week against one baseline (and the nightly "
        "prompt-hash check's, signals *_nightly). Replaced with its week's report; an unchanged alert keeps its "
        "raised_at and delivered_at.",
        {
            "alert_id": "alert-<16 hex of a hash of week_start, signal, baseline> (primary key): stable across "
                        "re-runs, so a receiver de-duplicates on it.",
            "week_start": "Monday of the week (the nightly check: the day it checked).",
            "signal": "The signal that breached (as drift_history.signal).",
            "baseline": "golden or previous_week.",
            "severity": "WARN or ERROR.",
            "value": "The signal's value.",
            "threshold": "The threshold it crossed.",
            "detail": "One line: what moved, by how much, against what.",
            "raised_at": "When it was first raised with this value and detail.",
            "delivered_at": "When the webhook sensor delivered it (EVALFLOW_ALERT_WEBHOOK_URL); NULL until then.",
        },
    ),
    "drift_reports": (
        "One row per week with a drift report: where its HTML report is, its markdown summary and the whole report as "
        "JSON (every signal's data). Replaced when the week is computed again.",
        {
            "week_start": "Monday of the week (primary key).",
            "html_path": "The offline HTML report (<data>/reports/drift/<week_start>/report.html).",
            "markdown": "The summary a person reads in a minute.",
            "report_json": "The report: figures and each signal's value, threshold, severity, detail and data "
                           "(per-intent contributions, per-case overlaps, p-values...).",
            "computed_at": "When it was computed.",
        },
    ),
    # -- contamination (evalflow contamination, the contamination_report asset) -------------
    "contamination_runs": (
        "One row per contamination check: how many cases were checked and found, per method and corpus, against "
        "which corpora, with which thresholds. A re-run of the same run id replaces its row (docs/contamination.md).",
        {
            "run_id": "The check (primary key): -> contamination_findings.run_id.",
            "checked_at": "When it ran.",
            "cases": "Cases checked.",
            "contaminated": "Cases found by at least one method in at least one corpus.",
            "split_leaks": "Near-duplicate case pairs across split boundaries (rows with corpus_kind = 'dataset').",
            "by_method": "JSON {method: cases found by it}: exact, ngram, substring, minhash, embedding.",
            "by_corpus": "JSON {corpus: cases found in it}.",
            "corpora": "JSON list of the corpora: name, kind, path, fields, documents, segments, how they were "
                       "embedded (full, candidates, off).",
            "config": "JSON: every threshold and cap the run used.",
            "embedder": "JSON: the embedding model, version and backend; NULL when the embedding method was off.",
            "report_sha256": "sha256 of the whole report (sorted keys): two runs with the same findings match.",
        },
    ),
    "contamination_findings": (
        "One row per case, corpus document and method that reached the method's threshold: the evidence of a "
        "contaminated case, ids and scores only (never text). Split leaks are rows whose corpus is the other split.",
        {
            "run_id": "-> contamination_runs.",
            "case_id": "The eval case: -> eval_cases.case_id.",
            "split": "For a split leak, the case's own split (holdout, dev, golden...); NULL for a corpus finding.",
            "corpus": "The registered corpus's name, or the other split for a split leak.",
            "corpus_kind": "training, fine_tuning, few_shot, judge_prompt, public_benchmark, trace_prompts, or "
                           "dataset (a split leak).",
            "doc_id": "The document in the corpus (its id field or row number); the other case for a split leak.",
            "method": "exact, ngram, substring, minhash or embedding.",
            "score": "The method's score: 1 for exact; shared 13-gram share; share of probes found; estimated "
                     "Jaccard; cosine.",
            "checked_at": "When the run checked it.",
        },
    ),
}

# ----------------------------------------------------------------------------- views
@dataclass(frozen=True)
class ViewQuery:
    reads: tuple[str, ...]  # warehouse tables it reads; created only when all exist with every documented column
    sql: str


VIEW_QUERIES: dict[str, ViewQuery] = {
    "v_candidates": ViewQuery(
        ("eval_candidates", "redacted_traces", "intent_catalog", "annotation_batches"),
        """
SELECT e.trace_id, e.session_id, e.event_date, e."timestamp",
       r.user_query, r.output, r.messages,
       e.intent_id, c.name AS intent_name,
       e.failure_modes, e.difficulty_bucket, e.stratum, e.time_bucket, e.reason, e.pick_order,
       e.status, e.stale_reason, e.sample_run_id, e.sampled_at,
       e.batch_id, b.path AS batch_path
FROM eval_candidates AS e
LEFT JOIN redacted_traces AS r ON r.trace_id = e.trace_id
LEFT JOIN intent_catalog AS c ON c.intent_id = e.intent_id
LEFT JOIN annotation_batches AS b ON b.batch_id = e.batch_id
"""),
    "v_intent_share_by_day": ViewQuery(
        ("intent_assignments", "intent_catalog"),
        """
SELECT a.event_date, a.intent_id, c.name AS intent_name,
       count(*) AS traces,
       count(*) FILTER (WHERE a.low_confidence) AS low_confidence_traces,
       CAST(sum(count(*)) OVER (PARTITION BY a.event_date) AS BIGINT) AS day_traces,
       CAST(count(*) AS DOUBLE) / sum(count(*)) OVER (PARTITION BY a.event_date) AS share
FROM intent_assignments AS a
LEFT JOIN intent_catalog AS c ON c.intent_id = a.intent_id
GROUP BY a.event_date, a.intent_id, c.name
"""),
    "v_daily_traffic": ViewQuery(
        ("redaction_runs", "redacted_traces", "trace_signals", "redaction_quarantine", "pii_audit", "quarantine"),
        """
WITH days AS (SELECT DISTINCT event_date FROM redaction_runs),
traffic AS (
    SELECT r.event_date, count(*) AS traces,
           count(*) FILTER (WHERE r.status = 'error') AS errors,
           count(s.trace_id) AS traces_with_signals,
           count(*) FILTER (WHERE s.is_failure) AS failed,
           median(r.latency_ms) AS median_latency_ms,
           sum(r.cost_usd) AS cost_usd
    FROM redacted_traces AS r
    LEFT JOIN (SELECT DISTINCT trace_id, is_failure FROM trace_signals) AS s ON s.trace_id = r.trace_id
    GROUP BY r.event_date),
held AS (SELECT event_date, count(*) AS n FROM redaction_quarantine GROUP BY event_date),
conflicts AS (SELECT event_date, count(*) AS n FROM quarantine WHERE event_date IS NOT NULL GROUP BY event_date),
pii AS (SELECT event_date, sum(detections) AS n FROM pii_audit GROUP BY event_date)
SELECT d.event_date,
       coalesce(t.traces, 0) AS traces,
       coalesce(t.errors, 0) AS errors,
       coalesce(t.traces_with_signals, 0) AS traces_with_signals,
       CASE WHEN t.traces_with_signals > 0 THEN t.failed END AS failed,
       CASE WHEN t.traces_with_signals > 0 THEN 100.0 * t.failed / t.traces_with_signals END AS failed_pct,
       t.median_latency_ms, t.cost_usd,
       coalesce(h.n, 0) AS redaction_quarantined,
       coalesce(q.n, 0) AS ingest_conflicts,
       CAST(coalesce(p.n, 0) AS BIGINT) AS pii_detections
FROM days AS d
LEFT JOIN traffic AS t ON t.event_date = d.event_date
LEFT JOIN held AS h ON h.event_date = d.event_date
LEFT JOIN conflicts AS q ON q.event_date = d.event_date
LEFT JOIN pii AS p ON p.event_date = d.event_date
"""),
    "v_failure_clusters": ViewQuery(
        ("failure_clusters", "failure_cluster_members", "redacted_traces", "intent_catalog"),
        """
SELECT f."rank", f.failure_cluster_id, f.category, f.intent_id,
       coalesce(c.name, f.intent_name) AS intent_name,
       f.traces, f.share_of_failures, f.severity, f.score,
       x.example_trace_id, r.user_query AS example_query,
       f.built_at
FROM failure_clusters AS f
LEFT JOIN intent_catalog AS c ON c.intent_id = f.intent_id
LEFT JOIN (SELECT m.failure_cluster_id, min(m.trace_id) AS example_trace_id
           FROM failure_cluster_members AS m
           JOIN redacted_traces AS t ON t.trace_id = m.trace_id
           WHERE t.user_query IS NOT NULL
           GROUP BY m.failure_cluster_id) AS x ON x.failure_cluster_id = f.failure_cluster_id
LEFT JOIN redacted_traces AS r ON r.trace_id = x.example_trace_id
"""),
    "v_consensus_labels": ViewQuery(
        ("consensus_labels", "redacted_traces", "eval_candidates", "intent_catalog"),
        """
SELECT c.batch_id, c.item_id, c.origin, c.trace_id, c.case_id,
       c.dimension, c.value, c.status, c.method, c.ratings, c.agreement, c.majority_value,
       e.intent_id, i.name AS intent_name,
       r.event_date, r.user_query, r.output,
       c.updated_at
FROM consensus_labels AS c
LEFT JOIN redacted_traces AS r ON r.trace_id = c.trace_id
LEFT JOIN eval_candidates AS e ON e.trace_id = c.trace_id
LEFT JOIN intent_catalog AS i ON i.intent_id = e.intent_id
"""),
}

VIEWS: dict[str, Described] = {
    "v_candidates": (
        "Each eval candidate (eval_candidates) with its redacted text (redacted_traces), current intent name, "
        "failure modes, difficulty, stratum, reason, status, and annotation batch with its folder. "
        "Exists once a batch has been recorded.",
        {
            "trace_id": "-> redacted_traces.",
            "session_id": "Pseudonymised session.",
            "event_date": "The trace's day.",
            "timestamp": "Trace start.",
            "user_query": "The user's request; redacted. NULL when the trace is no longer in redacted_traces.",
            "output": "The answer; redacted.",
            "messages": "Conversation as JSON; redacted.",
            "intent_id": "Intent when picked.",
            "intent_name": "That intent's name in the current catalog; NULL when it has left the catalog.",
            "failure_modes": "Failure modes when picked.",
            "difficulty_bucket": "easy, medium, hard.",
            "stratum": "intent=...|failure=...|difficulty=...",
            "time_bucket": "First day of its 7-day time bucket.",
            "reason": "Why it was picked.",
            "pick_order": "Order within its sampling run.",
            "status": "candidate, exported or retired.",
            "stale_reason": "Why it went stale, if it did.",
            "sample_run_id": "-> sample_runs.",
            "sampled_at": "The sampling run.",
            "batch_id": "-> annotation_batches; NULL until exported.",
            "batch_path": "Folder of that annotation batch.",
        },
    ),
    "v_intent_share_by_day": (
        "Per day and intent of the current clustering window: traces and share of that day's traces with an "
        "intent, with the intent name. Covers the 28-day window of intent_assignments.",
        {
            "event_date": "Day.",
            "intent_id": "-> intent_catalog.",
            "intent_name": "The intent's name.",
            "traces": "Traces of that day in this intent.",
            "low_confidence_traces": "Of which low-confidence assignments.",
            "day_traces": "Traces of that day with an intent (embedded, in the window).",
            "share": "traces / day_traces (0..1); the shares of a day sum to 1.",
        },
    ),
    "v_daily_traffic": (
        "One row per redacted day: traffic, errors, detected failures, cost and latency, traces held back by "
        "redaction, ingest conflicts and PII detections.",
        {
            "event_date": "Day (each day in redaction_runs).",
            "traces": "Redacted traces.",
            "errors": "Traces with status = 'error'.",
            "traces_with_signals": "Traces with a trace_signals row (the signals window, plus older days left "
                                   "from earlier runs).",
            "failed": "Traces with any failure mode; NULL when signals never covered the day.",
            "failed_pct": "100 x failed / traces_with_signals.",
            "median_latency_ms": "Median latency.",
            "cost_usd": "Total cost.",
            "redaction_quarantined": "Traces held back because their redaction failed (redaction_quarantine).",
            "ingest_conflicts": "Ingest quarantine rows for this day: a trace re-sent with different content "
                                "(other rejected lines have no trace day).",
            "pii_detections": "PII spans replaced (pii_audit).",
        },
    ),
    "v_failure_clusters": (
        "The current failure clusters by rank, with the current intent name and one example request (redacted).",
        {
            "rank": "1 = highest score.",
            "failure_cluster_id": "-> failure_clusters.",
            "category": "Failure category.",
            "intent_id": "-> intent_catalog.",
            "intent_name": "Current catalog name, else the name when the taxonomy was built.",
            "traces": "Failed traces in the cluster.",
            "share_of_failures": "traces / all failed traces in the window.",
            "severity": "Mean severity of its traces.",
            "score": "share_of_failures x severity.",
            "example_trace_id": "The member trace with the smallest trace_id that has a user_query.",
            "example_query": "Its user_query; redacted.",
            "built_at": "The taxonomy run.",
        },
    ),
    "v_consensus_labels": (
        "Each consensus label (consensus_labels) with its trace's redacted request and answer and the intent the "
        "trace had when it was sampled. Gold items have no trace: their trace columns are NULL. Exists once "
        "consensus_labels has been built.",
        {
            "batch_id": "-> annotation_batches.",
            "item_id": "The item, as in labels.item_id.",
            "origin": "trace or gold.",
            "trace_id": "-> redacted_traces; NULL for gold items.",
            "case_id": "The eval case: -> judge_calibration_cases, judge_labels.",
            "dimension": "A pass-2 dimension, or risk_level (pass 1).",
            "value": "The consensus value (Pass / Fail, or low / medium / high).",
            "status": "agreed, disputed or feedback_only; only agreed counts as a label.",
            "method": "unanimous, majority, single or expert.",
            "ratings": "Annotators' ratings counted.",
            "agreement": "Share of those ratings equal to the majority (or to the expert's value).",
            "majority_value": "What the annotators' majority said; kept when an expert overrides it.",
            "intent_id": "Intent when the trace was sampled (eval_candidates.intent_id).",
            "intent_name": "That intent's name in the current catalog; NULL when it has left the catalog.",
            "event_date": "The trace's day.",
            "user_query": "The user's request; redacted.",
            "output": "The answer that was labelled; redacted.",
            "updated_at": "The run that built consensus_labels.",
        },
    ),
}


# ----------------------------------------------------------------------------- applying it
def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _objects(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, tuple[str, str | None]],
                                                      dict[tuple[str, str], str | None]]:
    """({name: (kind, comment)} of the warehouse's tables and views, {(name, column): comment}).

    Only the connected database's main schema: a write may have the raw store attached.
    """
    objects: dict[str, tuple[str, str | None]] = {}
    for name, comment in con.execute(
            "SELECT table_name, comment FROM duckdb_tables() "
            "WHERE database_name = current_database() AND schema_name = 'main'").fetchall():
        objects[name] = ("TABLE", comment)
    for name, comment in con.execute(
            "SELECT view_name, comment FROM duckdb_views() "
            "WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal").fetchall():
        objects[name] = ("VIEW", comment)
    columns = {(t, c): comment for t, c, comment in con.execute(
        "SELECT table_name, column_name, comment FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = 'main'").fetchall()}
    return objects, columns


def _comment(con: duckdb.DuckDBPyConnection, name: str, kind: str, described: Described,
             current: str | None, columns: dict[tuple[str, str], str | None]) -> None:
    """COMMENT ON the object and its columns where the text differs from the catalog's."""
    description, column_text = described
    if current != description:
        con.execute(f"COMMENT ON {kind} {_ident(name)} IS {_literal(description)}")
    for (table, column), comment in columns.items():
        wanted = column_text.get(column) if table == name else None
        if wanted is not None and comment != wanted:
            con.execute(f"COMMENT ON COLUMN {_ident(name)}.{_ident(column)} IS {_literal(wanted)}")


def _view_ready(name: str, tables: dict[str, set[str]]) -> bool:
    """Whether every table the view reads exists with every documented column (so it binds)."""
    return all(t in tables and set(TABLES[t][1]) <= tables[t] for t in VIEW_QUERIES[name].reads)


def refresh_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """(Re)create each view whose sources are all there, with its comments; drop one whose are not
    (it would fail to bind). Runs inside the caller's transaction. Returns the views present."""
    objects, columns = _objects(con)
    tables: dict[str, set[str]] = {}
    for (table, column) in columns:
        if objects.get(table, ("",))[0] == "TABLE":
            tables.setdefault(table, set()).add(column)
    present = []
    for name, query in VIEW_QUERIES.items():
        if not _view_ready(name, tables):
            if name in objects:
                con.execute(f"DROP VIEW IF EXISTS {_ident(name)}")
            continue
        sql = query.sql.strip()
        # DuckDB stores a view's query re-printed: compare with the same printing to skip a no-op.
        printed = con.execute("SELECT json_deserialize_sql(json_serialize_sql(?))", [sql]).fetchall()[0][0]
        stored = con.execute("SELECT sql FROM duckdb_views() WHERE database_name = current_database() "
                             "AND schema_name = 'main' AND view_name = ?", [name]).fetchall()
        if not stored or stored[0][0] != f"CREATE VIEW {name} AS {printed};":
            con.execute(f"CREATE OR REPLACE VIEW {_ident(name)} AS {sql}")
            view_comment, view_columns = None, {}
            for (table, column) in con.execute(
                    "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database() "
                    "AND schema_name = 'main' AND table_name = ?", [name]).fetchall():
                view_columns[(table, column)] = None
        else:
            view_comment = objects[name][1]
            view_columns = {key: value for key, value in columns.items() if key[0] == name}
        _comment(con, name, "VIEW", VIEWS[name], view_comment, view_columns)
        present.append(name)
    return present


def apply_catalog(con: duckdb.DuckDBPyConnection, tables: Iterable[str]) -> None:
    """Comment these warehouse tables (those that exist) and their columns, then refresh the views.

    Called by each store's writer inside its write transaction, after the write: a table
    re-created by CREATE OR REPLACE lost its comments and gets them back in the same commit.
    Only text that differs is written, so a repeated write adds nothing to the catalog.
    """
    objects, columns = _objects(con)
    for name in tables:
        if name not in TABLES:
            raise KeyError(f"{name} is not described in evalflow.lib.common.catalog.TABLES")
        kind, comment = objects.get(name, ("", None))
        if kind == "TABLE":
            _comment(con, name, "TABLE", TABLES[name], comment, columns)
    refresh_views(con)
