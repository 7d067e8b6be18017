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
    "calibrate an LLM judge against human labels, check its pairwise order bias (judge calibrate|pairwise)",
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
     "--prompt policy.md --prompt policy.strict.md --cache judge-cache.duckdb -o policy.json",
     "evalflow judge pairwise --pairs pairs.jsonl --dimension accuracy -o pairwise.json"],
)

PAIRWISE_DESCRIPTION = (
    "`evalflow judge pairwise` checks whether the judge may compare two answers to one input. Each pair is "
    "sent in both orders (A shown first, then B shown first) through the same client as calibrate (endpoint "
    "settings, bounded concurrency, retries, the verdict cache: a re-run sends nothing twice). When the two "
    "preferences, mapped back to A/B, differ the pair is an order flip and counts as a tie. The flip rate "
    "(flips / pairs with both replies readable) must be at most EVALFLOW_JUDGE_MAX_FLIP_RATE (0.10): above it "
    "the command writes the report and exits 1, the judge not usable pairwise. Verbosity bias: over pairs with "
    "a human 'a' or 'b', agreement on pairs whose Pass answer is the shorter one vs the longer one, side by "
    "side. Holdout pairs (20%, by case-id hash, as in calibrate) are listed and never sent."
)

CASE_KEYS = ("case_id", "input", "output", "expected_behavior")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="judge_command", required=True, metavar="SUBCOMMAND",
                               help="calibrate: measure the judge against human labels for one dimension; "
                               "pairwise: its order-flip rate and verbosity bias on pairs of answers")
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
    pairwise = sub.add_parser(
        "pairwise", help="measure the judge's order-flip rate and verbosity bias on pairs of answers",
        description=PAIRWISE_DESCRIPTION,
        epilog="examples:\n  evalflow judge pairwise --pairs pairs.jsonl --dimension accuracy -o pairwise.json\n"
        "  evalflow judge pairwise --pairs pairs.jsonl --dimension policy --prompt pairwise.strict.md "
        "--cache judge-cache.duckdb -o policy-pairwise.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    pairwise.add_argument("--pairs", required=True, metavar="PAIRS.jsonl",
                          help='one JSON object per line: {"case_id", "input", "output_a", "output_b"} (optional '
                          '"expected_behavior"; "rubric": text or {dimension: text}; "human": "a", "b" or "tie")')
    pairwise.add_argument("--dimension", required=True, help="the dimension the answers are compared on")
    pairwise.add_argument("--prompt", metavar="FILE",
                          help="the pairwise prompt template (default: pairwise.md in EVALFLOW_JUDGE_PROMPTS_DIR, "
                          "<data>/judge/prompts)")
    pairwise.add_argument("--cache", metavar="PATH",
                          help="the verdict cache, a DuckDB file (default <data>/judge/cache.duckdb)")
    pairwise.add_argument("-o", "--output", required=True, metavar="REPORT.json", help="write the JSON report here")
    pairwise.set_defaults(judge_handler=_pairwise)


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


def _pairwise(args: argparse.Namespace) -> int:
    from evalflow.cli import UserError
    from evalflow.cli.agreement import write_report
    from evalflow.lib.common.settings import load_settings
    from evalflow.lib.common.warehouse import Warehouse
    from evalflow.lib.judge.bias import judge_pairs, position_bias, verbosity_bias_pairwise
    from evalflow.lib.judge.cases import case_split
    from evalflow.lib.judge.client import JudgeClient, JudgeRequestError
    from evalflow.lib.judge.config import MissingJudgeSetting, client_settings, max_flip_rate
    from evalflow.lib.judge.store import VerdictCacheStore

    try:
        settings = client_settings()
    except MissingJudgeSetting as exc:
        raise UserError(str(exc)) from None
    data_dir = load_settings().data_dir
    dimension = args.dimension.strip()
    if not dimension:
        raise UserError("--dimension is empty")
    pairs = read_pairs(Path(args.pairs), dimension)
    template = pairwise_template(args.prompt, data_dir)
    # Holdout pairs never reach the judge, as in calibration.
    sent = [p for p in pairs if case_split(p["pair_id"]) != "holdout"]
    cache_path = Path(args.cache) if args.cache else data_dir / "judge" / "cache.duckdb"
    cache = VerdictCacheStore(Warehouse(cache_path), describe=False)
    with JudgeClient(settings, cache=cache) as client:
        try:
            outcomes = judge_pairs(sent, template, client, dimension) if sent else []
        except JudgeRequestError as exc:
            raise UserError(str(exc)) from None
        usage = client.stats.as_dict()
    limit = max_flip_rate()
    bias = position_bias(outcomes, limit)
    by_id = {o.pair_id: o for o in outcomes}
    rows, agreements = [], []
    for pair in pairs:
        outcome = by_id.get(pair["pair_id"])
        row = {"case_id": pair["pair_id"], "split": "holdout" if outcome is None else "judged",
               "a_first": None, "b_first": None, "flipped": None, "preferred": None, "human": pair.get("human")}
        if outcome is not None:
            row |= {"a_first": outcome.a_first, "b_first": outcome.b_first, "flipped": outcome.flipped,
                    "preferred": outcome.preferred}
            if pair.get("human") is not None and outcome.preferred is not None:
                agreements.append(outcome.preferred == pair["human"])
        rows.append(row)
    report = {
        "dimension": dimension, "model": settings.model, "prompt_sha256": template.sha256,
        "variant": template.variant, "pairs": len(pairs), "holdout": len(pairs) - len(sent), "judged": len(sent),
        "scored": bias["scored"], "unparseable": bias["unparseable"], "flips": bias["flips"],
        "flip_rate": bias["flip_rate"], "max_flip_rate": limit, "usable_pairwise": bias["usable_pairwise"],
        "human_agreement": {"n": len(agreements),
                            "agreement": sum(agreements) / len(agreements) if agreements else None},
        "verbosity": verbosity_bias_pairwise(sent, outcomes),
        "usage": usage, "cache": str(cache_path), "cases": rows,
    }
    print(format_pairwise_table(report))
    write_report(report, Path(args.output))
    print(f"\nwrote {args.output}")
    if not report["usable_pairwise"]:
        if report["flip_rate"] is None:
            reason = "no pair had both replies readable, so there is no flip rate"
        else:
            reason = f"flip rate {report['flip_rate']:.3f} is above the max {limit:.3f} (EVALFLOW_JUDGE_MAX_FLIP_RATE)"
        print(f"evalflow: judge not usable pairwise for {dimension}: {reason}", file=sys.stderr)
        return 1
    return 0


