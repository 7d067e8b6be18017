"""Pure logic: functions over polars/duckdb/numpy. No dagster import anywhere under lib/."""
