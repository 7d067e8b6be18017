"""What every stage shares: `settings` (every EVALFLOW_* variable, range-checked), `warehouse`
(a DuckDB file: connections that wait for other processes' locks, transactions), `clock`,
`timestamps`, `report` (markdown tables for Dagster metadata), `processes` (PID liveness, file
locks), `catalog` (the description of every warehouse table, column and view: DuckDB comments,
the analyst views, Dagster column schemas), `dagster_metadata` (what the Dagster UI shows about
a table, without Dagster: columns read from the DDL, per-day and table row counts), `gcpause`."""
