"""Publishing beside other processes: a reader in another process reads and verifies the
published versions while a publish holds its transaction open, and a lake writer that does not
take the snapshot writer lock (the published current tables) does not make a publish fail: the
publish's commit is retried whole and lands on the snapshot id its rows record."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from evalflow.lib.snapshots import list_versions, publish, read_cases, verify
from evalflow_tests.test_snapshots import pool

ROOT = Path(__file__).resolve().parents[1]

# Publishes golden@v2; the first attempt holds its transaction open (after the rows and the
# commit message, before COMMIT) until the file named by argv[2] exists.
SLOW_PUBLISHER = """
import sys, time
from pathlib import Path
from evalflow.lib.snapshots import store
from evalflow_tests.test_snapshots import pool

release = Path(sys.argv[2])
original = store.set_commit_message
attempts = []

def held(con, *args):
    original(con, *args)
    attempts.append(1)
    print(f"holding {len(attempts)}", flush=True)
    while len(attempts) == 1 and not release.exists():
        time.sleep(0.02)

store.set_commit_message = held
published = store.publish(Path(sys.argv[1]), "golden@v2", pool(80), author="a", message="v2")
print(f"published {published.snapshot_id} after {len(attempts)} attempt(s)", flush=True)
"""

READER = """
import json, sys
from pathlib import Path
from evalflow.lib.snapshots import list_versions, read_cases, verify
data = Path(sys.argv[1])
print(json.dumps({"versions": [v.ref for v in list_versions(data)], "problems": verify(data, "golden@v1"),
                  "cases": len(read_cases(data, "golden@v1"))}))
"""

OTHER_WRITER = """
import sys
from pathlib import Path
from evalflow.lib.common.lake import lake_transaction
print("writing", flush=True)
with lake_transaction(Path(sys.argv[1]), author="run", message="current tables") as con:
    con.execute("CREATE OR REPLACE TABLE lake.main.current_table AS SELECT 42 AS answer")
print("other writer committed", flush=True)
"""


def _run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_readers_read_while_a_publish_writes_and_another_writer_does_not_make_it_fail(tmp_path):
    data = tmp_path / "data"
    publish(data, "golden@v1", pool(40), author="a", message="v1")
    release = tmp_path / "release"
    publisher = subprocess.Popen([sys.executable, "-c", SLOW_PUBLISHER, str(data), str(release)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert publisher.stdout.readline().strip() == "holding 1"
        # another process reads while the publish holds its transaction: the old version, whole
        seen = json.loads(_run(READER, str(data)).strip().splitlines()[-1])
        assert seen == {"versions": ["golden@v1"], "problems": [], "cases": 40}
        # a writer without the snapshot lock commits in between (it waits for the open transaction)
        other = subprocess.Popen([sys.executable, "-c", OTHER_WRITER, str(data)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, cwd=ROOT)
        assert other.stdout.readline().strip() == "writing"
        time.sleep(1.0)  # it is inside its commit, waiting for the publish's transaction
        release.touch()
        out, err = other.communicate(timeout=120)
        assert other.returncode == 0 and "other writer committed" in out, err[-2000:]
        out, err = publisher.communicate(timeout=120)
    finally:
        if publisher.poll() is None:
            publisher.kill()
    assert publisher.returncode == 0, err[-2000:]
    # measured: the other writer commits first and the publish's first COMMIT fails ("database is
    # locked"); its second attempt lands (4 runs of 4 here); when timing lets the publish commit
    # first, one attempt suffices. Either way the version is whole and verifies.
    assert re.search(r"published \d+ after [12] attempt", out), out
    assert [v.ref for v in list_versions(data)] == ["golden@v1", "golden@v2"]
    assert verify(data, "golden@v1") == [] and verify(data, "golden@v2") == []
    assert len(read_cases(data, "golden@v2")) == 80
