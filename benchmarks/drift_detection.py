"""Drift detection on planted changes: is each change flagged in its week, and do stable weeks stay quiet?

    nice -n 10 .venv/bin/python benchmarks/drift_detection.py                 # the held-out seeds
    nice -n 10 .venv/bin/python benchmarks/drift_detection.py --dev           # the development seeds
    nice -n 10 .venv/bin/python benchmarks/drift_detection.py --seeds 1 2 --stable-seeds 9 --per-day 200

Scenarios. Each seed simulates WEEKS (6) Monday-to-Sunday weeks from 2026-10-05 at --per-day
traces a day. Weeks 1 and 2 are the golden window: the golden set is drawn from them. Weeks 3..6
are reported. A seed with changes plants the prompt-template change, the knowledge-base change and
the intent-mix shift in three different reported weeks (drawn from the seed), seven consecutive
seeds putting each change once on every day of the week (a change on a Sunday leaves one day of
its week changed, the hardest case for the noisy signals); a stable seed
plants nothing (`simulate(changes={...: None})`), a month of four stable reported weeks. The
held-out seeds (the default) are the figures in docs/benchmarks.md; any threshold advice comes
from the development seeds (--dev), never from the held-out ones.

Pipeline, per seed, with the pipeline's own code on a throwaway warehouse: every landing file
(canonical, OTLP, Langfuse) parsed by `lib.ingest.parse_file.ingest_file`; PII replaced by typed
placeholders at the ground-truth spans (what redaction writes; the real redactor is measured in
its own benchmark) into `redacted_traces`; `trace_embeddings` through `embed_with_cache` (one
embedder for all seeds, each distinct text encoded once); `discover_intents` once over the six
weeks, `write_clustering`; `compute_signals` -> `trace_signals`. The golden set: the stratified
sampler's choice (--golden-budget) from the golden window, as eval-case dicts; its manifest's
production baseline from `lib.drift.baseline.production_baseline` over those cases. Then per
reported week: `lib.drift.inputs.load_week_inputs` (the week's and the previous week's
traffic, the golden version, the golden window's traffic), given the `RunReads` the asset would
read from the lake, and `compute_week(inputs, DriftConfig())` with the default thresholds.

Scoring (ground truth: the change dates the simulator planted; nothing of it reaches the report):
- a change is caught in its week when a signal of its family breaches (WARN or ERROR, against the
  golden baseline or the week before) in the week it happens: template change -> prompt_template /
  system_prompt / tool_schema signals; knowledge-base change -> retrieval / kb_changed_docs / kb_new_docs;
  intent-mix shift -> intent_mix (embedding breaches are expected after the shift but do not count
  as catching it). "flagged" is the first reported week, at or after the change, with such a breach.
- a false alarm is a breach of a signal whose family has no change planted at or before that week
  (embedding belongs to the intent-mix family; staleness, safety, pass-rate and other signals to no
  family: any breach of theirs is a false alarm). A stable week is a reported week with no change
  at or before it; "stable weeks with an alarm" counts those with any breach.
- Evidently-style defaults: Evidently's categorical drift test for samples over 1,000 rows, the
  Jensen-Shannon *distance* (scipy's `jensenshannon`, natural log: the square root of the
  divergence) of the intent mix, week against the golden window's traffic, drift at >= 0.1, and
  nothing else. It can only catch the intent-mix shift; in the summary its template and
  knowledge-base "misses" are structural, not bad luck.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sampling_coverage import redact_at_truth  # noqa: E402

START = date(2026, 10, 5)  # a Monday
WEEKS = 6
GOLDEN_WEEKS = 2
CHANGES = ("prompt_template_change", "kb_change", "intent_mix_shift")
SHORT = {"prompt_template_change": "template", "kb_change": "kb", "intent_mix_shift": "mix"}
HELD_OUT_SEEDS = (1, 2, 3, 4, 5, 6, 7)
HELD_OUT_STABLE = (11, 12, 13)
DEV_SEEDS = (101, 102, 103, 104, 105, 106, 107)
DEV_STABLE = (111, 112)
EVIDENTLY_THRESHOLD = 0.1

# signal name prefixes of each change's family (the first matching family wins)
FAMILY_PREFIXES = {
    "prompt_template_change": ("prompt_template", "system_prompt", "tool_schema", "template"),
    "kb_change": ("retrieval", "kb_changed_docs", "kb"),
    "intent_mix_shift": ("intent_mix", "embedding"),
}
# the signals that must breach for a change to count as caught
DETECTORS = {
    "prompt_template_change": ("prompt_template", "system_prompt", "tool_schema", "template"),
    "kb_change": ("retrieval", "kb_changed_docs", "kb"),
    "intent_mix_shift": ("intent_mix",),
}


def family_of(signal: str) -> str | None:
    for change, prefixes in FAMILY_PREFIXES.items():
        if signal.startswith(prefixes):
            return change
    return None


def week_start(index: int) -> date:
    return START + timedelta(weeks=index)


def reported_weeks() -> list[int]:
    return list(range(GOLDEN_WEEKS, WEEKS))


def plan_changes(seed: int, stable: bool) -> dict[str, date | None]:
    """Each change in its own reported week (drawn from the seed), on weekday (seed + 2i) mod 7
    for the i-th change: seven consecutive seeds put every change once on every day of the week,
    Sunday included."""
    if stable:
        return dict.fromkeys(CHANGES)
    rng = random.Random(f"drift-benchmark-{seed}")
    weeks = rng.sample(reported_weeks(), len(CHANGES))
    return {name: week_start(w) + timedelta(days=(seed + 2 * i) % 7)
            for i, (name, w) in enumerate(zip(CHANGES, weeks))}


def week_of(day: date) -> int:
    return (day - START).days // 7


# -- the pipeline on a throwaway warehouse ------------------------------------------------------

class MemoEmbedder:
    """The pipeline's Embedder, each distinct text encoded once across all seeds."""

    def __init__(self) -> None:
        from evalflow.lib.intents.embed import Embedder, EmbedderConfig

        self.inner = Embedder(EmbedderConfig())
        self.model_name = self.inner.model_name
        self.model_version = self.inner.model_version
        self.backend = self.inner.backend
        self.memo: dict[str, np.ndarray] = {}
        self.encoded = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        missing = sorted({t for t in texts if t not in self.memo})
        if missing:
            for text, vector in zip(missing, np.asarray(self.inner.encode(missing), dtype=np.float32)):
                self.memo[text] = vector
            self.encoded += len(missing)
        return np.stack([self.memo[t] for t in texts]).astype(np.float32)


