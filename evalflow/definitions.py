"""The code location: every Dagster object under evalflow/defs/, loaded by convention."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    # path_within_project is the package folder; Dagster loads its defs/ subfolder.
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
