"""The warehouse resource: every asset writes through it (no DuckDB IO manager, see DESIGN.md)."""


from dataclasses import replace
from pathlib import Path

import dagster as dg

from evalflow.lib.settings import Settings, load_settings
from evalflow.lib.warehouse import Warehouse

# Assets that write the DuckDB file share this pool; dagster.yaml limits it to one at a time,
# because DuckDB allows a single writer process per file.
WAREHOUSE_POOL = "duckdb_warehouse"


class WarehouseResource(dg.ConfigurableResource):
    """Where the data lives. Empty data_dir means EVALFLOW_DATA_DIR (default ./data)."""

    data_dir: str = ""

    def settings(self) -> Settings:
        settings = load_settings()
        if self.data_dir:
            settings = replace(settings, data_dir=Path(self.data_dir).expanduser().resolve())
        return settings

    def warehouse(self) -> Warehouse:
        warehouse = Warehouse(self.settings().warehouse_path)
        warehouse.ensure_schema()
        return warehouse


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"warehouse": WarehouseResource()})
