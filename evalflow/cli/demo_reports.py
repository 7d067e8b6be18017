"""The demo's monitoring step: the weekly drift reports over the simulated month (which holds the
simulator's planted changes, ground truth in <data>/ground_truth/events.json) and the
contamination report of the golden set against a demo corpus that holds a few of its cases on
purpose.

- `write_demo_corpus` writes `<data>/corpora/demo-few-shot.jsonl`: few-shot prompts as a team
  would paste them into a system prompt, some with a golden case's question inside, plus unrelated
  support questions, and registers it in `<data>/contamination.toml` (kind few_shot). Which cases
  were planted is recorded in `<data>/ground_truth/contamination.json`, apart from what the
  pipeline reads.
- `drift_lines` / `contamination_lines`: what the demo prints.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from evalflow.lib.common.settings import Settings

CORPUS_NAME = "demo-few-shot"
PLANTED = 5
MIN_PLANTED_WORDS = 8
FILLERS = (
    "How do I update the mailing address on my account?",
    "What are your branch opening hours on Saturdays?",
    "Can I set up a standing order from the app?",
    "Is there a fee for international transfers in euros?",
    "How long does a new debit card take to arrive?",
    "Where can I find my yearly interest statement?",
    "Can I raise my daily ATM withdrawal limit?",
    "Do you offer joint savings accounts for students?",
)


HEADER = "You are Northwind Bank's support assistant. Answer briefly and politely, as in these examples."
EXAMPLE = ("What is the routing number for online transfers?", "You can find it under Accounts > Details in the app.")


def _few_shot(question: str, answer: str) -> str:
    from evalflow.lib.contamination.variants import embed_in_prompt

    return embed_in_prompt(question, answer, [EXAMPLE], header=HEADER)


def write_demo_corpus(settings: Settings, seed: int = 0) -> Path | None:
    """The demo corpus and its registration (see the module doc); None without a golden version."""
    from evalflow.lib.contamination.text import case_text
    from evalflow.lib.snapshots.store import latest_version, read_cases

    golden = latest_version(settings.data_dir, "golden")
    if golden is None:
        return None
    # Questions of 8 words or more: a shorter one is checked by exact match and embedding only
    # (docs/contamination.md, "Short cases"), and a few words inside a long prompt are no evidence.
    cases = [c for c in read_cases(settings.data_dir, f"golden@{golden}")
             if len(case_text(c).split()) >= MIN_PLANTED_WORDS]
    rng = random.Random(seed)
    planted = sorted(rng.sample(cases, min(PLANTED, len(cases))), key=lambda c: c["case_id"])
    docs = [{"id": f"fewshot-{i:03d}", "text": _few_shot(case_text(case), "Let me look into that for you.")}
            for i, case in enumerate(planted)]
    docs += [{"id": f"fewshot-{len(planted) + i:03d}", "text": _few_shot(q, "Here is how to do that.")}
             for i, q in enumerate(FILLERS)]
    rng.shuffle(docs)
    folder = settings.data_dir / "corpora"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{CORPUS_NAME}.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    config = settings.data_dir / "contamination.toml"
    config.write_text(f'# Registered by the demo: few-shot prompts, {len(planted)} of them hold a golden case on '
                      'purpose.\n[[corpus]]\n'
                      f'name = "{CORPUS_NAME}"\nkind = "few_shot"\npath = "corpora/{path.name}"\nfields = ["text"]\n',
                      encoding="utf-8")
    truth = settings.ground_truth_dir / "contamination.json"
    truth.parent.mkdir(parents=True, exist_ok=True)
    truth.write_text(json.dumps({"corpus": CORPUS_NAME, "golden": f"golden@{golden}",
                                 "planted_case_ids": [c["case_id"] for c in planted]}, indent=2) + "\n")
    return path


def drift_lines(settings: Settings) -> list[str]:
    """Each week's alerts, the planted changes beside them, and the newest report's path."""
    from evalflow.lib.common.warehouse import connect_waiting, has_table
    from evalflow.lib.drift.weekly import reports_dir

    lines = []
    if not settings.warehouse_path.exists():
        return ["no drift report yet"]
    with connect_waiting(settings.warehouse_path, read_only=True) as con:
        if not has_table(con, "drift_reports"):
            return ["no drift report yet"]
        weeks = [w for (w,) in con.execute("SELECT week_start FROM drift_reports ORDER BY week_start").fetchall()]
        alerts = con.execute("SELECT week_start, signal, baseline, severity FROM alerts "
                             "ORDER BY week_start, severity, signal, baseline").fetchall()
    planted = _planted_changes(settings)
    for week in weeks:
        mine = [f"{signal} vs {baseline.replace('_', ' ')} ({severity})"
                for w, signal, baseline, severity in alerts if w == week]
        changes = [f"{name} on {day}" for name, day in planted if _monday(day) == week.isoformat()]
        lines.append(f"week of {week}: " + ("; ".join(mine) or "no alert")
                     + (f"   <- planted: {', '.join(changes)}" if changes else ""))
    newest = reports_dir(settings.data_dir) / weeks[-1].isoformat() / "report.html" if weeks else None
    if newest is not None:
        lines.append(f"newest report: {newest} (opens offline)")
    return lines


def _monday(day: str) -> str:
    from datetime import date, timedelta

    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


def _planted_changes(settings: Settings) -> list[tuple[str, str]]:
    try:
        events = json.loads((settings.ground_truth_dir / "events.json").read_text())
    except (OSError, ValueError):
        return []
    names = {"prompt_template_change": "template change", "kb_change": "knowledge-base change",
             "intent_mix_shift": "intent-mix shift"}
    return [(label, events[key]["date"]) for key, label in names.items() if isinstance(events.get(key), dict)]


def contamination_lines(settings: Settings) -> list[str]:
    """What the newest contamination run found, beside the cases the demo planted."""
    from evalflow.lib.common.warehouse import connect_waiting, has_table

    if not settings.warehouse_path.exists():
        return ["no contamination run yet"]
    with connect_waiting(settings.warehouse_path, read_only=True) as con:
        if not has_table(con, "contamination_runs"):
            return ["no contamination run yet"]
        run = con.execute("SELECT run_id, cases, contaminated FROM contamination_runs "
                          "ORDER BY checked_at DESC LIMIT 1").fetchone()
        if run is None:
            return ["no contamination run yet"]
        run_id, cases, contaminated = run
        by_corpus = con.execute("SELECT corpus, count(DISTINCT case_id), string_agg(DISTINCT method, ', ') "
                                "FROM contamination_findings WHERE run_id = ? AND split IS NULL GROUP BY 1 "
                                "ORDER BY 1", [run_id]).fetchall()
        found = {c for (c,) in con.execute("SELECT DISTINCT case_id FROM contamination_findings "
                                           "WHERE run_id = ? AND corpus = ?", [run_id, CORPUS_NAME]).fetchall()}
        boundaries = con.execute("SELECT split || ' vs ' || corpus, count(DISTINCT case_id) "
                                 "FROM contamination_findings WHERE run_id = ? AND split IS NOT NULL "
                                 "GROUP BY 1 ORDER BY 1", [run_id]).fetchall()
    lines = [f"{contaminated} of {cases} golden cases found in a corpus ({run_id})"]
    lines += [f"  {corpus}: {n} case(s), by {methods}" for corpus, n, methods in by_corpus]
    try:
        planted = set(json.loads((settings.ground_truth_dir / "contamination.json").read_text())["planted_case_ids"])
    except (OSError, ValueError, KeyError):
        planted = set()
    if planted:
        extra = found - planted
        same = _asked_in_corpus(settings, extra)
        lines.append(f"planted in {CORPUS_NAME}: {len(planted)}; found: {len(planted & found)}"
                     + (f"; also found: {len(same)} other golden case(s) with a turn that is word for word in "
                        "those prompts" if same else "")
                     + (f"; found but not planted: {len(extra - same)}" if extra - same else ""))
    lines += [f"near-duplicates across {where}: {n} case(s)" for where, n in boundaries]
    return lines


def _asked_in_corpus(settings: Settings, case_ids: set[str]) -> set[str]:
    """Of `case_ids`, those with a turn (a line of 5 words or more) that is, word for word, in the
    demo corpus: a question or a templated follow-up they share with a planted case."""
    from evalflow.lib.contamination.text import case_text, normalise
    from evalflow.lib.snapshots.store import latest_version, read_cases

    if not case_ids:
        return set()
    try:
        docs = [normalise(json.loads(line)["text"]) for line in
                (settings.data_dir / "corpora" / f"{CORPUS_NAME}.jsonl").read_text().splitlines() if line.strip()]
    except (OSError, ValueError, KeyError):
        return set()
    cases = read_cases(settings.data_dir, f"golden@{latest_version(settings.data_dir, 'golden')}")
    turns = {c["case_id"]: [normalise(line) for line in case_text(c).splitlines() if len(line.split()) >= 5]
             for c in cases if c["case_id"] in case_ids}
    return {cid for cid, lines in turns.items() if any(line in doc for line in lines for doc in docs)}
