"""`evalflow judge calibrate`: calibrate an LLM judge against human labels, from files.

The same functions the pipeline uses (evalflow.lib.judge); only the storage differs: cases as
JSONL, labels as a long-format CSV, the verdict cache in its own DuckDB file
(<data>/judge/cache.duckdb, or --cache), a table on stdout and a JSON report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

COMMAND = (
    "calibrate an LLM judge against human labels (judge calibrate)",
    "`evalflow judge calibrate` judges human-labelled cases with each prompt variant of a dimension through any "
    "OpenAI-compatible endpoint (EVALFLOW_JUDGE_BASE_URL, EVALFLOW_JUDGE_MODEL, EVALFLOW_JUDGE_API_KEY). Labels "
    "are long-format ratings (item_id = case_id, Pass/Fail); their majority vote gives the human verdicts, and "
    "only agreed ones count. Holdout cases (20%, by case-id hash) are listed and never sent; the rest split by "
    "hash into a tuning part, where the best variant is chosen, and a test part, where only that variant is "
    "measured (agreement, Cohen's kappa, TPR and TNR with Fail as the positive class). Calibrated = test "
    "agreement >= 0.85, kappa >= 0.6, at least 20 test cases, and the human agreement gate open. Replies are "
    "cached by (model, prompt sha256, case sha256): a re-run sends nothing twice.",
    ["evalflow judge calibrate --cases cases.jsonl --labels labels.csv --dimension accuracy -o report.json",
     "evalflow judge calibrate --cases cases.jsonl --labels labels.csv --dimension policy "
     "--prompt policy.md --prompt policy.strict.md --cache judge-cache.duckdb -o policy.json"],
)

CASE_KEYS = ("case_id", "input", "output", "expected_behavior")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="judge_command", required=True, metavar="SUBCOMMAND",
                               help="calibrate: measure the judge against human labels for one dimension")
    calibrate = sub.add_parser(
        "calibrate", help="calibrate the judge for one dimension against human labels",
        description=COMMAND[1], epilog="examples:\n" + "\n".join(f"  {e}" for e in COMMAND[2]),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    calibrate.add_argument("--cases", required=True, metavar="CASES.jsonl",
                           help='one JSON object per line: {"case_id", "input", "output", "expected_behavior"} '
                           '(optional "rubric": text, or {dimension: text})')
    calibrate.add_argument("--labels", required=True, metavar="LABELS.csv",
                           help="long-format ratings: item_id,annotator,dimension,value (item_id = case_id; "
                           "Pass/Fail; an optional role column: annotator, expert, feedback)")
    calibrate.add_argument("--dimension", required=True, help="the dimension to calibrate, e.g. accuracy")
    calibrate.add_argument("--prompt", action="append", metavar="FILE",
                           help="a prompt template to try (repeatable: each is a variant). Default: the "
                           "dimension's templates in EVALFLOW_JUDGE_PROMPTS_DIR (<data>/judge/prompts)")
    calibrate.add_argument("--cache", metavar="PATH",
                           help="the verdict cache, a DuckDB file (default <data>/judge/cache.duckdb)")
    calibrate.add_argument("--human-gate", choices=("computed", "open", "closed"), default="computed",
                           help="the human agreement gate: computed from LABELS.csv (default: percent agreement "
                           ">= EVALFLOW_HUMAN_AGREEMENT_MIN on >= EVALFLOW_GATE_MIN_ITEMS items), or taken as "
                           "open/closed (open prints a warning)")
    calibrate.add_argument("-o", "--output", required=True, metavar="REPORT.json", help="write the JSON report here")
    calibrate.set_defaults(judge_handler=_calibrate)


def run(args: argparse.Namespace) -> int:
    return args.judge_handler(args)


def _calibrate(args: argparse.Namespace) -> int:
    from evalflow.cli import UserError
    from evalflow.cli.agreement import write_report
    from evalflow.lib.common.settings import load_settings
    from evalflow.lib.common.warehouse import Warehouse
    from evalflow.lib.judge.bias import calibration_verbosity
    from evalflow.lib.judge.calibrate import calibrate, human_verdicts
    from evalflow.lib.judge.client import JudgeClient, JudgeRequestError
    from evalflow.lib.judge.config import MissingJudgeSetting, calibration_thresholds, client_settings
    from evalflow.lib.judge.store import VerdictCacheStore
    from evalflow.lib.labels.consensus import majority_vote

    try:
        settings = client_settings()
    except MissingJudgeSetting as exc:
        raise UserError(str(exc)) from None
    data_dir = load_settings().data_dir
    dimension = args.dimension.strip()
    cases = read_cases(Path(args.cases))
    ratings = dimension_ratings(Path(args.labels), dimension)
    templates = prompt_templates(args.prompt, dimension, data_dir)
    try:
        gate_open, gate_reason = human_gate(args.human_gate, ratings, dimension)
        consensus = majority_vote(ratings)
    except ValueError as exc:  # an annotator rating an item twice, an unknown role...
        raise UserError(f"{args.labels}: {exc}") from None
    if args.human_gate == "open":
        print(f"evalflow: warning: the human agreement gate of {dimension} was not computed; taken as open "
              "(--human-gate computed checks it on LABELS.csv)", file=sys.stderr)
    human = human_verdicts(consensus, dimension)
    if not human:
        raise UserError(f"{args.labels}: no case of dimension {dimension!r} has an agreed consensus label "
                        "(each needs two or more ratings with a majority)")
    cache_path = Path(args.cache) if args.cache else data_dir / "judge" / "cache.duckdb"
    cache = VerdictCacheStore(Warehouse(cache_path), describe=False)
    with JudgeClient(settings, cache=cache) as client:
        try:
            calibration = calibrate(cases, human, dimension, templates, client, gate_open, calibration_thresholds())
        except JudgeRequestError as exc:
            raise UserError(str(exc)) from None
        usage = client.stats.as_dict()
    report = calibration.to_report() | {"human_gate": {"open": gate_open, "how": args.human_gate,
                                                       "reason": gate_reason},
                                        "usage": usage, "cache": str(cache_path),
                                        "verbosity": calibration_verbosity(calibration, cases)}
    print(format_table(report))
    write_report(report, Path(args.output))
    print(f"\nwrote {args.output}")
    return 0


def read_cases(path: Path) -> dict[str, dict[str, Any]]:
    """{case_id: case} from JSONL; a line that is not a case object is a UserError naming it."""
    import orjson

    from evalflow.cli import UserError

    if not path.is_file():
        raise UserError(f"no such file: {path}")
    cases: dict[str, dict[str, Any]] = {}
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                case = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise UserError(f"{path} line {number}: not JSON") from None
            if not isinstance(case, dict) or not isinstance(case.get("case_id"), str) or not case["case_id"].strip():
                raise UserError(f"{path} line {number}: expected an object with a case_id (and input, output, "
                                "expected_behavior)")
            if "output" not in case:
                raise UserError(f"{path} line {number}: case {case['case_id']} has no output to judge")
            if case["case_id"] in cases:
                raise UserError(f"{path} line {number}: case {case['case_id']} appears twice")
            cases[case["case_id"]] = case
    if not cases:
        raise UserError(f"{path} holds no cases")
    return cases


def dimension_ratings(path: Path, dimension: str):
    """The dimension's ratings from the labels CSV, with Pass/Fail written as such (any case)."""
    import polars as pl

    from evalflow.cli import UserError
    from evalflow.cli.agreement import read_ratings

    ratings = read_ratings(path)
    rows = ratings.filter(pl.col("dimension").str.strip_chars() == dimension)
    if rows.is_empty():
        found = sorted(set(ratings["dimension"].drop_nulls().to_list()))
        raise UserError(f"{path} has no ratings of dimension {dimension!r} (it has: {', '.join(found[:10]) or '-'})")
    value = pl.col("value").str.strip_chars()
    rows = rows.with_columns(
        pl.col("dimension").str.strip_chars(),
        pl.when(value.str.to_lowercase() == "pass").then(pl.lit("Pass"))
        .when(value.str.to_lowercase() == "fail").then(pl.lit("Fail"))
        .when(value == "").then(pl.lit(None, dtype=pl.String)).otherwise(value).alias("value"))
    bad = rows.filter(pl.col("value").is_not_null() & ~pl.col("value").is_in(["Pass", "Fail"]))
    if not bad.is_empty():
        raise UserError(f"{path}: values of {dimension} must be Pass or Fail; found {bad['value'][0]!r} "
                        f"({bad.height} rating(s))")
    return rows


