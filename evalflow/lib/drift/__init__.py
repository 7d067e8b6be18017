"""The weekly drift watch: how far production has moved from what the golden set was drawn from,
and from the week before.

- config.py: DriftConfig (every threshold and severity, with its reason) and load_drift_config;
- inputs.py: Traffic, GoldenBaseline, WeekInputs, RunReads; load_traffic, load_golden,
  load_run_reads, load_week_inputs (warehouse + lake reads);
- baseline.py: production_baseline, recorded in a golden version's manifest at promotion;
- stats.py: JS/KL with per-category contributions, the multinomial null, the sessions' design
  effect, the MMD permutation test, Fisher's exact test;
- retrieval.py: the knowledge-base snapshot of a window and BM25 (bm25s) over it;
- report.py: compute_week (every signal of a week), template_hash_check (the nightly check),
  SignalResult and WeekReport;
- render.py: the offline HTML report (inline SVG charts) and the markdown summary;
- store.py: the tables drift_history, alerts and drift_reports;
- weekly.py: what the assets run (report_weeks, audit_prompt_hashes), checks.py: the asset
  checks' grouping of signals, webhook.py: alert delivery (the sensor).

Nothing here imports Dagster; this module imports nothing, so the code location can read the
submodules it needs without loading numpy or scipy.
"""
