"""The `evalflow` command: see `evalflow --help`, `evalflow COMMAND --help` and docs/cli.md.

Results go to stdout, progress and errors to stderr. Mistakes a user can make (a missing file, a
locked warehouse, a bad setting) print one line starting with "evalflow: error:" and exit 1;
usage errors exit 2 (argparse's convention); a bug exits 70 (--debug shows its traceback);
another run holding the data folder exits 75.
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from datetime import date
from pathlib import Path

import duckdb
import orjson


class UserError(Exception):
    """A problem the user can fix; printed as one line, no traceback (exit 1)."""


class Busy(UserError):
    """Another evalflow run holds the data folder (exit 75, EX_TEMPFAIL: try again later)."""


class InternalError(Exception):
    """A step failed for a reason that looks like a bug in evalflow (exit 70)."""


# Exit codes (sysexits.h where one fits): scripts can tell a bug from a user's mistake.
EXIT_USER_ERROR, EXIT_USAGE, EXIT_INTERNAL, EXIT_BUSY = 1, 2, 70, 75


def _cmd_simulate(args: argparse.Namespace) -> int:
    from evalflow.lib.common.settings import load_settings
    from evalflow.simulator import simulate

    settings = load_settings()
    try:
        summary = simulate(settings.landing_dir, settings.ground_truth_dir, **_simulation_options(args))
    except ValueError as exc:  # a change day outside the simulated days
        raise UserError(str(exc)) from None
    _print_simulation(summary, settings, args.days)
    return 0


def _simulation_options(args: argparse.Namespace) -> dict:
    start = args.start_date
    if start is None:  # the demo's default: the days before today (UTC), so its last day is yesterday
        from datetime import datetime, timedelta, timezone

        start = datetime.now(timezone.utc).date() - timedelta(days=args.days)
    options = {"days": args.days, "per_day": args.per_day, "seed": args.seed, "start_date": start}
    # simulate's --prompt-template-change/--kb-change/--intent-mix-shift (the demo has none)
    changes = {name: getattr(args, name) for name in _CHANGE_OPTIONS
               if getattr(args, name, _DEFAULT_DAY) is not _DEFAULT_DAY}
    if changes:
        options["changes"] = changes
    return options


# The simulator's planted changes, as options: a day (YYYY-MM-DD) or "none" (not planted).
_CHANGE_OPTIONS = {
    "prompt_template_change": ("the prompt-template change (support-v3 -> support-v4)", "40"),
    "kb_change": ("the knowledge-base change (kb-v1 -> kb-v2)", "60"),
    "intent_mix_shift": ("the intent-mix shift", "75"),
}
_DEFAULT_DAY = object()


def _change_day(text: str) -> date | None:
    if text.strip().lower() == "none":
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD or none, got {text!r}") from None


def _print_simulation(summary, settings, days: int) -> None:
    print(f"simulated {summary.traces} traces over {days} days into {settings.landing_dir}")
    print(f"  {len(summary.files)} files; by dialect: {summary.by_dialect}; "
          f"{summary.malformed_lines} malformed lines planted; {summary.intents} intents")
    print(f"  ground truth (never read by the pipeline): {settings.ground_truth_dir}")


def _expand_inputs(inputs: list[str]) -> list[Path]:
    from evalflow.lib.ingest.parse_file import iter_landing_files

    paths: list[Path] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            paths.extend(iter_landing_files(path))
        elif path.is_file():
            paths.append(path)
        else:
            raise UserError(f"no such file or folder: {raw}")
    return paths


def _cmd_normalize(args: argparse.Namespace) -> int:
    from evalflow.lib.common.settings import load_settings
    from evalflow.lib.ingest.canonical import CANONICAL_FIELDS
    from evalflow.lib.ingest.landing import ingest_options
    from evalflow.lib.ingest.parse_file import KnownTraces, ingest_file

    paths = _expand_inputs(args.inputs)
    if not paths:
        raise UserError("no input files (.jsonl, .ndjson or .json) found")
    options = ingest_options(load_settings())
    known = KnownTraces()
    output = Path(args.output)
    quarantine_path = output.with_name(output.name + ".quarantine.jsonl")
    output.parent.mkdir(parents=True, exist_ok=True)
    written = quarantined = 0
    tmp_out, tmp_q = output.with_name(output.name + ".tmp"), quarantine_path.with_name(quarantine_path.name + ".tmp")
    with tmp_out.open("wb") as out, tmp_q.open("wb") as qout:
        for path in paths:
            result = ingest_file(path, known, options)
            for row in result.traces:
                out.write(orjson.dumps({k: row[k] for k in CANONICAL_FIELDS} | {"flags": row["flags"]},
                                       default=str) + b"\n")
            for row in result.quarantine:
                qout.write(orjson.dumps(row, default=str) + b"\n")
            written += len(result.traces)
            quarantined += result.outcomes["quarantined"]
            print(f"{path}: {result.lines_read} read, {result.outcomes['ingested']} ingested, "
                  f"{result.outcomes['quarantined']} quarantined, {result.outcomes['deduplicated']} deduplicated"
                  + (f" ({', '.join(f'{k}={v}' for k, v in sorted(result.reasons.items()))})"
                     if result.reasons else ""),
                  file=sys.stderr)
    # Write-then-rename: an interrupted run never leaves a half-written output behind.
    tmp_out.replace(output)
    tmp_q.replace(quarantine_path)
    print(f"wrote {written} canonical traces to {output}; quarantine report: {quarantine_path} "
          f"({quarantined} lines)")
    if written == 0:
        raise UserError("nothing could be read from the inputs (see the quarantine report)")
    return 0


def _print_run_summary(results) -> None:
    from evalflow.cli.runner import warehouse_counts
    from evalflow.lib.common.settings import load_settings

    settings = load_settings()
    print("\nBuilt:")
    for label, path in (("warehouse", settings.warehouse_path), ("raw store", settings.raw_store_path)):
        for table, rows in warehouse_counts(path).items():
            print(f"  {label:<10} {table:<24} {rows:>8} rows")
    print(f"\nWarehouse (no raw text; for analysts, annotators, reports): {settings.warehouse_path}")
    print(f"Raw store (PII; ingestion and redaction only):             {settings.raw_store_path}")
    batches = sorted((settings.data_dir / "annotation").glob("batch-*"))
    if batches:
        print(f"Annotation batches (Label Studio + CSV; docs/sampling.md):  {batches[-1]}"
              + (f" (+{len(batches) - 1} earlier)" if len(batches) > 1 else ""))
    print("Query it:  .venv/bin/python -c \"import duckdb; print(duckdb.connect("
          f"'{settings.warehouse_path}', read_only=True).sql('SELECT reason, count(*) FROM quarantine GROUP BY 1'))\"")
    print("Open the Dagster UI on it:  python3 quickstart.py ui   (then http://127.0.0.1:3000)")


def _cmd_run(args: argparse.Namespace, summary: bool = True) -> int:
    from evalflow.cli.instance import open_instance, recover_stale_runs
    from evalflow.cli.runner import (
        NothingToRun,
        cancel_own_runs,
        command_line,
        ensure_dagster_home,
        run_interruptibly,
        run_pipeline,
    )
    from evalflow.lib.common.processes import LockHeld, exclusive_lock
    from evalflow.lib.common.settings import load_settings

    home = ensure_dagster_home()
    print(f"Dagster instance: {home}", file=sys.stderr)
    settings = load_settings()
    lock = settings.data_dir / RUN_LOCK
    try:
        with exclusive_lock(lock, wait=False):
            instance = open_instance(home)
            _report_recovery(recover_stale_runs(instance))
            try:
                results = run_interruptibly(
                    lambda: run_pipeline(instance, selection=args.select or None, partitions=args.partitions,
                                         command=command_line(args.argv)),
                    lambda why: _interrupted(instance, why, cancel_own_runs))
            except NothingToRun as exc:
                raise UserError(str(exc)) from None
    except LockHeld as exc:
        raise Busy(f"another evalflow run ({exc.holder}) is working on {settings.data_dir}; "
                   "wait for it to finish (or stop it) and run again") from None
    if summary:
        _print_run_summary(results)
    failed = [r for r in results if not r.success or r.failed_checks]
    if failed:
        if args.debug:
            for r in failed:
                if r.error_detail:
                    print(f"\n--- {r.name}: traceback of the failed step ---\n{r.error_detail}", file=sys.stderr)
        message = "; ".join(f"{r.name}: {r.error or 'failed checks ' + ', '.join(r.failed_checks)}" for r in failed)
        if any(not r.user_error for r in failed):
            raise InternalError(message)
        raise UserError(message)
    return 0


# One `evalflow run` per data folder at a time: a second one is refused with one line (the
# Dagster pool would queue its steps, but two runs would interleave their phases).
RUN_LOCK = ".evalflow-run.lock"


def _interrupted(instance, why: str, cancel) -> None:
    canceled = cancel(instance, why)
    print(f"\nevalflow: {why} received: stopped" + (f"; run(s) {', '.join(r[:8] for r in canceled)} marked "
          "canceled and their pool slots freed" if canceled else "") + ". Every store keeps its last "
          "committed state; the next `evalflow run` finishes the work.", file=sys.stderr)


def _report_recovery(recovery) -> None:
    for run in recovery.failed_runs:
        print(f"recovered: run {run.run_id[:8]} ({run.job_name}) was {run.status}, but {run.reason}; "
              "marked failed and its pool slots freed", file=sys.stderr)
    if recovery.freed_slot_runs:
        print(f"recovered: freed pool slots still held by {len(recovery.freed_slot_runs)} finished run(s)",
              file=sys.stderr)


def _cmd_doctor(args: argparse.Namespace) -> int:
    """Show (and with --fix clear) what a killed run can leave behind."""
    from evalflow.cli.instance import describe_run, find_stale_runs, open_instance, pool_states, recover_stale_runs
    from evalflow.cli.runner import ensure_dagster_home
    from evalflow.lib.common.settings import load_settings

    home = ensure_dagster_home()
    settings = load_settings()
    instance = open_instance(home)
    print(f"Dagster instance: {home}")
    print(f"data folder:      {settings.data_dir}")
    stale = find_stale_runs(instance)
    for run in stale:
        print(f"stale run:        {run.run_id} ({run.job_name}, {run.status}): {run.reason}")
    for state in pool_states(instance):
        held = ", ".join(describe_run(instance, r) for r, _ in state.holders) or "free"
        print(f"pool {state.pool}: limit {state.limit}; held by {held}; {len(state.waiting)} step(s) waiting")
    for label, path in (("warehouse", settings.warehouse_path), ("raw store", settings.raw_store_path)):
        print(f"{label + ':':<17} {path} ({_file_state(path)})")
    if not args.fix:
        if stale:
            print("run `evalflow doctor --fix` to mark these runs failed and free their slots")
        return 1 if stale else 0
    recovery = recover_stale_runs(instance)
    _report_recovery(recovery)
    print(f"fixed: {len(recovery.failed_runs)} stale run(s) marked failed, "
          f"{len(recovery.freed_slot_runs)} finished run(s) had slots freed")
    return 0


def _file_state(path: Path) -> str:
    from evalflow.lib.common.warehouse import WarehouseLocked, WrittenByNewerDuckDB, connect_waiting

    if not path.exists():
        return "not created yet"
    try:
        connect_waiting(path, read_only=True, wait_s=0).close()
    except WarehouseLocked as exc:
        return f"locked by {exc.holder}"
    except WrittenByNewerDuckDB as exc:
        return f"written by DuckDB {exc.written_by}, which this DuckDB cannot open (rebuild it: see docs/warehouse.md)"
    return "opens"


def _cmd_demo(args: argparse.Namespace) -> int:
    from evalflow.cli.demo_data import prepare_demo_data
    from evalflow.lib.common.settings import load_settings
    from evalflow.simulator import simulate

    settings = load_settings()
    prepared = prepare_demo_data(settings.data_dir, lambda landing, truth: simulate(
        landing, truth, **_simulation_options(args)))
    if prepared.moved_to:
        print(f"an earlier demo's data (other simulated traffic) moved to {prepared.moved_to}; "
              "this demo starts clean (delete that folder when you no longer need it)", file=sys.stderr)
    _print_simulation(prepared.summary, settings, args.days)
    from evalflow.cli.demo_labels import (
        annotate_newest_batch,
        judge_endpoint,
        label_summary,
        version_lines,
        write_demo_responses,
        write_first_promotion,
    )
    from evalflow.defs.labels.automation import LABEL_ASSETS
    from evalflow.lib.snapshots.store import latest_version

    with judge_endpoint(settings) as judge:
        print(f"judge: {judge}", file=sys.stderr)
        _cmd_run(args, summary=False)
        # What annotators would hand back a few days later: their exports of the new batch land
        # in the drop folder, and the label assets import them and calibrate the judge.
        simulation = annotate_newest_batch(settings)
        if simulation is not None:
            print(f"\nsimulated annotators labelled {simulation.batch_id} (85% of {simulation.tasks} tasks, "
                  f"3 annotators); their Label Studio exports are in {settings.data_dir / 'labels' / 'incoming'}",
                  file=sys.stderr)
        args.select = list(LABEL_ASSETS)
        _cmd_run(args, summary=False)
        # A reviewer's first promotion: the labelled cases become golden@v1 (its file stays in
        # <data>/promotions/ to read like a pull request), then the rolling set of the last 7 days.
        promotion = write_first_promotion(settings)
        if promotion is not None:
            print(f"\nwrote the first golden promotion: {promotion}", file=sys.stderr)
        args.select = ["golden_set", "rolling_set", "lake_tables"]
        _cmd_run(args, summary=False)
        # Monitoring, now that a golden set exists: a demo corpus with a few golden cases inside
        # (contamination), the nightly prompt-hash audit and the weekly drift reports of the month.
        from evalflow.cli.demo_reports import contamination_lines, drift_lines, write_demo_corpus

        write_demo_corpus(settings)
        args.select = ["contamination_report", "prompt_hash_audit", "drift_report"]
        _cmd_run(args)
        print("\nLabels:")
        for line in label_summary(settings, simulation):
            print(f"  {line}")
        golden = latest_version(settings.data_dir, "golden")
        print("\nEval sets (versions in the lake; `evalflow snapshot list`):")
        for line in version_lines(settings):
            print(f"  {line}")
        print("\nWeekly drift reports (the simulator planted the changes marked; alerts also in the `alerts` table):")
        for line in drift_lines(settings):
            print(f"  {line}")
        print("\nContamination of the golden set (a demo corpus holds a few of its cases on purpose):")
        for line in contamination_lines(settings):
            print(f"  {line}")
        if golden is not None:
            ref = f"golden@{golden}"
            responses = write_demo_responses(settings, ref)
            command = ["check", "--snapshot", ref, "--responses", str(responses), "--judge"]
            print(f"\nThe CI gate on {ref} with the simulated assistant's answers: evalflow {' '.join(command)}")
            code = main(command)
            outcome = {0: "the gate passed", 3: "the gate failed"}.get(code, "the gate could not run")
            print(f"evalflow check exited {code} ({outcome})")
    return 0


def _redaction_parts(settings):
    """(detector, pseudonymizer) as configured by the environment; creates the local pseudonym
    key on first use and says so."""
    import os

    from evalflow.lib.redact.config import detector_config_from_env
    from evalflow.lib.redact.engine import PiiDetector
    from evalflow.lib.redact.pseudonym import KEY_ENV, OPERATORS_ENV, Pseudonymizer, load_key, parse_operators

    key, key_source = load_key(settings.data_dir, create=True)
    if key_source == "created":
        print(f"evalflow: created a local pseudonym key in {settings.data_dir} (set {KEY_ENV} to use your own)",
              file=sys.stderr)
    pseudonymizer = Pseudonymizer(key=key, operators=parse_operators(os.environ.get(OPERATORS_ENV)))
    return PiiDetector(detector_config_from_env()), pseudonymizer


def _cmd_redact(args: argparse.Namespace) -> int:
    from evalflow.lib.common.settings import load_settings
    from evalflow.lib.ingest.landing import ingest_options
    from evalflow.lib.redact.files import redact_text_file, redact_trace_file
    from evalflow.lib.redact.traces import TraceRedactor

    source, output = Path(args.input), Path(args.output)
    if not source.is_file():
        raise UserError(f"no such file: {args.input}")
    settings = load_settings()
    detector, pseudonymizer = _redaction_parts(settings)
    output.parent.mkdir(parents=True, exist_ok=True)
    if args.traces:
        summary = redact_trace_file(source, output, TraceRedactor(detector.detect_batch, pseudonymizer),
                                    ingest_options(settings))
    else:
        summary = redact_text_file(source, output, detector.detect_batch, pseudonymizer)
    print(f"wrote {summary.written} redacted records to {output} ({summary.entities} entities replaced); "
          f"{summary.quarantined} held back" + (f" {summary.reasons}" if summary.reasons else "")
          + f"; report: {output.name}.quarantine.jsonl")
    if summary.written == 0 and summary.quarantined:
        raise UserError("nothing could be redacted (see the quarantine report)")
    return 0


def _read_id_texts(path: Path, output: Path) -> list[tuple[object, str]]:
    """{"id", "text"} lines; any other line goes to OUTPUT.quarantine.jsonl with its line
    number, reason and sha256 (never its content), and is counted on stderr."""
    import hashlib

    if not path.is_file():
        raise UserError(f"no such file: {path}")
    records, rejected = [], []
    for line_no, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            reason = "invalid_json"
        else:
            if isinstance(obj, dict) and isinstance(obj.get("text"), str):
                records.append((obj.get("id"), obj["text"]))
                continue
            reason = "missing_text" if isinstance(obj, dict) else "not_an_object"
        rejected.append({"line_no": line_no, "reason": reason, "raw_sha256": hashlib.sha256(raw).hexdigest()})
    report = output.with_name(output.name + ".quarantine.jsonl")
    output.parent.mkdir(parents=True, exist_ok=True)
    if rejected:
        report.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rejected))
        print(f"evalflow: skipped {len(rejected)} line(s) that are not {{\"id\", \"text\"}} JSON "
              f"(report: {report})", file=sys.stderr)
    elif report.exists():
        report.unlink()  # a report from an earlier run would describe another input
    if not records:
        raise UserError(f"no {{\"id\", \"text\"}} lines in {path}")
    return records


def _embed_records(records, settings):
    from evalflow.lib.intents.embed import Embedder, EmbedderConfig, embed_with_cache
    from evalflow.lib.redact.store import analyst_warehouse

    embedder = Embedder(EmbedderConfig(model_dir=settings.model_dir))
    vectors, stats = embed_with_cache([t for _, t in records], embedder, analyst_warehouse(settings).path)
    return embedder, vectors, stats


def _cmd_embed(args: argparse.Namespace) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from evalflow.lib.common.settings import load_settings
    from evalflow.lib.intents.embed import text_sha256

    records = _read_id_texts(Path(args.input), Path(args.output))
    embedder, vectors, stats = _embed_records(records, load_settings())
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({
        "id": pa.array([str(i) if i is not None else None for i, _ in records]),
        "text_sha256": pa.array([text_sha256(t) for _, t in records]),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), type=pa.float32()), vectors.shape[1]),
    })
    tmp = output.with_name(output.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(output)
    print(f"wrote {len(records)} vectors ({embedder.model_name}, {embedder.backend}) to {output}; "
          f"{stats.hits} from the cache, {stats.misses} embedded now")
    return 0


def _cmd_cluster(args: argparse.Namespace) -> int:
    from evalflow.lib.common.settings import load_settings
    from evalflow.lib.intents import cluster_texts_for_cli, model_text

    catalog_path = Path(args.catalog) if args.catalog else None
    previous = _read_cli_catalog(catalog_path) if catalog_path and catalog_path.exists() else None
    overrides = None
    if args.overrides:
        from evalflow.lib.intents.overrides import IntentOverridesError, read_overrides_file

        try:
            overrides = read_overrides_file(Path(args.overrides))
        except IntentOverridesError as error:
            raise UserError(f"intent overrides: {error}") from None
    records = _read_id_texts(Path(args.input), Path(args.output))
    # The model reads the texts without slot values, as the pipeline's intents do.
    _, vectors, _ = _embed_records([(i, model_text(t)) for i, t in records], load_settings())
    rows, result = cluster_texts_for_cli([i for i, _ in records], [t for _, t in records], vectors,
                                         previous=previous, overrides=overrides)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    tmp.replace(output)
    intents = {r["intent_id"] for r in rows if r["intent_id"] is not None}
    print(f"wrote {len(rows)} assignments to {output}: {len(intents)} intents")
    if catalog_path:
        review = result.params.get("overrides") or {}
        document = {"intents": [e.to_dict() for e in result.catalog],
                    "merge_candidates": result.params.get("merge_candidates") or [],
                    "events": [e.to_dict() for e in result.events],
                    "overrides": review, "noise_share": round(float(result.noise_share), 4)}
        catalog_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = catalog_path.with_name(catalog_path.name + ".tmp")
        tmp.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
        tmp.replace(catalog_path)
        kept = sum(1 for e in result.events if e.kind == "continue")
        print(f"catalog {catalog_path}: {len(result.catalog)} intents"
              + (f", {kept} kept their id from the previous catalog" if previous else " (new)")
              + f"; {len(document['merge_candidates'])} merge candidate(s)")
        for line in review.get("applied", []):
            print(f"  applied: {line}")
        for line in review.get("not_found", []):
            print(f"  not applied: {line}")
    return 0


def _read_cli_catalog(path: Path) -> list:
    """The intents of a catalog `evalflow cluster --catalog` wrote before (the previous run)."""
    from evalflow.lib.intents import CatalogEntry

    try:
        entries = orjson.loads(path.read_bytes())["intents"]
        return [CatalogEntry.from_dict(e) for e in entries] or None
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise UserError(f"{path} is not a catalog written by evalflow cluster --catalog "
                        f"({type(error).__name__}); move it away to start a new one") from None


def _cmd_sample(args: argparse.Namespace) -> int:
    from evalflow.cli.sample_file import leak_counts, read_traces, redact_traces, sample_traces
    from evalflow.lib.common.settings import load_settings
    from evalflow.lib.ingest.landing import ingest_options
    from evalflow.lib.redact.config import detector_config_from_env

    source, output = Path(args.input), Path(args.output)
    if not source.is_file():
        raise UserError(f"no such file: {args.input}")
    if args.budget < 1:
        raise UserError("--budget must be at least 1")
    settings = load_settings()
    traces, quarantine, counts = read_traces(source, ingest_options(settings))
    if args.redact:
        from evalflow.lib.redact.traces import TraceRedactor

        detector, pseudonymizer = _redaction_parts(settings)
        traces, held = redact_traces(traces, TraceRedactor(detector.detect_batch, pseudonymizer))
        quarantine += held
    else:
        leaks = leak_counts(traces, detector_config_from_env().allow_list)
        if leaks:
            found = ", ".join(f"{n} {kind}" for kind, n in sorted(leaks.items()))
            raise UserError(f"the input does not look redacted ({found} found); pass --redact")
    if not traces:
        raise UserError(f"no trace could be read from {source} ({len(quarantine)} line(s) quarantined)")

    def embed(texts):
        return _embed_records([(None, t) for t in texts], settings)[1]

    rows, coverage, intents = sample_traces(traces, embed, budget=args.budget, seed=args.seed)
    output.parent.mkdir(parents=True, exist_ok=True)
    report = output.with_name(output.name + ".quarantine.jsonl")
    for path, lines_out in ((output, rows), (report, quarantine)):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(b"".join(orjson.dumps(r, default=str) + b"\n" for r in lines_out))
        tmp.replace(path)
    print(f"read {counts['lines_read']} line(s): {len(traces)} traces, {len(quarantine)} quarantined "
          f"(report: {report.name}), {counts.get('deduplicated', 0)} exact duplicate(s) dropped; "
          f"{intents} intents; wrote {len(rows)} of budget {args.budget} to {output}: "
          f"{coverage['intents_with_3plus_covered']}/{coverage['intents_with_3plus']} intents with 3+ traces covered, "
          f"failure share {coverage['failure_share_sample']} in the sample vs {coverage['failure_share_population']} "
          f"overall")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_simulate_options(parser: argparse.ArgumentParser, recent: bool = False) -> None:
    parser.add_argument("--days", type=_positive_int, default=30, help="days of traffic (default 30)")
    parser.add_argument("--per-day", type=_positive_int, default=1000, help="traces per day (default 1000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    # simulate: a fixed default, so the same command writes byte-identical files any day. demo:
    # the days before today, so the UI's daily partitions hold the demo's days and nothing else.
    parser.add_argument("--start-date", type=date.fromisoformat, default=None if recent else date(2026, 10, 1),
                        help="first simulated day, YYYY-MM-DD (default: " + (
                            "the --days days before today, UTC" if recent else "2026-10-01") + ")")


# name -> (one-line help, description, examples). Every command has all three; docs/cli.md is
# generated from this parser (`python -m evalflow.cli.docs`) and a test fails when it drifts.
COMMANDS: dict[str, tuple[str, str, list[str]]] = {
    "simulate": ("write simulated production traffic to the landing folder",
                 "Deterministic support-assistant traffic (one seed, byte-identical files) in three dialects, with "
                 "planted PII, failures and changes, into <data>/landing/; the answers go to <data>/ground_truth/, "
                 "which the pipeline never reads.",
                 ["evalflow simulate --days 7 --per-day 200 --seed 3",
                  "evalflow simulate --kb-change 2026-10-09 --prompt-template-change none --intent-mix-shift none"]),
    "normalize": ("convert trace files of any dialect to canonical JSONL",
                  "Reads files or folders of OTLP, OpenInference, Langfuse, LangSmith or canonical JSONL (gzip and "
                  "zstd too) and writes canonical traces; bad lines go to OUTPUT.quarantine.jsonl with a reason. "
                  "Per-file counts on stderr, the summary on stdout.",
                  ["evalflow normalize exports/ -o traces.jsonl"]),
    "redact": ("redact PII in a JSONL file before sharing it",
               'Each {"id", "text"} line gives {"id", "redacted_text", "entities"}; with --traces every field of '
               "every trace is redacted as in the pipeline. Lines that cannot be redacted are held back and listed "
               "in OUTPUT.quarantine.jsonl.",
               ["evalflow redact notes.jsonl -o notes.redacted.jsonl",
                "evalflow redact traces.jsonl --traces -o traces.redacted.jsonl"]),
    "embed": ("embed {id, text} lines (through the warehouse's cache)",
              "MiniLM vectors (ONNX int8, from the packaged model; nothing is downloaded) for each line, cached by "
              "text hash in the warehouse: a second run embeds nothing. Writes Parquet (id, text_sha256, vector).",
              ["evalflow embed prompts.jsonl -o prompts.parquet"]),
    "cluster": ("group {id, text} lines into intents",
                "Discovers intents without being told how many (UMAP + HDBSCAN over the embeddings) and writes each "
                "line's intent id, name and confidence.",
                ["evalflow cluster prompts.jsonl -o intents.jsonl",
                 "evalflow cluster prompts.jsonl -o intents.jsonl --catalog catalog.json --overrides review.toml"]),
    "sample": ("choose the traces worth labelling from a trace file",
               "The sampling half of the pipeline on one file: intents, failure signals, the failure taxonomy and a "
               "stratified sample that covers intents, failure modes, outliers and time. The input must be "
               "redacted already, or pass --redact.",
               ["evalflow sample traces.jsonl --redact --budget 100 -o to_label.jsonl"]),
    "run": ("materialize the asset graph over the landing folder",
            "Every asset in-process with the embedded Dagster instance, in three phases (landing; the daily "
            "partitions as one run; downstream), or only the assets named with --select and the days named with "
            "--partitions. Recovers runs a killed process left behind first; refuses a second run on the same data "
            "folder (exit 75). Progress on stderr, the row counts on stdout.",
            ["evalflow run",
             "evalflow run --select redacted_traces --select pii_audit --partitions 2026-10-05..2026-10-07",
             "evalflow --debug run --select eval_candidates --select annotation_queue"]),
    "doctor": ("show (and with --fix clear) runs left behind by a killed process",
               "Lists runs left STARTED by a process that is gone, who holds each concurrency pool, and whether the "
               "DuckDB files open (or which PID holds them). Exit 1 when a stale run is found.",
               ["evalflow doctor", "evalflow doctor --fix"]),
    "demo": ("simulate, then run",
             "`simulate` then `run`, over the days before today by default (so the UI's daily partitions hold "
             "exactly the demo's days); over a folder an earlier demo built with other traffic (another day, "
             "other options), that demo's stores move to <data>/previous-demo/ first.",
             ["evalflow demo", "evalflow demo --days 3 --per-day 100"]),
}
# Commands that live in their own module (COMMAND, configure(parser), run(args)): their logic is a
# stage's, the CLI only reads and writes files around it.
PLUGGED_COMMANDS = ("agreement", "judge", "check", "query", "snapshot", "contamination")


def _plugged(name: str):
    from importlib import import_module

    return import_module(f"evalflow.cli.{name}")


for _name in PLUGGED_COMMANDS:
    COMMANDS[_name] = _plugged(_name).COMMAND


def _partition_range(text: str) -> tuple[str, str]:
    start, sep, end = text.partition("..")
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end if sep else start)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD, got {text!r}") from None
    if last < first:
        raise argparse.ArgumentTypeError(f"the range ends before it starts: {text!r}")
    return first.isoformat(), last.isoformat()


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    try:
        own_version = version("evalflow")
    except PackageNotFoundError:
        own_version = "unknown"
    parser = argparse.ArgumentParser(
        prog="evalflow", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Eval datasets built from production LLM traces: ingest, redact, cluster, sample, annotate.",
        epilog="Exit codes: 0 done; 1 a problem you can fix; 2 usage; 3 `evalflow check`: the gate failed; "
        "70 a bug in evalflow (see --debug); 75 another run holds the data folder; 130/143 interrupted.\n"
        "Settings come from EVALFLOW_* environment "
        "variables (docs/configuration.md).")
    parser.add_argument("--version", action="version", version=f"evalflow {own_version}")
    parser.add_argument("--debug", action="store_true",
                        help="print the traceback of an error (and of a failed step) instead of one line")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str):
        short, description, examples = COMMANDS[name]
        return sub.add_parser(name, help=short, description=textwrap.fill(description, 88),
                              epilog="examples:\n" + "\n".join(f"  {e}" for e in examples),
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    simulate = command("simulate")
    _add_simulate_options(simulate)
    for name, (what, when) in _CHANGE_OPTIONS.items():
        simulate.add_argument("--" + name.replace("_", "-"), dest=name, type=_change_day, default=_DEFAULT_DAY,
                              metavar="DAY", help=f"day of {what}: YYYY-MM-DD inside the simulated days, "
                              f"or none for a month without it (default: {when}%% into the days)")
    simulate.set_defaults(handler=_cmd_simulate)
    normalize = command("normalize")
    normalize.add_argument("inputs", nargs="+", help="files or folders")
    normalize.add_argument("-o", "--output", required=True, help="canonical JSONL to write")
    normalize.set_defaults(handler=_cmd_normalize)
    redact = command("redact")
    redact.add_argument("input", help='JSONL with {"id", "text"} lines (or canonical traces with --traces)')
    redact.add_argument("-o", "--output", required=True, help="redacted JSONL to write")
    redact.add_argument("--traces", action="store_true", help="the input is trace JSONL: redact field by field")
    redact.set_defaults(handler=_cmd_redact)
    embed = command("embed")
    embed.add_argument("input", help='JSONL with {"id", "text"} lines')
    embed.add_argument("-o", "--output", required=True, help="Parquet file: id, text_sha256, vector")
    embed.set_defaults(handler=_cmd_embed)
    cluster = command("cluster")
    cluster.add_argument("input", help='JSONL with {"id", "text"} lines')
    cluster.add_argument("-o", "--output", required=True, help="JSONL: id, intent_id, intent_name, confidence")
    cluster.add_argument("--catalog", help="JSON catalog kept between runs: read first when it exists (intents keep "
                         "their ids), then rewritten with names, sizes, examples and merge candidates")
    cluster.add_argument("--overrides", help="a reviewer's decisions (intent_overrides.toml format: rename, merge, "
                         "split, pin), applied to this clustering and kept in --catalog")
    cluster.set_defaults(handler=_cmd_cluster)
    sample = command("sample")
    sample.add_argument("input", help="trace JSONL (canonical or any supported dialect)")
    sample.add_argument("--budget", type=int, default=200, help="traces to choose (default 200)")
    sample.add_argument("-o", "--output", required=True, help="JSONL: chosen traces with stratum and reason")
    sample.add_argument("--redact", action="store_true", help="redact PII first (else the input must be redacted)")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sample.set_defaults(handler=_cmd_sample)
    run = command("run")
    _add_run_options(run)
    run.set_defaults(handler=_cmd_run)
    doctor = command("doctor")
    doctor.add_argument("--fix", action="store_true", help="mark stale runs failed and free their pool slots")
    doctor.set_defaults(handler=_cmd_doctor)
    demo = command("demo")
    _add_simulate_options(demo, recent=True)
    demo.set_defaults(handler=_cmd_demo, select=None, partitions=None)
    for name in PLUGGED_COMMANDS:
        module = _plugged(name)
        plugged = command(name)
        module.configure(plugged)
        plugged.set_defaults(handler=module.run)
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--select", action="append", metavar="ASSET",
                        help="materialize only this asset (repeatable), e.g. --select redacted_traces")
    parser.add_argument("--partitions", type=_partition_range, metavar="START..END",
                        help="only these days of the daily assets (YYYY-MM-DD, or a range START..END)")


def main(argv: list[str] | None = None) -> int:
    import traceback

    from evalflow.lib.common.settings import SettingError, validate_environment

    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the runs' evalflow/command tag
    # Our own warnings (a DuckDB file held by another process...) reach the console.
    logger = logging.getLogger("evalflow")
    if not any(isinstance(h, _ConsoleHandler) for h in logger.handlers):
        handler = _ConsoleHandler()
        handler.setFormatter(logging.Formatter("evalflow: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        validate_environment()
        return args.handler(args)
    except SettingError as exc:
        print(f"evalflow: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Busy as exc:
        print(f"evalflow: error: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except UserError as exc:
        print(f"evalflow: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except InternalError as exc:
        print(f"evalflow: internal error: {exc}\n  (this looks like a bug in evalflow"
              + ("" if args.debug else "; run again with --debug for the traceback") + ")", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print("evalflow: interrupted", file=sys.stderr)
        return 130
    except (OSError, duckdb.IOException) as exc:
        # The environment: a missing or read-only folder, a full disk, a file held by another process.
        if args.debug:
            traceback.print_exc()
        print(f"evalflow: error: {type(exc).__name__}: {_first_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as exc:  # noqa: BLE001 - anything else is a bug: say so, keep the traceback
        if args.debug:
            traceback.print_exc()
        print(f"evalflow: internal error: {type(exc).__name__}: {_first_line(exc)}\n  (this looks like a bug "
              "in evalflow" + ("" if args.debug else "; run again with --debug for the traceback") + ")",
              file=sys.stderr)
        return EXIT_INTERNAL


class _ConsoleHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a handler that kept the stream it was made
    with would write to a closed one when stderr is swapped, e.g. by a test harness)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


if __name__ == "__main__":
    sys.exit(main())
