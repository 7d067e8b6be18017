"""`evalflow agreement`: inter-annotator agreement of any long-format ratings file.

The same functions the pipeline uses (evalflow.lib.labels.agreement); only the storage differs:
a CSV in, a table on stdout and optionally a JSON report out.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

COMMAND = (
    "measure inter-annotator agreement in a ratings CSV",
    "Per dimension of a long-format ratings file (header item_id,annotator,dimension,value; an empty value is a "
    "missing rating; other columns are ignored): Krippendorff's alpha at the given level of measurement with a "
    "bootstrap 95% interval over items, percent agreement (the share of agreeing pairs of ratings per item, "
    "averaged over the items rated twice or more) and, for every pair of annotators, Cohen's kappa over the items "
    "both rated. Prints a table; -o writes the JSON report with every pair.",
    ["evalflow agreement ratings.csv --level nominal -o agreement.json",
     "evalflow agreement risk.csv --level ordinal --order low,medium,high --boot 2000 --seed 7"],
)

HEADER = ("item_id", "annotator", "dimension", "value")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ratings", metavar="RATINGS.csv",
                        help="long-format ratings: item_id,annotator,dimension,value (empty value = missing)")
    parser.add_argument("--level", required=True, choices=("nominal", "ordinal", "interval"),
                        help="level of measurement: nominal (Pass/Fail, labels), ordinal (ordered scale), "
                        "interval (numbers)")
    parser.add_argument("-o", "--output", metavar="REPORT.json", help="write the JSON report here")
    parser.add_argument("--boot", type=_count, default=1000, metavar="N",
                        help="bootstrap resamples for alpha's 95%% interval (default 1000; 0 skips it)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--order", metavar="LOW,...,HIGH",
                        help="ordinal labels from low to high, comma-separated (numbers are ordered as numbers "
                        "without it)")


def run(args: argparse.Namespace) -> int:
    from evalflow.cli import UserError
    from evalflow.lib.labels.agreement import agreement_report

    ratings = read_ratings(Path(args.ratings))
    order = [v.strip() for v in args.order.split(",")] if args.order else None
    if order is not None and args.level != "ordinal":
        raise UserError("--order only applies to --level ordinal")
    try:
        report = agreement_report(ratings, args.level, n_boot=args.boot, seed=args.seed, value_order=order)
    except ValueError as exc:
        raise UserError(f"{args.ratings}: {exc}") from None
    print(format_table(report))
    if args.output:
        write_report(report, Path(args.output))
        print(f"\nwrote {args.output}")
    return 0


def read_ratings(path: Path):
    """Every column as text (so "01" stays "01"); an empty field is a missing rating."""
    import polars as pl

    from evalflow.cli import UserError

    if not path.is_file():
        raise UserError(f"no such file: {path}")
    try:
        frame = pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} is not a readable CSV file: {first_line}") from None
    columns = [c.lstrip("\ufeff").strip() for c in frame.columns]
    if any(c not in columns for c in HEADER):
        raise UserError(f"{path}: the header must name the columns {','.join(HEADER)}; it has "
                        f"{','.join(columns[:8]) or 'nothing'}")
    frame.columns = columns
    if frame.height == 0:
        raise UserError(f"{path} has a header but no ratings")
    return frame


def format_table(report: dict) -> str:
    """One line per dimension, aligned; undefined alphas are explained below the table."""
    header = ("dimension", "items", "annotators", "ratings", "agreement", "alpha", "95% interval", "pairs",
              "median kappa")
    rows, notes = [], []
    for name, dim in report["dimensions"].items():
        kappas = sorted(p["kappa"] for p in dim["pairs"] if p["kappa"] is not None)
        lo, hi = dim["alpha_ci95"]
        rows.append((name, str(dim["items"]), str(dim["annotators"]), str(dim["ratings"]),
                     _number(dim["percent_agreement"]), _number(dim["alpha"]),
                     f"[{_number(lo)}, {_number(hi)}]" if lo is not None else "-",
                     str(len(dim["pairs"])), _number(_median(kappas))))
        if dim["alpha_reason"]:
            notes.append(f"  {name}: alpha undefined: {dim['alpha_reason']}")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             for r in [header, *rows]]
    boot = report["bootstrap"]
    lines.append(f"\nlevel {report['level']}; alpha: Krippendorff's; interval: {boot['resamples']} bootstrap "
                 f"resamples of items (seed {boot['seed']}); agreement: share of agreeing rating pairs per item")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def write_report(report: dict, output: Path) -> None:
    """Write-then-rename, so an interrupted run never leaves half a report behind."""
    import orjson

    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    os.replace(tmp, output)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {text}")
    return value


def _number(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _median(values: list[float]):
    if not values:
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
