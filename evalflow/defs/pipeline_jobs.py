"""The jobs `evalflow run` (and the demo) launches, one per phase, so its runs carry names in the
UI (not `__ephemeral_asset_job__`) and can be re-launched from it.

Dagster runs one partitions definition per run, so the graph goes in three phases: landing, the
daily partitions (one single-run backfill over the days found), and everything downstream of
them. evalflow_tests/test_cli_runner_jobs.py checks these selections against the phases the
runner derives from the asset graph, so an asset added later cannot fall between them.
"""

import dagster as dg

# Phase name (cli/runner.py) -> job name.
PHASE_JOBS = {"landing": "landing_job", "daily partitions": "daily_partitions_job", "downstream": "downstream_job",
              "weekly reports": "weekly_reports_job"}

DAILY_ASSETS = ("raw_traces", "redacted_traces", "pii_audit", "trace_embeddings")
DOWNSTREAM_ASSETS = ("intent_clusters", "intent_catalog", "trace_signals", "failure_taxonomy", "eval_candidates",
                     "annotation_queue", "labels", "consensus_labels", "label_agreement", "judge_calibration",
                     "judge_labels", "eval_cases", "golden_set", "rolling_set", "lake_tables", "contamination_report",
                     "prompt_hash_audit")
WEEKLY_ASSETS = ("drift_report",)

daily_partitions_job = dg.define_asset_job(
    "daily_partitions_job", selection=dg.AssetSelection.assets(*DAILY_ASSETS),
    description="Every daily asset over a range of days in one run: rebuild raw_traces from the stage, redact, "
                "audit PII, embed. `evalflow run` launches it over the days found in the stage.")
downstream_job = dg.define_asset_job(
    "downstream_job", selection=dg.AssetSelection.assets(*DOWNSTREAM_ASSETS),
    description="Everything downstream of the daily assets, over the 28-day window: intents, signals, the failure "
                "taxonomy, a new stratified sample and its annotation batch, then whatever labels came back: import, "
                "consensus, agreement, judge calibration and judge labels. `evalflow run` launches it last.")

weekly_reports_job = dg.define_asset_job(
    "weekly_reports_job", selection=dg.AssetSelection.assets(*WEEKLY_ASSETS),
    description="The weekly reports over a range of weeks (Monday to Sunday, UTC) in one run: drift_report. "
                "`evalflow run` launches it after downstream_job, over the weeks that hold traces.")