@dataclass
class Scenario:
    seed: int
    stable: bool
    changes: dict[str, date | None]
    folder: Path
    warehouse: Any = None
    traces: int = 0
    intents: int = 0
    noise_share: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)
    golden_window_traces: dict[str, dict] = field(default_factory=dict)  # trace_id -> redacted trace


def build_warehouse(scenario: Scenario, per_day: int, embedder: MemoEmbedder) -> None:
    from evalflow.lib.common.warehouse import Warehouse
    from evalflow.lib.ingest.parse_file import IngestOptions, KnownTraces, ingest_file, iter_landing_files
    from evalflow.lib.ingest.store import traces_frame
    from evalflow.lib.intents import discover_intents, model_text
    from evalflow.lib.intents.embed import embed_with_cache, text_sha256
    from evalflow.lib.intents.store import (
        DEFAULT_TEXT_MODE,
        load_window_vectors,
        read_redacted,
        trace_text,
        window_fingerprint,
        write_clustering,
        write_trace_embeddings,
    )
    from evalflow.lib.redact.store import REDACTION_SCHEMA
    from evalflow.lib.signals import compute_signals, read_signal_inputs
    from evalflow.lib.signals.store import write_signals
    from evalflow.simulator import simulate

    clock = time.perf_counter()
    days = 7 * WEEKS
    landing, truth_dir = scenario.folder / "landing", scenario.folder / "truth"
    simulate(landing, truth_dir, days=days, per_day=per_day, seed=scenario.seed, start_date=START,
             changes=scenario.changes)
    scenario.seconds["simulate"] = time.perf_counter() - clock

    clock = time.perf_counter()
    truth = {}
    with open(truth_dir / "traces.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            truth[row["trace_id"]] = row["pii"]
    golden_end = week_start(GOLDEN_WEEKS)
    known = KnownTraces()
    now = datetime.combine(START + timedelta(days=days + 1), dtime(), timezone.utc)
    options = IngestOptions(now=now)
    traces = []
    for path in iter_landing_files(landing):
        for trace in ingest_file(path, known, options).traces:
            traces.append(redact_at_truth(trace, truth[trace["trace_id"]]))
    scenario.golden_window_traces = {t["trace_id"]: t for t in traces if t["event_date"] < golden_end}
    warehouse = Warehouse(scenario.folder / "warehouse.duckdb")
    with warehouse.transaction() as con:
        con.execute(REDACTION_SCHEMA)
        con.register("incoming", traces_frame(traces))
        con.execute("INSERT INTO redacted_traces SELECT * FROM incoming")
        con.unregister("incoming")
    scenario.traces = len(traces)
    scenario.seconds["ingest"] = time.perf_counter() - clock

    clock = time.perf_counter()
    redacted = read_redacted(warehouse)
    texts = [model_text(trace_text(t)) for t in redacted]
    embed_with_cache(texts, embedder, warehouse)
    all_days = sorted({t["event_date"] for t in redacted})
    write_trace_embeddings(warehouse, all_days, [
        {"trace_id": t["trace_id"], "event_date": t["event_date"], "text_sha256": text_sha256(x),
         "model_version": embedder.model_version, "backend": embedder.backend}
        for t, x in zip(redacted, texts)])
    scenario.seconds["embed"] = time.perf_counter() - clock

    clock = time.perf_counter()
    window, vectors = load_window_vectors(warehouse, START)
    result = discover_intents(vectors, [trace_text(t) for t in window], seed=0, now=now)
    fingerprint = window_fingerprint(window, vectors, DEFAULT_TEXT_MODE)
    write_clustering(warehouse, window, result, now, input_sha256=fingerprint, since=START)
    scenario.intents, scenario.noise_share = len(result.catalog), float(result.noise_share)
    scenario.seconds["intents"] = time.perf_counter() - clock

    clock = time.perf_counter()
    inputs, intent_ids, low = read_signal_inputs(warehouse.path, START)
    write_signals(warehouse, compute_signals(inputs, intent_ids, intent_low_confidence=low), START, now)
    scenario.seconds["signals"] = time.perf_counter() - clock
    scenario.warehouse = warehouse


# -- the golden set -------------------------------------------------------------------------------

def golden_cases(scenario: Scenario, budget: int) -> list[dict[str, Any]]:
    """The stratified sampler's choice from the golden window, as eval-case dicts (no labels: the
    planted changes need none, and the pass-rate signals are left out)."""
    from evalflow.lib.eval_cases.build import input_payload, slice_tags, source_date
    from evalflow.lib.eval_cases.schema import split_for
    from evalflow.lib.judge.cases import case_id_for_trace
    from evalflow.lib.sampling import stratified_sample
    from evalflow.lib.signals.store import intent_names, read_signals

    warehouse = scenario.warehouse
    end = week_start(GOLDEN_WEEKS) - timedelta(days=1)
    signals = read_signals(warehouse, START).filter(pl.col("event_date") <= end)
    chosen = stratified_sample(signals, budget=budget, seed=scenario.seed).chosen
    names = intent_names(warehouse)
    ids = chosen.get_column("trace_id").to_list()
    traces = scenario.golden_window_traces
    rows = {r["trace_id"]: r for r in chosen.iter_rows(named=True)}
    cases = []
    for trace_id in sorted(ids):
        trace, row = traces[trace_id], rows[trace_id]
        case_id = case_id_for_trace(trace_id)
        case = {
            "case_id": case_id, "input_payload": input_payload(trace), "expected_behavior": [],
            "gold_answer": None, "labeled_output": trace.get("output"), "labels": {},
            "rubric": {"version": "benchmark", "text": ""}, "checks": [], "evaluation_type": "reference_free",
            "risk_level": None, "source": {"trace_id": trace_id, "batch_id": None, "item_id": None},
            "source_date": source_date(trace), "labeled_by": [], "version_added": "golden@v1",
            "intent_id": row["intent_id"], "intent_name": names.get(row["intent_id"]),
            "failure_modes": list(row["failure_modes"] or []), "slice_tags": [], "split": split_for(case_id),
        }
        case["slice_tags"] = slice_tags(case)
        cases.append(case)
    return cases



# -- the weekly reports -----------------------------------------------------------------------------

@dataclass
class WeekResult:
    index: int  # week number from START (0-based)
    breaches: list[tuple[str, str, str]]  # (signal, baseline, severity)
    values: dict[tuple[str, str], float | None]  # (signal, baseline) -> value
    evidently_distance: float | None  # vs the golden window's traffic
    evidently_sample_distance: float | None  # vs the golden set's own intent mix (the naive reference)


def js_distance(reference: Counter, current: Counter) -> float | None:
    """Evidently's categorical statistic: scipy's Jensen-Shannon distance (natural log) of the
    category shares over the union of categories."""
    from scipy.spatial import distance

    keys = sorted(set(reference) | set(current))
    if not keys or not sum(reference.values()) or not sum(current.values()):
        return None
    ref = np.array([reference[k] for k in keys], dtype=float) / sum(reference.values())
    cur = np.array([current[k] for k in keys], dtype=float) / sum(current.values())
    return float(distance.jensenshannon(ref, cur))


def weekly_reports(scenario: Scenario, budget: int) -> list[WeekResult]:
    from evalflow.lib.drift.baseline import production_baseline
    from evalflow.lib.drift.config import DriftConfig
    from evalflow.lib.drift.inputs import (
        GoldenBaseline,
        RunReads,
        failure_rates,
        intent_names,
        load_traffic,
        load_week_inputs,
    )
    from evalflow.lib.drift.report import compute_week

    config = DriftConfig()
    clock = time.perf_counter()
    cases = golden_cases(scenario, budget)
    created = datetime.combine(week_start(GOLDEN_WEEKS), dtime(6), timezone.utc)
    results = []
    with scenario.warehouse.connect(read_only=True) as con:
        baseline = production_baseline(con, cases, top_k=config.retrieval_k)
        golden = GoldenBaseline("golden@v1", created, {"production_baseline": baseline}, cases)
        window = baseline["window"]
        golden_days = (date.fromisoformat(window["start"]), date.fromisoformat(window["end"]))
        reference = Counter(load_traffic(con, *golden_days, config, embeddings=False, texts=False)
                            .column("intent_id").drop_nulls().to_list())
        sample_mix = Counter(c["intent_id"] for c in cases if c.get("intent_id"))
        # What the weekly asset reads from the lake (no lake here: no rolling set, no verdicts),
        # then each week's inputs by the asset's own code, which reads the golden window's traffic
        # once and reuses each week as the next one's week before.
        reads = RunReads(golden, [{"ref": golden.ref, "created_at": created, "pass_rate": None,
                                   "cases_with_verdict": 0}], [], intent_names(con),
                         failure_rates(con, week_start(WEEKS) - timedelta(days=1)))
        for index in reported_weeks():
            inputs = load_week_inputs(con, scenario.folder, week_start(index), config, reads)
            report = compute_week(inputs, config)
            current = Counter(inputs.week.column("intent_id").drop_nulls().to_list())
            results.append(WeekResult(
                index=index,
                breaches=[(s.signal, s.baseline, s.severity) for s in report.signals if s.severity],
                values={(s.signal, s.baseline): s.value for s in report.signals},
                evidently_distance=js_distance(reference, current),
                evidently_sample_distance=js_distance(sample_mix, current)))
    scenario.seconds["drift"] = time.perf_counter() - clock
    return results


# -- scoring ----------------------------------------------------------------------------------------

@dataclass
class Score:
    planted: dict[str, int | None]  # change -> week index it happens in (None: not planted)
    flagged: dict[str, int | None]  # change -> first reported week at/after it with a detector breach
    by: dict[str, list[str]]  # change -> the detector signals that breached in its week
    false_alarms: dict[int, list[str]]  # week index -> breaches counted as false alarms
    stable_weeks: list[int]  # reported weeks with no change at or before them
    evidently_flagged: dict[str, int | None]
    evidently_false: list[int]  # stable weeks (for the intent mix) where Evidently called drift


def score(scenario: Scenario, weeks: list[WeekResult]) -> Score:
    planted = {c: (week_of(d) if d else None) for c, d in scenario.changes.items()}
    flagged: dict[str, int | None] = {}
    by: dict[str, list[str]] = {}
    for change, at in planted.items():
        flagged[change], by[change] = None, []
        if at is None:
            continue
        for week in weeks:
            hits = sorted({f"{s}/{b}" for s, b, _ in week.breaches if s.startswith(DETECTORS[change])})
            if week.index >= at and hits:
                flagged[change] = week.index
                by[change] = hits
                break
    false_alarms: dict[int, list[str]] = {}
    for week in weeks:
        wrong = []
        for signal, baseline, severity in week.breaches:
            family = family_of(signal)
            if family is None or planted[family] is None or planted[family] > week.index:
                wrong.append(f"{signal}/{baseline}:{severity}")
        if wrong:
            false_alarms[week.index] = sorted(wrong)
    first_change = min((w for w in planted.values() if w is not None), default=None)
    stable = [w.index for w in weeks if first_change is None or w.index < first_change]
    shift = planted["intent_mix_shift"]
    evidently_flagged = {c: None for c in CHANGES}
    if shift is not None:
        evidently_flagged["intent_mix_shift"] = next(
            (w.index for w in weeks if w.index >= shift and (w.evidently_distance or 0) >= EVIDENTLY_THRESHOLD), None)
    evidently_false = [w.index for w in weeks if (shift is None or w.index < shift)
                       and (w.evidently_distance or 0) >= EVIDENTLY_THRESHOLD]
    return Score(planted, flagged, by, false_alarms, stable, evidently_flagged, evidently_false)


# -- printing ---------------------------------------------------------------------------------------

def wk(index: int | None) -> str:
    return "-" if index is None else f"wk{index + 1}"


def print_scenario(scenario: Scenario, weeks: list[WeekResult], result: Score) -> None:
    kind = "stable month (nothing planted)" if scenario.stable else ", ".join(
        f"{SHORT[c]} {d.isoformat()} ({d:%a}, {wk(week_of(d))})" for c, d in scenario.changes.items())
    took = sum(scenario.seconds.values())
    print(f"\nseed {scenario.seed}: {kind}")
    reported = reported_weeks()
    print(f"  {scenario.traces} traces, {scenario.intents} intents discovered, golden window "
          f"{wk(0)}-{wk(GOLDEN_WEEKS - 1)}, reported {wk(reported[0])}-{wk(reported[-1])}; {took:.0f} s")
    if not scenario.stable:
        print(f"  {'change':<9} {'planted':<8} {'evalflow':<11} {'Evidently':<11} evalflow's signals in that week")
        for change in CHANGES:
            planted, flagged, ev = result.planted[change], result.flagged[change], result.evidently_flagged[change]
            mark = "" if flagged is None else (" ok" if flagged == planted else " LATE")
            ev_text = "n/a" if change != "intent_mix_shift" else (
                wk(ev) + ("" if ev is None else (" ok" if ev == planted else " LATE")))
            print(f"  {SHORT[change]:<9} {wk(planted):<8} {(wk(flagged) + mark):<11} {ev_text:<11} "
                  f"{', '.join(result.by[change]) or 'MISSED'}")
    for week in weeks:
        alarms = result.false_alarms.get(week.index, [])
        stable = "stable" if week.index in result.stable_weeks else "      "
        ev = "-" if week.evidently_distance is None else f"{week.evidently_distance:.3f}"
        js = week.values.get(("intent_mix", "golden"))
        js_text = "-" if js is None else f"{js:.4f}"
        breached = ", ".join(f"{s}/{'g' if b == 'golden' else 'p'}" for s, b, _ in week.breaches) or "none"
        print(f"  {wk(week.index)} {stable} intent JS (bits) vs golden {js_text:>7}, Evidently distance {ev:>5}"
              f"{' DRIFT' if (week.evidently_distance or 0) >= EVIDENTLY_THRESHOLD else '      '}; "
              f"evalflow breaches (g: vs golden, p: vs previous week): {breached}")
        if alarms:
            print(f"       FALSE ALARMS: {', '.join(alarms)}")


def summarise(scenarios: list[tuple[Scenario, list[WeekResult], Score]]) -> None:
    print("\nsummary")
    rows = []
    for change in CHANGES:
        planted = [s for _, _, s in scenarios if s.planted[change] is not None]
        ours = sum(s.flagged[change] == s.planted[change] for s in planted)
        late = sum(s.flagged[change] is not None and s.flagged[change] != s.planted[change] for s in planted)
        theirs = sum(s.evidently_flagged[change] == s.planted[change] for s in planted)
        theirs_late = sum(s.evidently_flagged[change] is not None and s.evidently_flagged[change] != s.planted[change]
                          for s in planted)
        rows.append((SHORT[change], len(planted), ours, late, theirs, theirs_late))
    total = sum(r[1] for r in rows)
    print(f"  {'':<38} {'evalflow':>10} {'Evidently-style':>16}")
    print(f"  {'changes caught in their week':<38} {f'{sum(r[2] for r in rows)}/{total}':>10} "
          f"{f'{sum(r[4] for r in rows)}/{total}':>16}")
    for name, n, ours, late, theirs, theirs_late in rows:
        label = f"  {name} (caught later)"
        print(f"  {label:<38} {f'{ours}/{n} ({late})':>10} {f'{theirs}/{n} ({theirs_late})':>16}")
    stable_weeks = [(sc.seed, w) for sc, _, s in scenarios for w in s.stable_weeks]
    ours_alarmed = [(sc.seed, w) for sc, _, s in scenarios for w in s.stable_weeks if w in s.false_alarms]
    weeks_by_seed = {sc.seed: {w.index: w for w in weeks} for sc, weeks, _ in scenarios}
    theirs_alarmed = [(seed, w) for seed, w in stable_weeks
                      if (weeks_by_seed[seed][w].evidently_distance or 0) >= EVIDENTLY_THRESHOLD]
    naive = [(seed, w) for seed, w in stable_weeks
             if (weeks_by_seed[seed][w].evidently_sample_distance or 0) >= EVIDENTLY_THRESHOLD]
    print(f"  {'stable weeks with an alarm':<38} {f'{len(ours_alarmed)}/{len(stable_weeks)}':>10} "
          f"{f'{len(theirs_alarmed)}/{len(stable_weeks)}':>16}")
    reported = sum(len(weeks) for _, weeks, _ in scenarios)
    ours_any = sum(len(s.false_alarms) for _, _, s in scenarios)
    theirs_any = sum(len(s.evidently_false) for _, _, s in scenarios)
    label = "weeks with an alarm of an unchanged kind"
    print(f"  {label:<38} {f'{ours_any}/{reported}':>10} {f'{theirs_any}/{reported}':>16}")
    print(f"  Evidently-style against the golden set's own (stratified) intent mix instead of production: "
          f"{len(naive)}/{len(stable_weeks)} stable weeks alarm")
    print("  (an alarm of an unchanged kind: evalflow, a breach of a signal whose change has not happened yet,"
          " or of a signal no planted change explains; Evidently-style, drift called before the intent-mix"
          " shift, any week)")
    wrong = [(sc.seed, w, a) for sc, _, s in scenarios for w, a in sorted(s.false_alarms.items())]
    for seed, w, alarms in wrong:
        print(f"  evalflow false alarm: seed {seed} {wk(w)}: {', '.join(alarms)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="*", help="seeds with planted changes (default: held-out)")
    parser.add_argument("--stable-seeds", type=int, nargs="*", help="seeds of months without a change")
    parser.add_argument("--dev", action="store_true", help="the development seeds (for threshold advice)")
    parser.add_argument("--per-day", type=int, default=300, help="traces per day (default 300)")
    parser.add_argument("--golden-budget", type=int, default=200, help="golden cases (default 200)")
    parser.add_argument("--workdir", type=Path, help="keep the simulated data here (default: a temp folder)")
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else (DEV_SEEDS if args.dev else HELD_OUT_SEEDS)
    stable = args.stable_seeds if args.stable_seeds is not None else (DEV_STABLE if args.dev else HELD_OUT_STABLE)
    print(f"drift detection: {len(seeds)} seeds with planted changes {list(seeds)}, {len(stable)} stable months "
          f"{list(stable)}; {WEEKS} weeks from {START.isoformat()} at {args.per_day}/day; golden set: "
          f"{args.golden_budget} cases from {wk(0)}-{wk(GOLDEN_WEEKS - 1)}; default DriftConfig", flush=True)
    started = time.perf_counter()
    embedder = MemoEmbedder()
    done = []
    with tempfile.TemporaryDirectory(prefix="evalflow-drift-bench-") as tmp:
        base = args.workdir or Path(tmp)
        for seed, is_stable in [(s, False) for s in seeds] + [(s, True) for s in stable]:
            folder = base / f"{'stable' if is_stable else 'seed'}-{seed}"
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            scenario = Scenario(seed, is_stable, plan_changes(seed, is_stable), folder)
            build_warehouse(scenario, args.per_day, embedder)
            weeks = weekly_reports(scenario, args.golden_budget)
            result = score(scenario, weeks)
            print_scenario(scenario, weeks, result)
            sys.stdout.flush()
            done.append((scenario, weeks, result))
            if args.workdir is None:
                shutil.rmtree(folder)
    summarise(done)
    print(f"\n{time.perf_counter() - started:.0f} s in all ({embedder.encoded} distinct texts embedded)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
