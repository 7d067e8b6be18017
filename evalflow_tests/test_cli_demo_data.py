"""`evalflow demo` over an earlier demo's data folder (evalflow.cli.demo_data)."""

from functools import partial
from pathlib import Path

import duckdb

from evalflow.cli.demo_data import PREVIOUS, landing_digest, prepare_demo_data
from evalflow.simulator import simulate


def _sim(seed: int):
    return partial(simulate, days=1, per_day=20, seed=seed)


def _record_ingested(data_dir: Path, digest: dict[str, str]) -> None:
    """A raw store whose `landed_files` lists these files, as ingestion records them."""
    (data_dir / "raw").mkdir(exist_ok=True)
    with duckdb.connect(str(data_dir / "raw" / "raw.duckdb")) as con:
        con.execute("CREATE TABLE landed_files (file_sha256 VARCHAR PRIMARY KEY, path VARCHAR)")
        con.executemany("INSERT INTO landed_files VALUES (?, ?)", [(sha, p) for p, sha in digest.items()])


def _fake_stores(data_dir: Path, tag: str) -> None:
    """Stores built from what the landing folder holds now."""
    _record_ingested(data_dir, landing_digest(data_dir / "landing"))
    for name in ("warehouse/evalflow.duckdb", "annotation/batch-1/tasks.json"):
        path = data_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tag)


def test_first_demo_fills_landing_and_ground_truth(tmp_path):
    prepared = prepare_demo_data(tmp_path, _sim(1))
    assert prepared.moved_to is None
    assert len(landing_digest(tmp_path / "landing")) == len(prepared.summary.files) > 0
    assert (tmp_path / "ground_truth" / "traces.jsonl").is_file()
    assert not (tmp_path / ".demo-next").exists()


def test_the_same_traffic_again_keeps_the_earlier_stores(tmp_path):
    prepare_demo_data(tmp_path, _sim(1))
    _fake_stores(tmp_path, "built by the first demo")
    before = landing_digest(tmp_path / "landing")

    prepared = prepare_demo_data(tmp_path, _sim(1))

    assert prepared.moved_to is None
    assert (tmp_path / "warehouse/evalflow.duckdb").read_text() == "built by the first demo"
    assert landing_digest(tmp_path / "landing") == before
    assert not (tmp_path / PREVIOUS).exists()


def test_other_traffic_moves_the_earlier_demo_aside_and_starts_clean(tmp_path):
    prepare_demo_data(tmp_path, _sim(1))
    _fake_stores(tmp_path, "built by the first demo")
    first = landing_digest(tmp_path / "landing")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model.onnx").write_text("exported once")

    prepared = prepare_demo_data(tmp_path, _sim(2))

    aside = tmp_path / PREVIOUS
    assert prepared.moved_to == aside
    # Nothing of the first demo is lost: its stores and landing files sit in previous-demo/.
    assert (aside / "warehouse/evalflow.duckdb").read_text() == "built by the first demo"
    assert (aside / "annotation/batch-1/tasks.json").is_file()
    assert landing_digest(aside / "landing") == first
    # The live folder holds only the new traffic, with no store built from the old one.
    assert landing_digest(tmp_path / "landing") != first
    assert not (tmp_path / "warehouse").exists() and not (tmp_path / "raw").exists()
    assert (tmp_path / "models" / "model.onnx").read_text() == "exported once"


def test_a_folder_no_demo_made_keeps_its_files(tmp_path):
    own = tmp_path / "landing" / "team" / "export.jsonl"
    own.parent.mkdir(parents=True)
    own.write_text('{"trace_id": "t1"}\n')
    _fake_stores(tmp_path, "production")

    prepared = prepare_demo_data(tmp_path, _sim(1))

    assert prepared.moved_to is None
    assert own.read_text() == '{"trace_id": "t1"}\n'
    assert (tmp_path / "warehouse/evalflow.duckdb").read_text() == "production"
    assert len(landing_digest(tmp_path / "landing")) == len(prepared.summary.files) + 1


def test_stores_built_from_older_traffic_move_aside_even_when_landing_already_matches(tmp_path):
    # An older demo was ingested, then new traffic landed over it (`evalflow simulate` run
    # again): the landing folder matches this demo, the raw store does not.
    prepare_demo_data(tmp_path, _sim(2))
    _record_ingested(tmp_path, landing_digest(tmp_path / "landing"))
    simulate(tmp_path / "landing", tmp_path / "ground_truth", days=1, per_day=20, seed=1)

    prepared = prepare_demo_data(tmp_path, _sim(1))

    assert prepared.moved_to == tmp_path / PREVIOUS
    assert (tmp_path / PREVIOUS / "raw" / "raw.duckdb").is_file()
    assert not (tmp_path / "raw").exists()



def test_stores_written_by_a_newer_duckdb_move_aside_so_the_demo_rebuilds_them(tmp_path):
    # The same traffic, but the raw store was written by DuckDB 2.0.1 (evalflow once pinned it),
    # which the installed DuckDB cannot open: the demo moves it aside instead of failing.
    import shutil

    prepare_demo_data(tmp_path, _sim(1))
    (tmp_path / "raw").mkdir()
    fixture = Path(__file__).parent / "fixtures" / "duckdb" / "written_by_2_0_1.duckdb"
    shutil.copyfile(fixture, tmp_path / "raw" / "raw.duckdb")

    prepared = prepare_demo_data(tmp_path, _sim(1))

    assert prepared.moved_to == tmp_path / PREVIOUS
    assert (tmp_path / PREVIOUS / "raw" / "raw.duckdb").read_bytes() == fixture.read_bytes()
    assert not (tmp_path / "raw").exists() and (tmp_path / "landing").is_dir()


def test_doctor_names_a_store_written_by_a_newer_duckdb_instead_of_failing(tmp_path):
    import shutil

    from evalflow.cli import _file_state

    store = tmp_path / "warehouse" / "evalflow.duckdb"
    store.parent.mkdir()
    shutil.copyfile(Path(__file__).parent / "fixtures" / "duckdb" / "written_by_2_0_1.duckdb", store)
    assert _file_state(store).startswith("written by DuckDB v2.0.1, which this DuckDB cannot open")
