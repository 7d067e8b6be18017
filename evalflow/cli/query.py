"""`evalflow query`: SQL over the lake, attached read-only as `lake`, while runs write.

The lake (evalflow/lib/common/lake.py: DuckLake, a SQLite catalog and Parquet files under
<data>/lake/) lets a reader in another process query while a run holds its writing connection
and commits; the working warehouse does not. The connection is an in-memory DuckDB database
with the lake attached READ_ONLY and made the default catalog (`USE lake`), so `FROM eval_cases`
and `FROM lake.eval_cases` name the same table; a statement that writes to the lake fails.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

COMMAND = (
    "run SQL over the lake (read-only) while runs write",
    "Runs SQL with the lake (<data>/lake/: the published tables and the dataset versions) attached read-only as "
    "`lake` and used as the default catalog, so it works while a run writes. Prints the result as a table (the "
    "first --max-rows rows), or writes every row to -o FILE.csv or FILE.parquet. --attach-sql prints the "
    "statements that attach the lake the same way in a duckdb shell (same duckdb version: 1.5.5).",
    ["evalflow query \"SELECT name, version, cases, holdout_cases FROM dataset_versions ORDER BY snapshot_id\"",
     "evalflow query \"FROM lake.eval_cases WHERE safety\" -o safety_cases.parquet",
     "evalflow query --attach-sql > attach.sql && duckdb -init attach.sql"],
)
FORMATS = {".csv": "csv", ".parquet": "parquet"}
_CELL = 60  # characters of a cell shown in the printed table


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sql", nargs="?", metavar="SQL", help="the SQL to run (quote it)")
    parser.add_argument("-o", "--output", metavar="FILE.csv|FILE.parquet",
                        help="write every row of the result here instead of printing it (format from the suffix)")
    parser.add_argument("--attach-sql", action="store_true",
                        help="print the statements that attach the lake read-only in a duckdb shell, and exit")
    parser.add_argument("--max-rows", type=_count, default=100, metavar="N",
                        help="rows printed (default 100; -o writes them all)")


def run(args: argparse.Namespace) -> int:
    from evalflow.cli import UserError
    from evalflow.lib.common.lake import LakeError, attach_sql, connect_lake
    from evalflow.lib.common.settings import load_settings

    data_dir = load_settings().data_dir
    if args.attach_sql:
        if args.sql or args.output:
            raise UserError("--attach-sql prints the ATTACH statements only; run SQL without it")
        try:
            print(attach_sql(data_dir, read_only=True) + "\nUSE lake;")
        except LakeError as exc:
            raise UserError(str(exc)) from None
        return 0
    if not args.sql or not args.sql.strip():
        raise UserError("give the SQL to run (e.g. evalflow query \"SHOW ALL TABLES\"), or --attach-sql")
    output = Path(args.output) if args.output else None
    if output is not None and output.suffix.lower() not in FORMATS:
        raise UserError(f"-o {output}: the file name must end in {' or '.join(FORMATS)}")
    try:
        con = connect_lake(data_dir, read_only=True)
    except LakeError as exc:
        raise UserError(str(exc)) from None
    try:
        con.execute("USE lake")
        return _run_sql(con, args.sql, output, args.max_rows)
    finally:
        con.close()


def _run_sql(con, sql: str, output: Path | None, max_rows: int) -> int:
    import duckdb

    from evalflow.cli import UserError

    try:
        relation = con.sql(sql)
        if relation is None:
            print("done (the statement returns no rows)")
            return 0
        if output is not None:
            _write(relation, output)
            rows = con.execute(f"SELECT count(*) FROM {_file_reader(output)}", [str(output)]).fetchall()[0][0]
            print(f"wrote {rows} row(s) to {output}")
            return 0
        columns = relation.columns
        rows = relation.fetchmany(max_rows + 1)
    except duckdb.Error as exc:
        raise UserError(f"SQL: {_first_line(exc)}") from None
    print(format_table(columns, rows[:max_rows]))
    shown = min(len(rows), max_rows)
    more = " (more rows not shown: --max-rows N, or -o FILE.csv writes them all)" if len(rows) > max_rows else ""
    print(f"({shown} row{'s' if shown != 1 else ''}{more})")
    return 0


def _file_reader(output: Path) -> str:
    return "read_csv(?, header = true)" if FORMATS[output.suffix.lower()] == "csv" else "read_parquet(?)"


def _write(relation, output: Path) -> None:
    """Write-then-rename: an interrupted query never leaves half a file under the name asked for."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        if FORMATS[output.suffix.lower()] == "csv":
            relation.write_csv(str(tmp), header=True)
        else:
            relation.write_parquet(str(tmp))
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    text = str(value).replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")
    return text if len(text) <= _CELL else text[:_CELL - 3] + "..."


def format_table(columns: list[str], rows: list[tuple]) -> str:
    """An aligned text table; long cells are cut, line breaks shown as \\n."""
    cells = [[_cell(c) for c in columns], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
