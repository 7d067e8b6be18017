"""The code location: every Dagster object under evalflow/defs/, loaded by convention."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    from evalflow.lib.common.settings import validate_environment

    # A bad setting stops the code location from loading, with one line naming the variable,
    # instead of failing the first step that reads it minutes into a run.
    validate_environment()
    # path_within_project is the package folder; Dagster loads its defs/ subfolder.
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
