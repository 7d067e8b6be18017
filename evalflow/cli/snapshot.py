"""`evalflow snapshot`: the versioned eval sets in the lake (evalflow.lib.snapshots)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COMMAND = (
    "list, show, diff, verify and export versions of the eval sets",
    "The golden set (golden@vN, changed only by promotions) and the rolling set (rolling@YYYY-MM-DD) live in the "
    "lake as immutable versions, each with a manifest whose content sha256 is re-checked on every read. A version "
    "pin that does not exist or does not verify is an error, never a fallback to another version.",
    ["evalflow snapshot list", "evalflow snapshot show golden@v2", "evalflow snapshot diff golden@v1 golden@v2",
     "evalflow snapshot verify golden@v2", "evalflow snapshot export golden@v2 -o exports/ --dev"],
)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="snapshot_command", required=True, metavar="SUBCOMMAND",
                                help="list | show | diff | verify | export")
    listing = sub.add_parser("list", help="every version, newest last")
    listing.add_argument("name", nargs="?", help="golden or rolling (default: both)")
    show = sub.add_parser("show", help="a version's manifest and staleness")
    show.add_argument("ref", metavar="NAME@VERSION")
    diff = sub.add_parser("diff", help="cases added, removed and relabelled between two versions")
    diff.add_argument("a", metavar="NAME@VERSION")
    diff.add_argument("b", metavar="NAME@VERSION")
    verify = sub.add_parser("verify", help="re-read a version and recompute its content hash (exit 1 if it differs)")
    verify.add_argument("ref", metavar="NAME@VERSION")
    export = sub.add_parser("export", help="write a version as JSONL and Parquet, every case with its split")
    export.add_argument("ref", metavar="NAME@VERSION")
    export.add_argument("-o", "--output", metavar="DIR", help="folder (default <data>/exports); files go to "
                        "DIR/<name>/<version>/")
    export.add_argument("--dev", action="store_true", help="leave the holdout cases out (the development export)")


def _print_json(value) -> None:
    print(json.dumps(value, indent=1, ensure_ascii=False, default=str))


def run(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from evalflow.cli import UserError
    from evalflow.lib.common.settings import load_settings
    from evalflow.lib.snapshots import BadReference, SnapshotError
    from evalflow.lib.snapshots import store as snapshots
    from evalflow.lib.snapshots.versions import diff, export

    data_dir = load_settings().data_dir
    try:
        if args.snapshot_command == "list":
            versions = snapshots.list_versions(data_dir, args.name)
            if not versions:
                print("no version published yet")
            for info in versions:
                print(f"{info.ref:<22} {info.created_at:%Y-%m-%d %H:%M} {info.cases:>6} cases "
                      f"({info.holdout_cases} holdout)  lake snapshot {info.snapshot_id}  {info.message}")
        elif args.snapshot_command == "show":
            manifest = snapshots.read_manifest(data_dir, args.ref)
            problems = snapshots.verify(data_dir, args.ref)
            if problems:
                raise UserError(f"{args.ref} does not verify: {'; '.join(problems[:3])}")
            stale = snapshots.staleness_of(data_dir, args.ref, datetime.now(timezone.utc).date())
            _print_json({"manifest": manifest, "staleness": stale.__dict__})
        elif args.snapshot_command == "diff":
            _print_json(diff(data_dir, args.a, args.b))
        elif args.snapshot_command == "verify":
            problems = snapshots.verify(data_dir, args.ref)
            if problems:
                raise UserError(f"{args.ref} does not verify: {'; '.join(problems[:3])}")
            content = snapshots.read_manifest(data_dir, args.ref)["content_sha256"]
            print(f"{args.ref} verifies: content sha256 {content}")
        elif args.snapshot_command == "export":
            result = export(data_dir, args.ref, Path(args.output) if args.output else None,
                            variant="dev" if args.dev else "all")
            print(f"wrote {result.cases} cases ({result.holdout_cases} holdout) of {result.ref} to {result.folder}: "
                  f"{result.jsonl.name}, {result.parquet.name}")
    except (BadReference, SnapshotError) as exc:
        raise UserError(str(exc)) from None
    return 0
