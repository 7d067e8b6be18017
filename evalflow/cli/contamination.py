"""`evalflow contamination`: are these cases in those corpora? The same check the pipeline's
`contamination_report` runs (evalflow.lib.contamination), on files: cases JSONL in, a JSON
report out. Findings are the normal result (exit 0); only a mistake in the call exits non-zero.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

COMMAND = (
    "check eval cases against training, few-shot, judge-prompt and benchmark corpora",
    "Each case ({\"case_id\", \"text\"} per line; an eval case's user turns and query when it has no text) is "
    "looked for in every corpus by five methods: exact match after normalisation, 13-gram overlap, three seeded "
    "random 50-character substrings, MinHash LSH near-duplicates, and embedding similarity (the pipeline's "
    "embedder, offline) for paraphrases. The cases are indexed once and each corpus is read once, so a million "
    "documents take minutes. A corpus is NAME=PATH[:FIELD,...] (JSONL, CSV or Parquet; FIELD: the text fields, "
    "default `text` or every string field); --registered adds those of contamination.toml in the data folder "
    "(or EVALFLOW_CONTAMINATION_CONFIG), whose [thresholds] also apply. Prints what was found; -o writes the "
    "report with one object per case. Exit 0 whether or not anything is found.",
    ["evalflow contamination --cases cases.jsonl --corpus gsm8k=gsm8k_test.jsonl:question -o report.json",
     "evalflow contamination --cases cases.jsonl --corpus sft=sft.parquet:prompt,response --kind sft=fine_tuning "
     "--registered -o report.json",
     "evalflow contamination --cases cases.jsonl --corpus fewshot=prompts.csv:text --no-embed -o report.json"],
)


def _corpus_spec(text: str):
    from evalflow.lib.contamination import ContaminationConfigError, parse_corpus_spec

    try:
        return parse_corpus_spec(text)
    except ContaminationConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _kind_spec(text: str) -> tuple[str, str]:
    from evalflow.lib.contamination import REGISTERED_KINDS

    name, sep, kind = text.partition("=")
    if not sep or not name or kind not in REGISTERED_KINDS:
        raise argparse.ArgumentTypeError(f"expected NAME=KIND with KIND one of {', '.join(REGISTERED_KINDS)}, "
                                         f"got {text!r}")
    return name, kind


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cases", required=True, metavar="CASES.jsonl",
                        help='one JSON object per line: {"case_id", "text"} (or an eval case)')
    parser.add_argument("--corpus", action="append", type=_corpus_spec, default=[], metavar="NAME=PATH[:FIELD]",
                        help="a corpus to check against (repeatable): JSONL, CSV or Parquet; FIELD: its text "
                        "field(s), comma-separated")
    parser.add_argument("--kind", action="append", type=_kind_spec, default=[], metavar="NAME=KIND",
                        help="the kind of a --corpus (training, fine_tuning, few_shot, judge_prompt, "
                        "public_benchmark; default training)")
    parser.add_argument("--registered", action="store_true",
                        help="also check the corpora registered in <data>/contamination.toml")
    parser.add_argument("-o", "--output", required=True, metavar="REPORT.json", help="write the JSON report here")
    parser.add_argument("--no-embed", action="store_true",
                        help="leave out the embedding method (paraphrases): no model is loaded")


def run(args: argparse.Namespace) -> int:
    from evalflow.cli import UserError
    from evalflow.cli.agreement import write_report
    from evalflow.lib.common.settings import load_settings
    from evalflow.lib.contamination import (
        ContaminationConfigError,
        Corpus,
        check_cases,
        load_contamination_config,
        load_corpora_config,
    )

    data_dir = load_settings().data_dir
    kinds = dict(args.kind)
    given = [c.name for c in args.corpus]
    if len(set(given)) != len(given):
        raise UserError(f"a corpus name is given twice: {', '.join(sorted({n for n in given if given.count(n) > 1}))}")
    unknown = sorted(set(kinds) - set(given))
    if unknown:
        raise UserError(f"--kind names no --corpus: {', '.join(unknown)}")
    try:
        config = load_contamination_config(data_dir)
        corpora = [Corpus(c.name, kinds.get(c.name, c.kind), c.path, c.fields) for c in args.corpus]
        if args.registered:
            registered = load_corpora_config(data_dir)
            clash = sorted({c.name for c in registered} & set(given))
            if clash:
                raise UserError(f"--corpus repeats a registered corpus name: {', '.join(clash)}")
            corpora += registered
    except ContaminationConfigError as error:
        raise UserError(str(error)) from None
    if not corpora:
        raise UserError("no corpus to check against: give --corpus NAME=PATH (or --registered with corpora "
                        "registered in contamination.toml)")
    for corpus in corpora:
        if not corpus.path.is_file():
            raise UserError(f"corpus {corpus.name}: no such file: {corpus.path}")
        _check_format(corpus)
    cases = read_cases(Path(args.cases))
    embedder = None
    if not args.no_embed:
        from evalflow.lib.intents.embed import Embedder, EmbedderConfig

        print("loading the embedding model...", file=sys.stderr)
        embedder = Embedder(EmbedderConfig(backend="auto"))
    started = time.perf_counter()
    try:
        report = check_cases(cases, corpora, embedder=embedder, config=config)
    except ContaminationConfigError as error:
        raise UserError(str(error)) from None
    elapsed = time.perf_counter() - started
    print(format_summary(report))
    write_report(report, Path(args.output))
    print(f"\nwrote {args.output} ({elapsed:.1f} s)")
    return 0


def _check_format(corpus) -> None:
    from evalflow.cli import UserError
    from evalflow.lib.contamination import ContaminationConfigError
    from evalflow.lib.contamination.corpora import corpus_format

    try:
        corpus_format(corpus.path)
    except ContaminationConfigError as error:
        raise UserError(f"corpus {corpus.name}: {error}") from None


def read_cases(path: Path) -> list[dict]:
    """The cases file: one JSON object per line with a case_id (blank lines skipped)."""
    import orjson

    from evalflow.cli import UserError

    if not path.is_file():
        raise UserError(f"no such file: {path}")
    cases, seen = [], set()
    with path.open("rb") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                case = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                raise UserError(f"{path}:{line_no}: not JSON ({error})") from None
            if not isinstance(case, dict):
                raise UserError(f"{path}:{line_no}: expected an object with case_id and text")
            case_id = case.get("case_id")
            if not isinstance(case_id, str) or not case_id:
                raise UserError(f"{path}:{line_no}: case_id must be a non-empty string")
            if case_id in seen:
                raise UserError(f"{path}:{line_no}: case_id {case_id!r} appears twice")
            if "text" in case and not isinstance(case["text"], str):
                raise UserError(f"{path}:{line_no}: text must be a string")
            seen.add(case_id)
            cases.append(case)
    if not cases:
        raise UserError(f"{path} holds no cases")
    return cases


def format_summary(report: dict, limit: int = 20) -> str:
    summary = report["summary"]
    lines = [f"{summary['contaminated']} of {summary['cases']} cases found in a corpus "
             f"({summary['contaminated_share']:.1%})"]
    lines.append("by method: " + ", ".join(f"{m} {n}" for m, n in summary["by_method"].items()))
    header = ("corpus", "kind", "documents", "segments", "embedding", "cases found")
    rows = [(c["name"], c["kind"], str(c["documents"]), str(c["segments"]),
             f"{c['embedding']} ({c['embedded_segments']})", str(summary["by_corpus"].get(c["name"], 0)))
            for c in summary["corpora"]]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines.append("")
    lines += ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
              for r in [header, *rows]]
    found = [c for c in report["cases"] if c["contaminated"]]
    if found:
        lines += ["", f"cases found (best match{'; first ' + str(limit) if len(found) > limit else ''}):"]
        for case in found[:limit]:
            best = case["matches"][0]
            lines.append(f"  {case['case_id']}: {best['method']} {best['score']:.3f} in {best['corpus']} "
                         f"doc {best['doc_id']} ({case['matches_total']} matches)")
    return "\n".join(lines)
