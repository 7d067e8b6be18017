"""Kill drill for the label import: a process importing the drop folder is SIGKILLed at several
moments (while it parses and redacts a file, while it writes one); the warehouse is left
consistent, and the next import finishes with exactly the labels of an import never killed.

Consistent means: every file label_files records has all its labels (each file is one
transaction), no label comes from a file label_files does not record, and nothing else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from evalflow_tests.test_labels_pipeline import World, build_world, copy_world, import_incoming

# The child imports the drop folder file by file, saying which file it starts, so the drill can
# kill it inside the second file's work.
KILL_CHILD = """
import sys
from evalflow.lib.common.clock import utcnow
from evalflow.lib.common.settings import load_settings
from evalflow.lib.labels.importer import import_parts, incoming_files, manifest_index
from evalflow.lib.labels.store import import_label_file
from evalflow.lib.redact.store import analyst_warehouse

settings = load_settings()
warehouse = analyst_warehouse(settings)
pseudonymize, redact_texts = import_parts(settings)
manifests = manifest_index(settings.data_dir / "annotation")
for index, path in enumerate(incoming_files(settings.data_dir / "labels" / "incoming")):
    print(f"start {index}", flush=True)
    import_label_file(warehouse, path, manifests, pseudonymize, redact_texts, utcnow())
print("done", flush=True)
"""


# One pseudonym key for every copy of the world (each would otherwise create its own), so the
# drilled import and the reference name annotators, and so label ids, the same way.
KEY = "kill-drill-key"


@pytest.fixture(scope="module")
def unimported(tmp_path_factory) -> World:
    """The small world of test_labels_pipeline.py with its exports in the drop folder, not imported."""
    root = tmp_path_factory.mktemp("labels-kill") / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVALFLOW_DATA_DIR", str(root))
        return build_world(root)


@pytest.fixture(scope="module")
def reference(unimported, tmp_path_factory) -> set[tuple]:
    """The labels of an import that nobody killed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVALFLOW_PSEUDONYM_KEY", KEY)
        world = copy_world(unimported, tmp_path_factory.mktemp("labels-reference") / "data", patch)
        import_incoming(world)
        return _labels(world)


def _labels(world: World) -> set[tuple]:
    with world.warehouse.connect(read_only=True) as con:
        return set(con.execute("SELECT label_id, value, file_sha256 FROM labels").fetchall())


def _consistent(world: World) -> None:
    with world.warehouse.connect(read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "label_files" not in tables:
            assert "labels" not in tables or con.execute("SELECT count(*) FROM labels").fetchone()[0] == 0
            return
        recorded = dict(con.execute("SELECT file_sha256, labels FROM label_files").fetchall())
        per_file = dict(con.execute("SELECT file_sha256, count(*) FROM labels GROUP BY 1").fetchall())
    assert set(per_file) <= set(recorded), "labels from a file label_files does not record: a torn import"
    for sha, n in recorded.items():
        assert per_file.get(sha, 0) == n, f"file {sha[:12]} recorded with {n} labels, {per_file.get(sha, 0)} stored"


@pytest.mark.parametrize("delay_s", [0.0, 0.3, 0.7, 1.2])
def test_an_import_killed_at_any_moment_leaves_the_warehouse_consistent_and_the_next_finishes(
        unimported, reference, tmp_path, monkeypatch, delay_s):
    monkeypatch.setenv("EVALFLOW_PSEUDONYM_KEY", KEY)
    world = copy_world(unimported, tmp_path / "data", monkeypatch)
    child = subprocess.Popen([sys.executable, "-c", KILL_CHILD], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, EVALFLOW_DATA_DIR=str(world.data_dir)))
    # Into the second file: the first is committed, the second is being parsed, redacted or written.
    line = ""
    while line not in ("start 1", "done"):
        line = child.stdout.readline().strip()
        assert line or child.poll() is None, "the import child died before its second file"
    time.sleep(delay_s)
    os.kill(child.pid, signal.SIGKILL)  # no cleanup, no rollback: a real crash
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, "the import finished before the kill: nothing was drilled"

    _consistent(world)
    import_incoming(world)  # the next run, with no hand fix
    _consistent(world)
    assert _labels(world) == reference
