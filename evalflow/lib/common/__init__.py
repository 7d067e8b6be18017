"""What every stage shares: `settings` (every EVALFLOW_* variable, range-checked), `warehouse`
(a DuckDB file: connections that wait for other processes' locks, transactions), `clock`,
`timestamps`, `report` (markdown tables for Dagster metadata), `processes` (PID liveness, file
locks), `gcpause`."""
