"""The planted changes as parameters: moved, dropped, and the defaults left exactly as they were."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest

from evalflow.simulator import simulate
from evalflow.simulator.core import CHANGES, change_days

START = date(2026, 10, 1)
DAYS, PER_DAY = 6, 60


def run(root: Path, **kwargs) -> dict:
    simulate(root / "landing", root / "truth", days=DAYS, per_day=PER_DAY, seed=5, **kwargs)
    return json.loads((root / "truth" / "events.json").read_text())


def truth(root: Path) -> list[dict]:
    lines = (root / "truth" / "traces.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def canonical_records(root: Path) -> list[dict]:
    """The good canonical lines (the truth names each one's file and line; bad lines are planted)."""
    files: dict[str, list[str]] = {}
    out = []
    for t in truth(root):
        if t["dialect"] == "canonical":
            lines = files.setdefault(t["file"], (root / "landing" / t["file"]).read_text(
                encoding="utf-8").splitlines())
            out.append(json.loads(lines[t["line"] - 1]))
    return out


def all_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_default_days_are_the_old_fractions():
    assert change_days(START, 30) == {"prompt_template_change": START + timedelta(days=12),
                                      "kb_change": START + timedelta(days=18),
                                      "intent_mix_shift": START + timedelta(days=22)}
    # never the first day, never past the last one
    assert change_days(START, 2) == {name: START + timedelta(days=1) for name in CHANGES}


def test_naming_the_default_days_writes_the_same_bytes(tmp_path):
    run(tmp_path / "a")
    defaults = change_days(START, DAYS)
    # as dates, and as day offsets
    run(tmp_path / "b", changes=defaults)
    run(tmp_path / "c", changes={name: (day - START).days for name, day in defaults.items()})
    expected = all_bytes(tmp_path / "a")
    assert all_bytes(tmp_path / "b") == expected
    assert all_bytes(tmp_path / "c") == expected


def test_moved_changes_happen_on_their_days(tmp_path):
    changes = {"prompt_template_change": START + timedelta(days=1), "kb_change": 4,
               "intent_mix_shift": START + timedelta(days=2)}
    events = run(tmp_path, changes=changes)
    assert events["prompt_template_change"]["date"] == "2026-10-02"
    assert events["prompt_template_change"]["at"].startswith("2026-10-02T14:00:00")
    assert events["model_switch"]["date"] == "2026-10-02"
    assert events["kb_change"]["date"] == "2026-10-05"
    assert events["intent_mix_shift"]["date"] == "2026-10-03"
    rows = truth(tmp_path)
    at = {name: events[name]["at"] for name in CHANGES}
    for t in rows:  # truth timestamps and event times share one ISO format
        assert t["prompt_template_id"] == ("support-v4" if t["timestamp"] >= at["prompt_template_change"]
                                           else "support-v3")
        assert t["kb_version"] == ("kb-v2" if t["timestamp"] >= at["kb_change"] else "kb-v1")
    for record in canonical_records(tmp_path):
        shifted = record["timestamp"][:10] >= "2026-10-03"
        if record["metadata"]["channel"] != "web":
            assert (record["metadata"]["app_version"] == "6.0.0") == shifted
    before = [t for t in rows if t["timestamp"] < at["intent_mix_shift"]]
    after = [t for t in rows if t["timestamp"] >= at["intent_mix_shift"]]
    share = lambda group: sum(t["intent"] == "virtual_card" for t in group) / len(group)  # noqa: E731
    assert share(after) > 3 * share(before)


def test_a_stable_month_plants_nothing(tmp_path):
    events = run(tmp_path, changes=dict.fromkeys(CHANGES))
    for name in (*CHANGES, "model_switch"):
        assert events[name] is None
    rows = truth(tmp_path)
    assert {t["prompt_template_id"] for t in rows} == {"support-v3"}
    assert {t["kb_version"] for t in rows} == {"kb-v1"}
    assert {t["model"] for t in rows} == {"gpt-4o-mini"}
    records = canonical_records(tmp_path)
    assert len({r["system_prompt_hash"] for r in records}) == 1
    assert len({r["tool_schema_hash"] for r in records}) == 1
    assert all(d["doc_id"].startswith("kb-v1/") for r in records for d in r["retrieved_context"])
    assert "6.0.0" not in Counter(r["metadata"]["app_version"] for r in records)


def test_one_change_dropped_keeps_the_others_on_their_default_days(tmp_path):
    events = run(tmp_path, changes={"kb_change": None})
    defaults = change_days(START, DAYS)
    assert events["kb_change"] is None
    assert events["prompt_template_change"]["date"] == defaults["prompt_template_change"].isoformat()
    assert events["intent_mix_shift"]["date"] == defaults["intent_mix_shift"].isoformat()
    assert {t["kb_version"] for t in truth(tmp_path)} == {"kb-v1"}


@pytest.mark.parametrize("changes, message", [
    ({"template_change": START}, "unknown planted change"),
    ({"kb_change": START + timedelta(days=DAYS)}, "outside the simulated days"),
    ({"kb_change": START - timedelta(days=1)}, "outside the simulated days"),
    ({"kb_change": -1}, "outside the simulated days"),
    ({"kb_change": True}, "expected a date"),
    ({"kb_change": "2026-10-03"}, "expected a date"),
])
def test_bad_change_days_are_refused(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        simulate(tmp_path / "landing", tmp_path / "truth", days=DAYS, per_day=PER_DAY, changes=changes)
    assert not (tmp_path / "landing").exists()


def test_cli_options(tmp_path, monkeypatch, capsys):
    from evalflow.cli import main

    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    code = main(["simulate", "--days", "4", "--per-day", "20", "--kb-change", "2026-10-02",
                 "--prompt-template-change", "none", "--intent-mix-shift", "NONE"])
    assert code == 0
    events = json.loads((tmp_path / "data" / "ground_truth" / "events.json").read_text())
    assert events["kb_change"]["date"] == "2026-10-02"
    assert events["prompt_template_change"] is None and events["intent_mix_shift"] is None
    capsys.readouterr()
    assert main(["simulate", "--days", "4", "--per-day", "20", "--kb-change", "2026-11-02"]) == 1
    assert "outside the simulated days" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--kb-change", "soon"])
    assert exc.value.code == 2
