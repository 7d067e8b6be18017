"""Turn the two held-out intent sets, downloaded by hand from their public sources, into the
`text,category` CSVs that `clustering_quality.py --csv NAME=PATH` reads.

    .venv/bin/python benchmarks/heldout_csv.py clinc150 data_small.json clinc150_test.csv
    .venv/bin/python benchmarks/heldout_csv.py hwu64 KFold_1/testset/csv/ hwu64_test.csv

- clinc150: the "test" list of CLINC150 (github.com/clinc/oos-eval, data/data_full.json or
  data_small.json: the test split is the same in both), 150 intents x 30 = 4,500 rows; the
  out-of-scope lists are left out. Larson et al., "An Evaluation Dataset for Intent
  Classification and Out-of-Scope Prediction", EMNLP 2019.
- hwu64: the first cross-validation fold's test set of the HWU64 collection
  (github.com/xliuhw/NLU-Evaluation-Data, CrossValidation/autoGeneFromRealAnno/
  autoGene_2018_03_22-13_01_25_169/CrossValidation/KFold_1/testset/csv/, one `;`-separated file
  per intent), 64 intents, 1,076 rows; the text is `answer_from_anno`, the category
  `<scenario>_<intent>`. Liu et al., "Benchmarking Natural Language Understanding Services for
  building Conversational Agents", IWSDS 2019.

Nothing in evalflow reads these sets and nothing was tuned on them; they are not shipped (see
docs/intents.md, "Held-out sets").
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def clinc150(source: Path) -> list[tuple[str, str]]:
    doc = json.loads(source.read_text(encoding="utf-8"))
    if "test" not in doc:
        raise SystemExit(f"{source}: no 'test' list (keys: {sorted(doc)})")
    return [(text, intent) for text, intent in doc["test"]]


def hwu64(folder: Path) -> list[tuple[str, str]]:
    rows = []
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise SystemExit(f"{folder}: no .csv files")
    for path in files:
        with open(path, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f, delimiter=";"):
                rows.append((r["answer_from_anno"], f"{r['scenario']}_{r['intent']}"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set", choices=("clinc150", "hwu64"))
    parser.add_argument("source", type=Path, help="data_full.json / data_small.json, or the KFold_1 test csv folder")
    parser.add_argument("out", type=Path, help="the text,category CSV to write")
    args = parser.parse_args()
    rows = clinc150(args.source) if args.set == "clinc150" else hwu64(args.source)
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "category"])
        w.writerows(rows)
    print(f"{args.out}: {len(rows)} rows, {len({c for _, c in rows})} categories")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