def prompt_templates(files: list[str] | None, dimension: str, data_dir: Path):
    from evalflow.cli import UserError
    from evalflow.lib.judge.config import prompts_dir
    from evalflow.lib.judge.prompts import PromptError, ensure_prompts_dir, load_templates, template_from_file

    try:
        if files:
            templates = [template_from_file(Path(f), dimension) for f in files]
        else:
            templates = load_templates(ensure_prompts_dir(prompts_dir(data_dir)), dimension)
    except PromptError as exc:
        raise UserError(str(exc)) from None
    names = [t.variant for t in templates]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise UserError(f"two prompt files give the variant name {duplicate!r}; rename one")
    return templates


def human_gate(how: str, ratings, dimension: str) -> tuple[bool, str]:
    """(open?, why) for the dimension's human agreement gate."""
    if how in ("open", "closed"):
        return how == "open", f"taken as {how} (--human-gate {how}), not computed"
    import polars as pl

    from evalflow.lib.labels.agreement import agreement_report
    from evalflow.lib.labels.gate import automation_gate

    if "role" in ratings.columns:  # the gate is on annotators agreeing; experts and thumbs are not annotators
        role = pl.col("role").str.strip_chars()
        ratings = ratings.filter(role.is_null() | role.is_in(["", "annotator"]))
    report = agreement_report(ratings.select("item_id", "annotator", "dimension", "value"), "nominal", n_boot=0)
    if dimension not in report["dimensions"]:
        return False, "closed: no annotator ratings"
    gate = automation_gate({"dimensions": {dimension: report["dimensions"][dimension]}})
    row = gate.row(0, named=True)
    return bool(row["gate_open"]), row["reason"]


