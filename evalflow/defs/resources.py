"""The warehouse resource: every asset writes through it (no DuckDB IO manager, see docs/architecture.md)."""


from dataclasses import replace
from pathlib import Path

import dagster as dg

from evalflow.lib.common.settings import Settings, load_settings
from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.ingest.store import raw_store
from evalflow.lib.redact.store import analyst_warehouse

# Assets that write the DuckDB file share this pool; dagster.yaml limits it to one at a time,
# because DuckDB allows a single writer process per file.
WAREHOUSE_POOL = "duckdb_warehouse"


class WarehouseResource(dg.ConfigurableResource):
    """Where the data lives. Empty data_dir means EVALFLOW_DATA_DIR (default ./data).

    Two DuckDB files: the raw store (data/raw/raw.duckdb) and the warehouse
    (data/warehouse/evalflow.duckdb). Raw text never reaches the warehouse.
    """

    data_dir: str = ""

    def settings(self) -> Settings:
        settings = load_settings()
        if self.data_dir:
            settings = replace(settings, data_dir=Path(self.data_dir).expanduser().resolve())
        return settings

    def raw_store(self) -> Warehouse:
        """Traces as they arrived, PII included: only ingestion and redaction open it."""
        return raw_store(self.settings())

    def warehouse(self) -> Warehouse:
        """What analysts, annotators, reports and the UI read: no raw text."""
        return analyst_warehouse(self.settings())


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"warehouse": WarehouseResource()})
