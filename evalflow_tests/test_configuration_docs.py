"""docs/configuration.md lists exactly the settings the code reads."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIABLE = re.compile(r"EVALFLOW_[A-Z0-9_]+")


def test_every_setting_the_code_reads_is_documented_and_nothing_else():
    in_code = {name for path in (ROOT / "evalflow").rglob("*.py") for name in VARIABLE.findall(path.read_text())}
    documented = set(VARIABLE.findall((ROOT / "docs" / "configuration.md").read_text()))
    assert in_code - documented == set(), "read by the code, missing from docs/configuration.md"
    assert documented - in_code == set(), "documented, but no code reads it"
    assert len(in_code) >= 20  # the scan itself found the settings
