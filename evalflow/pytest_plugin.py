"""A pytest plugin: the cases of a pinned dataset version as test items, in any repository.

Registered through the `pytest11` entry point (pyproject.toml), so with evalflow installed

    pytest --evalflow-snapshot golden@v3 --evalflow-responses responses.jsonl

collects, besides the repository's own tests, one item per case of golden@v3 named
`<intent>/<case_id>` (node id `evalflow::golden@v3::<intent>/<case_id>`), which runs the case's deterministic checks on
its answer from the responses file (lines `{"case_id", "output"}`, as `evalflow check` reads):

- it passes when every check passes, fails naming each failed check (and fails when the
  responses have no answer for the case), and is skipped when the case has no check (no
  verdict; never a pass);
- holdout cases carry the marker `evalflow_holdout`, cases of the safety edge set
  `evalflow_safety` (`-m "not evalflow_holdout"` runs the dev cases only);
- the version is read from the lake of `--evalflow-data-dir` (default: EVALFLOW_DATA_DIR) and
  verified first: a pin that does not exist or does not verify stops the session with a usage
  error (exit 4), never a fallback to another version;
- the summary ends with the gate's one-line verdict (evalflow.lib.eval_cases.gate: pass rate,
  safety slice, missing responses) for the whole version; `evalflow check` is the command
  whose exit code applies that threshold, and the one that can use the calibrated judge.

Without the options the plugin does nothing (it imports no evalflow module at all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

HOLDOUT_MARKER = "evalflow_holdout"
SAFETY_MARKER = "evalflow_safety"
_REPORT = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("evalflow", "evalflow: the cases of a pinned dataset version as tests")
    group.addoption("--evalflow-snapshot", metavar="NAME@VERSION", default=None,
                    help="the pinned dataset version whose cases become tests, e.g. golden@v3")
    group.addoption("--evalflow-responses", metavar="RESPONSES.jsonl", default=None,
                    help='the answers to test: one {"case_id": ..., "output": ...} per line')
    group.addoption("--evalflow-data-dir", metavar="DIR", default=None,
                    help="the evalflow data folder holding the lake (default: EVALFLOW_DATA_DIR, else ./data)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{HOLDOUT_MARKER}: an evalflow case of the holdout split")
    config.addinivalue_line("markers", f"{SAFETY_MARKER}: an evalflow case of the safety edge set")


class EvalCaseFailed(Exception):
    """A case's answer failed (the message lists what failed)."""


class EvalflowVersion(pytest.Collector):
    """The cases of one version (its items are made at collection, see pytest_collection_modifyitems)."""

    def collect(self):  # pragma: no cover - never collected from a path
        return []


class EvalflowCase(pytest.Item):
    def __init__(self, *, case: dict[str, Any], output: str | None, missing: bool, **kwargs):
        super().__init__(**kwargs)
        self.case = case
        self.output = output
        self.missing = missing

    def runtest(self) -> None:
        from evalflow.lib.eval_cases.gate import FAIL, MISSING, NO_VERDICT, evaluate_case

        result = evaluate_case(self.case, self.output, self.missing)
        if result.status == NO_VERDICT:
            pytest.skip("no deterministic check: no verdict (never counted as a pass)")
        if result.status in (FAIL, MISSING):
            raise EvalCaseFailed("\n".join(result.failures))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, EvalCaseFailed):
            return f"{self.name} failed:\n" + "\n".join(f"  {line}" for line in str(excinfo.value).splitlines())
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"evalflow case {self.name}"


def _options(config: pytest.Config) -> tuple[str, str, str | None] | None:
    snapshot = config.getoption("evalflow_snapshot")
    responses = config.getoption("evalflow_responses")
    if snapshot is None and responses is None:
        return None
    if not snapshot or not responses:
        raise pytest.UsageError("--evalflow-snapshot and --evalflow-responses go together: give both")
    return snapshot, responses, config.getoption("evalflow_data_dir")


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselect, so they apply to the cases too
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    options = _options(config)
    if options is None:
        return
    from evalflow.lib.eval_cases.gate import GateInputError, evaluate, load_version, read_responses
    from evalflow.lib.eval_cases.schema import InvalidCase

    snapshot, responses_path, data_dir = options
    if data_dir is None:
        from evalflow.lib.common.settings import SettingError, load_settings

        try:
            data_dir = load_settings().data_dir
        except SettingError as exc:
            raise pytest.UsageError(f"evalflow: {exc}") from None
    try:
        cases = load_version(Path(data_dir), snapshot)
        responses = read_responses(Path(responses_path))
        report = evaluate(cases, responses, ref=snapshot)
    except GateInputError as exc:
        raise pytest.UsageError(f"evalflow: {exc}") from None
    except InvalidCase as exc:
        raise pytest.UsageError(f"evalflow: {snapshot}: {' '.join(str(exc).split())}") from None
    config.stash[_REPORT] = report
    # node ids `evalflow::golden@v3::<intent>/<case_id>` (no brackets: pytest reads them as parameters)
    parent = EvalflowVersion.from_parent(session, name=snapshot, path=config.rootpath, nodeid=f"evalflow::{snapshot}")
    by_id = {str(c["case_id"]): c for c in cases}
    made: list[pytest.Item] = []
    for result in report.results:
        item = EvalflowCase.from_parent(parent, name=f"{result.intent}/{result.case_id}", case=by_id[result.case_id],
                                        output=responses.get(result.case_id), missing=result.case_id not in responses)
        if result.split == "holdout":
            item.add_marker(HOLDOUT_MARKER)
        if result.safety:
            item.add_marker(SAFETY_MARKER)
        made.append(item)
    items.extend(made)
    # reported like collected items, so the terminal's "collected N items" counts them
    config.hook.pytest_collectreport(report=pytest.CollectReport(parent.nodeid, "passed", None, made))


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    report = config.stash.get(_REPORT, None)
    if report is None:
        return
    terminalreporter.section("evalflow")
    overall = report.overall
    terminalreporter.write_line(
        f"{report.ref}: {overall.all.cases} cases; pass rate {_number(overall.all.pass_rate)} overall, "
        f"{_number(overall.dev.pass_rate)} dev, {_number(overall.holdout.pass_rate)} holdout (checks only)")
    if report.unknown_responses:
        terminalreporter.write_line(f"{len(report.unknown_responses)} response(s) name no case of {report.ref} "
                                    "(ignored)")
    terminalreporter.write_line(report.reason)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