def read_pairs(path: Path, dimension: str) -> list[dict[str, Any]]:
    """The pairs of PAIRS.jsonl in the shape evalflow.lib.judge.bias reads (pair_id, input,
    answer_a, answer_b, rubric, pass_answer), with the human preference kept as `human`; a line
    that is not a pair is a UserError naming it. An expected behaviour without a rubric for the
    dimension becomes the rubric the judge sees."""
    import orjson

    from evalflow.cli import UserError
    from evalflow.lib.judge.cases import rubric_for

    if not path.is_file():
        raise UserError(f"no such file: {path}")
    pairs: list[dict[str, Any]] = []
    seen: set[str] = set()
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise UserError(f"{path} line {number}: not JSON") from None
            if not isinstance(row, dict) or not isinstance(row.get("case_id"), str) or not row["case_id"].strip():
                raise UserError(f"{path} line {number}: expected an object with a case_id (and input, output_a, "
                                "output_b)")
            case_id = row["case_id"]
            for key in ("output_a", "output_b"):
                if not isinstance(row.get(key), str):
                    raise UserError(f"{path} line {number}: pair {case_id} has no {key} (a string)")
            human = row.get("human")
            if isinstance(human, str):
                human = human.strip().lower() or None
            if human not in (None, "a", "b", "tie"):
                raise UserError(f"{path} line {number}: human must be \"a\", \"b\" or \"tie\", got {human!r}")
            if case_id in seen:
                raise UserError(f"{path} line {number}: pair {case_id} appears twice")
            seen.add(case_id)
            rubric = rubric_for(row, dimension)
            expected = row.get("expected_behavior")
            if rubric is None and expected not in (None, "", []):
                items = expected if isinstance(expected, list) else [expected]
                rubric = "A correct answer: " + "; ".join(str(item) for item in items)
            pair = {"pair_id": case_id, "input": row.get("input"), "answer_a": row["output_a"],
                    "answer_b": row["output_b"], "human": human}
            if rubric is not None:
                pair["rubric"] = rubric
            if human in ("a", "b"):
                pair["pass_answer"] = human
            pairs.append(pair)
    if not pairs:
        raise UserError(f"{path} holds no pairs")
    return pairs


def pairwise_template(file: str | None, data_dir: Path):
    from evalflow.cli import UserError
    from evalflow.lib.judge.config import prompts_dir
    from evalflow.lib.judge.prompts import PAIRWISE, PromptError, ensure_prompts_dir, load_templates, template_from_file

    try:
        if file:
            return template_from_file(Path(file), PAIRWISE)
        return load_templates(ensure_prompts_dir(prompts_dir(data_dir)), PAIRWISE)[0]
    except PromptError as exc:
        raise UserError(str(exc)) from None


def format_pairwise_table(report: dict) -> str:
    verbosity = report["verbosity"]
    short, long_ = verbosity["pass_shorter"], verbosity["pass_longer"]
    human = report["human_agreement"]
    rows = [("pairs", str(report["pairs"])),
            ("holdout (not sent)", str(report["holdout"])),
            ("judged in both orders", str(report["judged"])),
            ("unparseable", str(report["unparseable"])),
            ("order flips (ties)", str(report["flips"])),
            ("flip rate", _number(report["flip_rate"]) + f" (max {report['max_flip_rate']:.3f})"),
            ("agreement with human", f"{_number(human['agreement'])} on {human['n']}"),
            ("  Pass answer shorter", f"{_number(short['agreement'])} on {short['n']}"),
            ("  Pass answer longer", f"{_number(long_['agreement'])} on {long_['n']}"),
            ("  longer minus shorter", _number(verbosity["difference"]))]
    width = max(len(name) for name, _ in rows)
    usage = report["usage"]
    lines = [f"judge pairwise: dimension {report['dimension']}, model {report['model']}, prompt "
             f"{report['variant']} (sha256 {report['prompt_sha256'][:12]})", ""]
    lines += [f"{name.ljust(width)}  {value}" for name, value in rows]
    lines += ["", f"requests sent {usage['requests_sent']} (retries {usage['retries']}), cache hits "
              f"{usage['cache_hits']}, tokens {usage['prompt_tokens']} prompt + {usage['completion_tokens']} "
              "completion",
              f"usable pairwise: {'yes' if report['usable_pairwise'] else 'no'}"]
    return "\n".join(lines)


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
