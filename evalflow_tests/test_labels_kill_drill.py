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


def _start_child(world: World) -> subprocess.Popen:
    """The import child, once it has started the second file (the first is committed)."""
    child = subprocess.Popen([sys.executable, "-c", KILL_CHILD], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, EVALFLOW_DATA_DIR=str(world.data_dir)))
    line = ""
    while line not in ("start 1", "done"):
        line = child.stdout.readline().strip()
        assert line or child.poll() is None, "the import child died before its second file"
    return child


@pytest.fixture(scope="module")
def second_file_s(unimported, tmp_path_factory) -> float:
    """Seconds the child takes from starting the second file to finishing, on this machine now:
    the drill's kill delays are fractions of it, so a faster machine is still killed mid-import."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVALFLOW_PSEUDONYM_KEY", KEY)
        world = copy_world(unimported, tmp_path_factory.mktemp("labels-timing") / "data", patch)
        child = _start_child(world)
        started = time.perf_counter()
        child.communicate(timeout=120)
        return time.perf_counter() - started


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 0.85])
def test_an_import_killed_at_any_moment_leaves_the_warehouse_consistent_and_the_next_finishes(
        unimported, reference, second_file_s, tmp_path, monkeypatch, fraction):
    monkeypatch.setenv("EVALFLOW_PSEUDONYM_KEY", KEY)
    delay_s = fraction * second_file_s
    for attempt in range(4):
        world = copy_world(unimported, tmp_path / f"data-{attempt}", monkeypatch)
        # Into the second file: the first is committed, the second is being parsed, redacted or written.
        child = _start_child(world)
        time.sleep(delay_s)
        os.kill(child.pid, signal.SIGKILL)  # no cleanup, no rollback: a real crash
        child.communicate(timeout=30)
        if child.returncode == -signal.SIGKILL:
            break
        delay_s /= 2  # this run was faster than the timing run: kill it earlier
    assert child.returncode == -signal.SIGKILL, "the import finished before the kill: nothing was drilled"

    _consistent(world)
    import_incoming(world)  # the next run, with no hand fix
    _consistent(world)
    assert _labels(world) == reference
