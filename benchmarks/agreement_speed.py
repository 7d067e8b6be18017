"""`evalflow agreement` at the issue's scale (40,000+ ratings, 100+ annotators) beside a naive baseline.

    .venv/bin/python benchmarks/agreement_speed.py [--items 2100 --annotators 120 --per-item 4
        --dimensions 5 --boot 1000 --seed 0 --baseline-boot 20 --baseline-pairs 300]

Data (seeded, synthetic): every item has a true Pass/Fail per dimension; --per-item annotators
drawn at random from --annotators rate it, each with their own accuracy (0.7-0.97), so alpha is
moderate and most annotator pairs share an item or two; 3% of the ratings are left empty (missing):
the defaults write 42,000 rating rows, so over 40,000 ratings are given, from 120 annotators.

Timed:
  cli: evalflow.cli.agreement.run end to end (read the CSV, every dimension's alpha, its
    bootstrap interval with --boot resamples, percent agreement and every pair's kappa, the table,
    REPORT.json written), in-process, best of 3; and once as a fresh Python process (imports
    included), as a user running the command sees it.
  baseline: what a straightforward implementation does, per dimension: a pandas pivot to the
    annotators x items matrix; krippendorff.alpha on it once and on each bootstrap resample of its
    item columns; for every pair of annotators, the items both rated (a pandas merge) and
    sklearn's cohen_kappa_score. The bootstrap is timed on --baseline-boot resamples and the pairs
    on --baseline-pairs pairs, each scaled linearly to the full count (both loops do the same
    work per step); that estimate is what the ratio compares against.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evalflow.cli import agreement as agreement_cli  # noqa: E402


def synthetic_ratings(items: int, annotators: int, per_item: int, dimensions: int, seed: int) -> list[tuple]:
    rng = np.random.default_rng(seed)
    accuracy = rng.uniform(0.7, 0.97, annotators)
    names = [f"annotator_{i:03d}" for i in range(annotators)]
    rows = []
    for d in range(dimensions):
        truth = rng.random(items) < 0.7
        for item in range(items):
            for a in rng.choice(annotators, per_item, replace=False):
                right = rng.random() < accuracy[a]
                verdict = truth[item] if right else not truth[item]
                value = "" if rng.random() < 0.03 else ("Pass" if verdict else "Fail")
                rows.append((f"item-{item:05d}", names[a], f"dimension_{d}", value))
    return rows


def write_csv(rows: list[tuple], path: Path) -> None:
    with path.open("w") as f:
        f.write("item_id,annotator,dimension,value\n")
        f.writelines(",".join(r) + "\n" for r in rows)


def time_cli(path: Path, output: Path, boot: int, seed: int, repeats: int = 3) -> float:
    parser = argparse.ArgumentParser()
    agreement_cli.configure(parser)
    args = parser.parse_args([str(path), "--level", "nominal", "-o", str(output), "--boot", str(boot),
                              "--seed", str(seed)])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            agreement_cli.run(args)
        best = min(best, time.perf_counter() - start)
    return best


def time_process(path: Path, output: Path, boot: int, seed: int) -> float:
    """A fresh interpreter: imports included, as a user running the command sees it."""
    script = ("import argparse, sys; from evalflow.cli import agreement as a; p = argparse.ArgumentParser(); "
              "a.configure(p); sys.exit(a.run(p.parse_args(sys.argv[1:])))")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", script, str(path), "--level", "nominal", "-o", str(output), "--boot",
                    str(boot), "--seed", str(seed)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def time_baseline(path: Path, boot: int, baseline_boot: int, baseline_pairs: int, seed: int) -> dict:
    import krippendorff
    import pandas as pd
    from sklearn.metrics import cohen_kappa_score

    start = time.perf_counter()
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = frame[frame["value"] != ""]
    read_s = time.perf_counter() - start
    rng = np.random.default_rng(seed)
    alpha_s = boot_s = pairs_s = 0.0
    total_pairs = 0
    for _, part in frame.groupby("dimension"):
        start = time.perf_counter()
        codes = part["value"].map({"Fail": 0.0, "Pass": 1.0})
        matrix = part.assign(code=codes).pivot(index="annotator", columns="item_id", values="code").to_numpy(float)
        krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
        alpha_s += time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(baseline_boot):
            columns = rng.integers(0, matrix.shape[1], matrix.shape[1])
            try:
                krippendorff.alpha(reliability_data=matrix[:, columns], level_of_measurement="nominal")
            except ValueError:
                pass
        boot_s += (time.perf_counter() - start) * boot / baseline_boot
        by_annotator = {name: g[["item_id", "value"]] for name, g in part.groupby("annotator")}
        names = sorted(by_annotator)
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
        sample = [pairs[i] for i in rng.choice(len(pairs), min(baseline_pairs, len(pairs)), replace=False)]
        start = time.perf_counter()
        shared_pairs = 0
        for a, b in sample:
            both = by_annotator[a].merge(by_annotator[b], on="item_id")
            if len(both):
                shared_pairs += 1
                with warnings.catch_warnings():  # sklearn warns on every pair with one label only
                    warnings.simplefilter("ignore")
                    cohen_kappa_score(both["value_x"], both["value_y"])
        pairs_s += (time.perf_counter() - start) * len(pairs) / len(sample)
        total_pairs += len(pairs)
    return {"read_s": read_s, "alpha_s": alpha_s, "boot_s": boot_s, "pairs_s": pairs_s, "pairs": total_pairs,
            "total_s": read_s + alpha_s + boot_s + pairs_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=2100)
    parser.add_argument("--annotators", type=int, default=120)
    parser.add_argument("--per-item", type=int, default=4)
    parser.add_argument("--dimensions", type=int, default=5)
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-boot", type=int, default=20)
    parser.add_argument("--baseline-pairs", type=int, default=300)
    args = parser.parse_args()

    rows = synthetic_ratings(args.items, args.annotators, args.per_item, args.dimensions, args.seed)
    given = sum(1 for r in rows if r[3])
    with tempfile.TemporaryDirectory() as tmp:
        path, output = Path(tmp) / "ratings.csv", Path(tmp) / "report.json"
        write_csv(rows, path)
        cli_s = time_cli(path, output, args.boot, args.seed)
        process_s = time_process(path, output, args.boot, args.seed)
        report_kib = output.stat().st_size / 1024
        import orjson

        report = orjson.loads(output.read_bytes())
        baseline = time_baseline(path, args.boot, args.baseline_boot, args.baseline_pairs, args.seed)
    pairs = sum(len(d["pairs"]) for d in report["dimensions"].values())
    print(f"data: {len(rows)} rating rows ({given} given, {len(rows) - given} missing), {args.annotators} annotators, "
          f"{args.items} items x {args.dimensions} dimensions, {args.per_item} raters per item; bootstrap "
          f"{args.boot} resamples")
    print(f"report: {pairs} annotator pairs with a shared item (of {baseline['pairs']} possible), "
          f"{report_kib:.0f} KiB JSON; alpha per dimension: "
          + ", ".join(f"{d['alpha']:.3f}" for d in report["dimensions"].values()))
    print(f"cli (in-process, best of 3): {cli_s:.2f} s; as a fresh process (imports included): {process_s:.2f} s")
    print(f"baseline (estimated): {baseline['total_s']:.1f} s = read {baseline['read_s']:.2f} + alpha "
          f"{baseline['alpha_s']:.2f} + bootstrap {baseline['boot_s']:.1f} (from {args.baseline_boot} resamples) "
          f"+ pairs {baseline['pairs_s']:.1f} (from {args.baseline_pairs} pairs per dimension)")
    print(f"ratio baseline / cli: {baseline['total_s'] / cli_s:.0f}x")


if __name__ == "__main__":
    main()