def format_table(report: dict) -> str:
    header = ("part", "n", "agreement", "kappa", "TPR", "TNR", "tp", "fn", "fp", "tn", "unparseable")
    rows = []
    for part in ("tune", "test"):
        f = report[part]
        c = f["confusion"]
        rows.append((part, str(f["n"]), _number(f["agreement"]), _number(f["kappa"]), _number(f["tpr"]),
                     _number(f["tnr"]), str(c["tp"]), str(c["fn"]), str(c["fp"]), str(c["tn"]), str(f["unparseable"])))
    lines = [f"judge calibration: dimension {report['dimension']}, model {report['model']}, prompt "
             f"{report['variant']} (sha256 {report['prompt_sha256'][:12]})", ""]
    if len(report["variants"]) > 1:
        lines.append("variants on the tuning part (the best is measured on the test part):")
        for v in report["variants"]:
            mark = "*" if v["prompt_sha256"] == report["prompt_sha256"] else " "
            lines.append(f"  {mark} {v['variant']:<20} sha256 {v['prompt_sha256'][:12]}  n {v['tune']['n']:>4}  "
                         f"agreement {_number(v['tune']['agreement'])}  kappa {_number(v['tune']['kappa'])}")
        lines.append("")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines += ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
              for r in [header, *rows]]
    usage = report["usage"]
    gate = report["human_gate"]
    lines += ["", "positive class: Fail (TPR: human Fails the judge also fails; TNR: human Passes it passes)",
              f"holdout: {report['holdout']} labelled cases listed, none sent to the judge",
              f"human agreement gate: {'open' if gate['open'] else 'closed'} ({gate['reason']})",
              f"requests sent {usage['requests_sent']} (retries {usage['retries']}), cache hits {usage['cache_hits']}, "
              f"tokens {usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion, "
              f"unparseable replies {usage['unparseable']}"]
    if report["labels_without_case"]:
        lines.append(f"labels without a case in CASES.jsonl: {report['labels_without_case']} (not judged)")
    verdict = "yes" if report["calibrated"] else "no: " + "; ".join(report["shortfalls"])
    lines.append(f"calibrated: {verdict}")
    return "\n".join(lines)


def _number(value) -> str:
    return "-" if value is None else f"{value:.3f}"
