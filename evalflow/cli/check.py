"""`evalflow check`: the CI gate on a pinned dataset version (evalflow.lib.eval_cases.gate).

Exit codes: 0 the gate passed; 3 the gate failed (a pass rate below the threshold, a case of the
safety edge set failed, a response missing, or no case with a verdict); 1 the gate could not
run (a version pin that does not exist or does not verify, an unreadable responses file, a
broken check definition, --judge without EVALFLOW_JUDGE_BASE_URL or EVALFLOW_JUDGE_MODEL); 2 usage;
70 a bug.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

COMMAND = (
    "gate a pinned dataset version against your system's answers (CI)",
    "Runs each case of the pinned version (golden@vN, rolling@YYYY-MM-DD; read from the lake and verified "
    "against its manifest first: a pin that does not exist or does not verify is an error, never a fallback to"
    " another version) against RESPONSES.jsonl ({\"case_id\", \"output\"} per line): its deterministic checks and,"
    " with --judge, the calibrated LLM judge of each dimension that has one (checks first: a case a check "
    "already failed is not sent to the judge; dev cases only: holdout cases never reach the judge). A case "
    "passes when every check and judged dimension passes; a case with neither has no verdict and is counted "
    "apart. Prints pass rates overall, per slice (intent, risk level, the safety edge set) and for the holdout"
    " apart from dev. Exit 0: the gate passed; 3: it failed (pass rate below --min-pass-rate, any safety case "
    "failed, a response missing, or no case with a verdict), with a one-line reason; 1: it could not run.",
    ["evalflow check --snapshot golden@v3 --responses responses.jsonl --junit gate.xml",
     "evalflow check --snapshot golden@v3 --responses responses.jsonl --judge --min-pass-rate 0.9"],
)
_FAILED_SHOWN = 50  # failed cases listed on stdout (the JUnit report has every one)


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    from evalflow.lib.eval_cases.gate import DEFAULT_MIN_PASS_RATE

    parser.add_argument("--snapshot", required=True, metavar="NAME@VERSION",
                        help="the pinned dataset version, e.g. golden@v3 (never 'the newest')")
    parser.add_argument("--responses", required=True, metavar="RESPONSES.jsonl",
                        help='one JSON object per line: {"case_id": ..., "output": ...} (output null: no text)')
    parser.add_argument("--judge", action="store_true",
                        help="also judge dev cases whose checks passed with each dimension's calibrated judge; "
                        "needs EVALFLOW_JUDGE_BASE_URL and EVALFLOW_JUDGE_MODEL (exit 1 without them); a dimension "
                        "with no calibrated judge for that model is named and gated on its checks only")
    parser.add_argument("--junit", metavar="OUT.xml", help="write a JUnit XML report (one testcase per case)")
    parser.add_argument("--min-pass-rate", type=_rate, default=DEFAULT_MIN_PASS_RATE, metavar="X",
                        help=f"the overall pass rate the gate needs, 0..1 (default {DEFAULT_MIN_PASS_RATE})")


def run(args: argparse.Namespace) -> int:
    from evalflow.cli import UserError
    from evalflow.lib.common.settings import load_settings
    from evalflow.lib.eval_cases.gate import GateInputError, evaluate, load_version, read_responses, write_junit
    from evalflow.lib.eval_cases.schema import InvalidCase

    data_dir = load_settings().data_dir
    try:
        cases = load_version(data_dir, args.snapshot)
        responses = read_responses(Path(args.responses))
    except GateInputError as exc:
        raise UserError(str(exc)) from None
    try:
        if args.judge:
            judge, dimensions, notes = _judge(cases, responses)
        else:
            judge, dimensions, notes = None, [], ["judge: not asked (checks only)"]
        report = evaluate(cases, responses, judge=judge, min_pass_rate=args.min_pass_rate, ref=args.snapshot,
                          judged_dimensions=dimensions, notes=notes)
    except InvalidCase as exc:
        raise UserError(f"{args.snapshot}: {' '.join(str(exc).split())}") from None
    print(format_report(report))
    if args.junit:
        write_junit(report, Path(args.junit))
        print(f"wrote {args.junit}")
    print(report.reason)
    sys.stdout.flush()
    return report.exit_code


def _judge(cases: list[dict[str, Any]], responses: dict[str, Any]):
    """(judge callable or None, judged dimensions, notes) for --judge."""
    from evalflow.cli import UserError
    from evalflow.lib.common.settings import load_settings
    from evalflow.lib.common.warehouse import Warehouse
    from evalflow.lib.eval_cases.gate import calibrated_judge
    from evalflow.lib.judge.client import JudgeClient, JudgeRequestError
    from evalflow.lib.judge.config import MissingJudgeSetting, client_settings
    from evalflow.lib.judge.pipeline import calibrated_judges, prompts_dir
    from evalflow.lib.judge.store import VerdictCacheStore

    try:
        client_config = client_settings()
    except MissingJudgeSetting as exc:
        raise UserError(f"--judge: {exc}") from None
    settings = load_settings()
    if not settings.warehouse_path.is_file():
        return None, [], [f"judge: no calibrated judge (no warehouse at {settings.warehouse_path}); checks only"]
    judges, why_not = calibrated_judges(Warehouse(settings.warehouse_path), prompts_dir(settings), client_config.model)
    if not judges:
        why = f" ({'; '.join(why_not)})" if why_not else ""
        return None, [], [f"judge: no dimension has a calibrated judge for {client_config.model}{why}; checks only"]
    dimensions = [j.dimension for j in judges]
    notes = [f"judge: {', '.join(dimensions)} by {client_config.model} (calibrated prompts); dev cases only, "
             "holdout cases are gated on their checks"]
    if why_not:
        notes.append("judge: not judged: " + "; ".join(why_not))
    cache = VerdictCacheStore(Warehouse(settings.data_dir / "judge" / "cache.duckdb"), describe=False)
    with JudgeClient(client_config, cache=cache) as client:
        try:
            judge = calibrated_judge(cases, responses, judges, client)
        except JudgeRequestError as exc:
            raise UserError(str(exc)) from None
        usage = client.stats.as_dict()
    notes.append(f"judge: {len(judge.sent)} dev case(s) judged; {len(judge.skipped_by_checks)} not sent "
                 "(a deterministic check already failed them)")
    notes.append(f"judge: {usage['requests_sent']} request(s) sent, {usage['cache_hits']} cache hit(s), "
                 f"{usage['unparseable']} unparseable repl(ies)")
    return judge, dimensions, notes


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _slice_order(name: str) -> tuple:
    kind = name.split(":", 1)[0] if ":" in name else ""
    return ({"safety": 0}.get(name, 1), {"intent": 0, "risk": 1}.get(kind, 2), name)


def format_report(report) -> str:
    """The figures as a table, the failed cases one per line, and the notes."""
    overall = report.overall
    lines = [f"{report.ref}: {overall.all.cases} cases ({overall.dev.cases} dev, {overall.holdout.cases} holdout)"]
    lines += report.notes
    header = ("slice", "cases", "passed", "failed", "missing", "no verdict", "pass rate", "dev", "holdout")
    rows = []
    for name, rates in [("overall", overall), *sorted(report.slices.items(), key=lambda kv: _slice_order(kv[0]))]:
        r = rates.all
        rows.append((name, str(r.cases), str(r.passed), str(r.failed), str(r.missing), str(r.no_verdict),
                     _number(r.pass_rate), _number(rates.dev.pass_rate), _number(rates.holdout.pass_rate)))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines.append("")
    lines += ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
              for row in [header, *rows]]
    lines.append("pass rate = passed / (passed + failed + missing); dev, holdout: the same within each split; "
                 "cases without a verdict are not in it")
    failed = [r for r in report.results if r.status in ("fail", "missing")]
    if failed:
        lines += ["", f"failed cases ({len(failed)}):"]
        for result in failed[:_FAILED_SHOWN]:
            marks = [result.split] + (["safety"] if result.safety else [])
            lines.append(f"  {result.name} [{', '.join(marks)}]: {result.summary}")
        if len(failed) > _FAILED_SHOWN:
            lines.append(f"  ... and {len(failed) - _FAILED_SHOWN} more (--junit writes every one)")
    if report.unknown_responses:
        shown = ", ".join(report.unknown_responses[:5])
        lines.append(f"\n{len(report.unknown_responses)} response(s) name no case of {report.ref} (ignored): {shown}"
                     + (" ..." if len(report.unknown_responses) > 5 else ""))
    lines.append("")
    return "\n".join(lines)
