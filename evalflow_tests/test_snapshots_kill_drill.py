"""Kill drill for publishing: a process publishing golden versions one after another is SIGKILLed
at several moments (inside the lake transaction, at its commit, between the commit and the
manifest file). After each kill every version the lake holds is whole and verifies, no case row
belongs to a version that is not recorded, the version being published is absent or whole, and
the next publish finishes with no hand fix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalflow.lib.common.lake import connect_lake
from evalflow.lib.snapshots import list_versions, parse_ref, publish, read_cases, read_manifest, verify
from evalflow.lib.snapshots.store import manifest_path
from evalflow_tests.test_snapshots import pool

# The child publishes golden@v2, v3, ... (each a bigger set) and says where it is: "begin vN"
# before the transaction, "commit vN" just before COMMIT (the commit message is the last thing
# set), "manifest vN" after the commit and before manifest.json, "done vN" after.
KILL_CHILD = """
import sys
from pathlib import Path
from evalflow.lib.snapshots import store
from evalflow_tests.test_snapshots import pool

data = Path(sys.argv[1])
original_message, original_manifest = store.set_commit_message, store._write_manifest_file
state = {}

def commit_message(con, author, message, extra=None):
    original_message(con, author, message, extra)
    print(f"commit v{state['n']}", flush=True)

def manifest_file(path, manifest):
    print(f"manifest v{state['n']}", flush=True)
    original_manifest(path, manifest)

store.set_commit_message, store._write_manifest_file = commit_message, manifest_file
for n in range(2, 200):
    state["n"] = n
    print(f"begin v{n}", flush=True)
    store.publish(data, f"golden@v{n}", pool(100 + 50 * n), author="drill", message=f"v{n}")
    print(f"done v{n}", flush=True)
"""


def cases_of(n: int) -> list[dict]:
    return pool(100 + 50 * n)


def check_whole(data: Path) -> list[str]:
    """Every recorded version is whole and verifies; no case row without its version row."""
    versions = [v.version for v in list_versions(data, "golden")]
    assert versions == [f"v{n}" for n in range(1, len(versions) + 1)], versions
    con = connect_lake(data, read_only=True)
    try:
        stored = dict(con.execute("SELECT version, count(*) FROM lake.main.dataset_cases GROUP BY 1").fetchall())
    finally:
        con.close()
    assert set(stored) == set(versions), f"case rows of an unrecorded version: {set(stored) - set(versions)}"
    for version in versions:
        n = int(version[1:])
        assert verify(data, f"golden@{version}") == [], version
        assert stored[version] == len(cases_of(n)), f"{version} is not whole"
    return versions


@pytest.mark.parametrize("marker, delay_s", [
    ("begin", 0.0), ("begin", 0.08),  # inside the transaction: rows being written
    ("commit", 0.0), ("commit", 0.004), ("commit", 0.012), ("commit", 0.025),  # at and around COMMIT
    ("manifest", 0.0),  # after the commit, around manifest.json
])
def test_a_publish_killed_at_any_moment_leaves_whole_versions_and_the_next_publish_finishes(tmp_path, marker,
                                                                                           delay_s):
    data = tmp_path / "data"
    publish(data, "golden@v1", cases_of(1), author="drill", message="v1")
    child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, str(data)], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[1])
    seen = []
    while not seen or seen[-1] != f"{marker} v3":  # v2 is committed; v3 is being published
        line = child.stdout.readline().strip()
        assert line or child.poll() is None, "the publishing child died on its own"
        seen.append(line)
    time.sleep(delay_s)
    os.kill(child.pid, signal.SIGKILL)  # no cleanup, no rollback: a real crash
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    seen += [line.strip() for line in child.stdout.read().splitlines()]
    last = seen[-1]  # where the kill landed, at the latest

    versions = check_whole(data)
    killed = int(last.split()[1][1:])
    # the version being published is absent, or whole (killed after its commit)
    assert len(versions) in (killed - 1, killed), (last, versions)
    if last.startswith("begin"):
        assert len(versions) == killed - 1, "a version appeared before its transaction could commit"
    if last.startswith("done") or last.startswith("manifest"):
        assert len(versions) == killed, "a version whose commit returned is missing"
    # a manifest file the kill left unwritten is rewritten from the lake on read
    for version in versions:
        read_manifest(data, f"golden@{version}")
        assert manifest_path(data, parse_ref(f"golden@{version}")).is_file()
    # the next publish, with no hand fix: the killed version is published (or found whole)
    nxt = len(versions) + 1
    published = publish(data, f"golden@v{nxt}", cases_of(nxt), author="drill", message=f"v{nxt}")
    assert published.created
    assert check_whole(data)[-1] == f"v{nxt}"
    assert len(read_cases(data, f"golden@v{nxt}")) == len(cases_of(nxt))
