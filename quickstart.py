#!/usr/bin/env python3
"""Set up the project and run it, with nothing but Python 3.11 on the machine.

  python3 quickstart.py demo    .venv + install + simulate 30 days + materialize everything
  python3 quickstart.py test    .venv + install + ruff + the whole test suite
  python3 quickstart.py ui      the Dagster UI on the same instance and warehouse

The virtual environment lives in .venv/ in this folder. It is (re)installed only when
pyproject.toml changed since the last install, so repeated runs start at once.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".evalflow-installed"


def _run(command: list[str], **kwargs) -> int:
    print("+ " + " ".join(str(c) for c in command), flush=True)
    return subprocess.call([str(c) for c in command], cwd=ROOT, **kwargs)


def ensure_environment() -> None:
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"quickstart: Python 3.11 is required, this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if not (BIN / "python").exists():
        if _run([sys.executable, "-m", "venv", VENV]) != 0:
            sys.exit("quickstart: could not create the virtual environment in .venv")
    pip = [BIN / "python", "-m", "pip", "--disable-pip-version-check"]
    if _run([*pip, "install", "--quiet", "-e", ".[test]"]) != 0:
        sys.exit("quickstart: installing the project failed (see pip's message above)")
    STAMP.write_text(wanted)


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DAGSTER_HOME", str(ROOT))  # dagster.yaml here: the embedded instance
    env.setdefault("HF_HUB_OFFLINE", "1")  # models come from packages, never from a hub
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("GX_ANALYTICS_ENABLED", "false")
    return env


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "demo"
    ensure_environment()
    env = environment()
    if command == "demo":
        return _run([BIN / "evalflow", "demo", *argv[2:]], env=env)
    if command == "test":
        # The linter first (pyproject.toml's [tool.ruff]): a style or bug finding fails the run.
        if _run([BIN / "ruff", "check", "."], env=env) != 0:
            print("quickstart: ruff check failed (see above; `.venv/bin/ruff check --fix .` fixes some)",
                  file=sys.stderr)
            return 1
        code = _run([BIN / "python", "-m", "pytest", *argv[2:]], env=env)
        if code == 5:  # pytest's "no tests collected" must fail, not pass quietly
            print("quickstart: pytest collected no tests", file=sys.stderr)
            return 1
        return code
    if command == "ui":
        # Create the instance once, under evalflow's lock, and clear runs a killed process left
        # STARTED (they would hold the warehouse pool's slot), before the UI and daemon start.
        _run([BIN / "evalflow", "doctor", "--fix"], env=env)
        return _run([BIN / "dagster", "dev", "-h", "127.0.0.1", "-p", "3000", *argv[2:]], env=env)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
