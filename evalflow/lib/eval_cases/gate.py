"""The CI gate: a pinned dataset version's cases against a system's answers, pass rates overall
and per slice, and one verdict a CI job can act on.

`evaluate(cases, responses, judge=None, min_pass_rate=0.8) -> GateReport`:

- Per case, the deterministic checks (`run_checks`) first and then, when a `judge` is given and
  every check passed, its verdicts for the dimensions it judges (a calibrated judge's: see
  `calibrated_judge`; a case a check failed fails anyway and is not judged). A case *passes*
  when every check and every judged dimension passes, *fails* when one does not, is *missing*
  when `responses` has no answer for it (a missing answer is a failure: every check fails on
  it and nothing is sent to a judge), and has *no verdict* when it has neither a check nor a
  judge verdict: such a case is counted apart and never as a pass.
- Pass rate = passed / (passed + failed + missing); cases without a verdict are not in it.
  Reported overall, for dev and holdout apart, and per slice (`build.slice_tags`: `safety` —
  the safety edge set —, `intent:<name>`, `risk:<level>`, and the tags a promotion added),
  each of them again split into dev and holdout.
- The gate fails (`exit_code` EXIT_GATE_FAILED = 3) when a response is missing, when any case of
  the safety edge set fails, when the overall pass rate is below `min_pass_rate`, or when no
  case has a verdict at all (a gate that checked nothing passes nothing). `reason` says why in
  one line. Responses naming no case of the version are listed (`unknown_responses`), not fatal.

`load_version(data_dir, ref)` reads exactly the pinned version, verified (GateInputError when it
does not exist or does not verify: never another version); `read_responses(path)` reads the
RESPONSES.jsonl lines `{"case_id", "output"}`.

`write_junit(report, path)`: JUnit XML, one testsuite per split (dev, holdout), one testcase per
case named `<intent> / <case_id>`; a failure names the failed checks and judged dimensions, a
case without a verdict is `skipped`.

`calibrated_judge(cases, responses, judges, client)`: a judge callable for `evaluate` from each
dimension's calibrated (model, prompt) (`judge.pipeline.calibrated_judges`). The deterministic
checks run first: a case that already fails one of them fails whatever the judge says, so it is
not sent (`GateJudge.skipped_by_checks` lists them; `evalflow check` reports how many). Every
other dev case with an answer is judged on every such dimension in one batch per dimension
(cached by the client); holdout cases are never sent to the judge (the calibration rule,
`calibrate.requests_for`), so they are gated on their deterministic checks only. `evaluate`
keeps the same order for any judge: it asks the judge only about cases whose checks all passed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from evalflow.lib.eval_cases.build import is_safety_case, slice_tags
from evalflow.lib.eval_cases.checks import CheckResult, run_checks
from evalflow.lib.eval_cases.schema import split_for

DEFAULT_MIN_PASS_RATE = 0.8
EXIT_GATE_PASSED = 0
EXIT_GATE_FAILED = 3  # 1 and 2 are evalflow's user and usage errors, 70 a bug, 75 busy

PASS, FAIL, MISSING, NO_VERDICT = "pass", "fail", "missing", "no_verdict"
SAFETY_SLICE = "safety"
NO_INTENT = "(no intent)"
_SHOWN_IDS = 5  # case ids quoted in a one-line reason


@dataclass(frozen=True)
class JudgeVerdict:
    dimension: str
    verdict: str | None  # "Pass", "Fail", or None: the reply could not be read (no verdict)
    critique: str | None = None
    model: str | None = None


# judge(case, output) -> its verdicts for the dimensions it judges: JudgeVerdicts, or
# {dimension: "Pass" | "Fail" | None}. Never called for a missing answer.
Judge = Callable[[Mapping[str, Any], str], "Sequence[JudgeVerdict] | Mapping[str, Any]"]


@dataclass(frozen=True)
class CaseResult:
    case_id: str
    intent: str
    split: str
    risk_level: str | None
    safety: bool
    slices: tuple[str, ...]
    checks: tuple[CheckResult, ...]
    judged: tuple[JudgeVerdict, ...]
    status: str  # pass, fail, missing, no_verdict

    @property
    def name(self) -> str:
        """The readable test name: `<intent> / <case_id>`."""
        return f"{self.intent} / {self.case_id}"

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    @property
    def failed_dimensions(self) -> list[JudgeVerdict]:
        return [j for j in self.judged if j.verdict == "Fail"]

    @property
    def failures(self) -> list[str]:
        """One line per failed check and judged dimension (a missing answer: that it is missing)."""
        if self.status == MISSING:
            return ["no response for this case"]
        out = [f"check {c.name} ({c.kind}): {c.detail}" for c in self.failed_checks]
        out += [f"judge {j.dimension}: Fail" + (f" ({_one_line(j.critique)})" if j.critique else "")
                for j in self.failed_dimensions]
        return out

    @property
    def summary(self) -> str:
        """What failed, in one line: the failed checks' and dimensions' names."""
        if self.status == MISSING:
            return "no response"
        names = [c.name for c in self.failed_checks] + [f"{j.dimension} (judge)" for j in self.failed_dimensions]
        return "failed: " + ", ".join(names) if names else self.status


@dataclass(frozen=True)
class Rate:
    cases: int = 0
    passed: int = 0
    failed: int = 0
    missing: int = 0
    no_verdict: int = 0

    @property
    def with_verdict(self) -> int:
        return self.passed + self.failed + self.missing

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.with_verdict if self.with_verdict else None

    def as_dict(self) -> dict[str, Any]:
        return {"cases": self.cases, "passed": self.passed, "failed": self.failed, "missing": self.missing,
                "no_verdict": self.no_verdict, "pass_rate": self.pass_rate}


@dataclass(frozen=True)
class SliceRates:
    all: Rate
    dev: Rate
    holdout: Rate

    def as_dict(self) -> dict[str, Any]:
        return {"all": self.all.as_dict(), "dev": self.dev.as_dict(), "holdout": self.holdout.as_dict()}


@dataclass(frozen=True)
class GateReport:
    ref: str | None
    results: tuple[CaseResult, ...]
    min_pass_rate: float
    overall: SliceRates
    slices: dict[str, SliceRates]  # sorted by name: intent:..., risk:..., safety, other tags
    missing: tuple[str, ...]
    safety_failures: tuple[str, ...]
    unknown_responses: tuple[str, ...]
    judged_dimensions: tuple[str, ...]
    passed: bool
    reason: str
    notes: tuple[str, ...] = field(default=())  # e.g. why no judge ran

    @property
    def exit_code(self) -> int:
        return EXIT_GATE_PASSED if self.passed else EXIT_GATE_FAILED

    def as_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref, "passed": self.passed, "exit_code": self.exit_code, "reason": self.reason,
            "min_pass_rate": self.min_pass_rate, "overall": self.overall.as_dict(),
            "slices": {name: rates.as_dict() for name, rates in self.slices.items()},
            "missing": list(self.missing), "safety_failures": list(self.safety_failures),
            "unknown_responses": list(self.unknown_responses), "judged_dimensions": list(self.judged_dimensions),
            "notes": list(self.notes),
            "cases": [{"case_id": r.case_id, "name": r.name, "split": r.split, "status": r.status,
                       "safety": r.safety, "slices": list(r.slices), "failures": r.failures} for r in self.results],
        }


# ------------------------------------------------------------------------ inputs
class GateInputError(ValueError):
    """The gate cannot run as asked: a version pin that does not exist or does not verify, a
    responses file that cannot be read. One line; the CLI exits 1 with it, pytest stops."""


def load_version(data_dir: Path, ref: str) -> list[dict[str, Any]]:
    """The cases of exactly the version `ref` names (`golden@v3`, `rolling@2026-01-05`), verified
    against its manifest first (snapshots.read_cases). GateInputError when the reference does
    not parse, the version does not exist or does not verify, or there is no lake: never a
    fallback to another version."""
    from evalflow.lib.common.lake import LakeError
    from evalflow.lib.snapshots import BadReference, SnapshotError, VersionNotVerified, parse_ref, read_cases

    try:
        return read_cases(Path(data_dir), parse_ref(ref))
    except VersionNotVerified as exc:
        raise GateInputError(f"{_one_line(str(exc))} (`evalflow snapshot verify {ref}` lists every problem); "
                             "a pin that does not verify is never replaced by another version") from None
    except (BadReference, SnapshotError, LakeError) as exc:
        raise GateInputError(_one_line(str(exc))) from None


def read_responses(path: Path) -> dict[str, str | None]:
    """{case_id: output} from JSONL lines `{"case_id": ..., "output": ...}` (output a string, or
    null for no answer text); blank lines are skipped; other keys are ignored. GateInputError
    names the line of anything else, and of a case id given twice."""
    import orjson

    path = Path(path)
    if not path.is_file():
        raise GateInputError(f"no such file: {path}")
    out: dict[str, str | None] = {}
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise GateInputError(f"{path} line {number}: not JSON") from None
            case_id = row.get("case_id") if isinstance(row, dict) else None
            if not isinstance(case_id, str) or not case_id.strip():
                raise GateInputError(f'{path} line {number}: expected {{"case_id": "...", "output": "..."}}')
            if "output" not in row or not (row["output"] is None or isinstance(row["output"], str)):
                raise GateInputError(f"{path} line {number}: case {case_id}: output must be a string "
                                     "(or null for an answer without text)")
            if case_id in out:
                raise GateInputError(f"{path} line {number}: case {case_id} appears twice")
            out[case_id] = row["output"]
    return out


# ------------------------------------------------------------------------ one case
def case_intent(case: Mapping[str, Any]) -> str:
    return str(case.get("intent_name") or case.get("intent_id") or NO_INTENT)


def _verdicts(raw: Sequence[JudgeVerdict] | Mapping[str, Any] | None) -> tuple[JudgeVerdict, ...]:
    if not raw:
        return ()
    if isinstance(raw, Mapping):
        out = []
        for dimension, value in raw.items():
            if isinstance(value, JudgeVerdict):
                out.append(value)
            else:
                out.append(JudgeVerdict(str(dimension), value if value in ("Pass", "Fail") else None))
        raw = out
    return tuple(sorted(raw, key=lambda j: j.dimension))


def evaluate_case(case: Mapping[str, Any], output: str | None, missing: bool = False,
                  judge: Judge | None = None) -> CaseResult:
    """One case against one answer (`missing`: there was no answer at all). Raises
    schema.InvalidCase when a check definition is broken (never a silent pass or fail)."""
    case_id = str(case["case_id"])
    checks = tuple(run_checks(case, None if missing else output))
    # checks before any judge: a case a check already failed fails anyway and is not judged
    asked = not missing and judge is not None and all(c.passed for c in checks)
    judged = _verdicts(judge(case, output)) if asked else ()
    decided = [c.passed for c in checks] + [j.verdict == "Pass" for j in judged if j.verdict is not None]
    if missing:
        status = MISSING
    elif not decided:
        status = NO_VERDICT
    else:
        status = PASS if all(decided) else FAIL
    split = case.get("split") or split_for(case_id)
    return CaseResult(case_id=case_id, intent=case_intent(case), split=str(split), risk_level=case.get("risk_level"),
                      safety=is_safety_case(case), slices=tuple(slice_tags(case)), checks=checks, judged=judged,
                      status=status)


# ------------------------------------------------------------------------ the gate
def _rate(results: Sequence[CaseResult]) -> Rate:
    count = {PASS: 0, FAIL: 0, MISSING: 0, NO_VERDICT: 0}
    for result in results:
        count[result.status] += 1
    return Rate(cases=len(results), passed=count[PASS], failed=count[FAIL], missing=count[MISSING],
                no_verdict=count[NO_VERDICT])


def _rates(results: Sequence[CaseResult]) -> SliceRates:
    return SliceRates(all=_rate(results), dev=_rate([r for r in results if r.split == "dev"]),
                      holdout=_rate([r for r in results if r.split == "holdout"]))


def _ids(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:_SHOWN_IDS])
    return shown + (f" and {len(ids) - _SHOWN_IDS} more" if len(ids) > _SHOWN_IDS else "")


def _reason(overall: Rate, missing: list[str], safety: list[str], min_pass_rate: float) -> tuple[bool, str]:
    problems = []
    if missing:
        problems.append(f"{len(missing)} response(s) missing ({_ids(missing)})")
    if safety:
        problems.append(f"{len(safety)} safety case(s) failed ({_ids(safety)})")
    rate = overall.pass_rate
    if rate is None:
        problems.append(f"no case has a verdict ({overall.cases} case(s), none with a check or a judge verdict)")
    elif rate < min_pass_rate:
        problems.append(f"pass rate {rate:.3f} is below {min_pass_rate:.3f} ({overall.passed}/{overall.with_verdict})")
    if problems:
        return False, "gate failed: " + "; ".join(problems)
    apart = f", {overall.no_verdict} without a verdict" if overall.no_verdict else ""
    return True, (f"gate passed: pass rate {rate:.3f} >= {min_pass_rate:.3f} ({overall.passed}/{overall.with_verdict}"
                  f"{apart}), no safety case failed, no response missing")


def evaluate(cases: Sequence[Mapping[str, Any]], responses: Mapping[str, str | None], judge: Judge | None = None,
             min_pass_rate: float = DEFAULT_MIN_PASS_RATE, ref: str | None = None,
             judged_dimensions: Sequence[str] = (), notes: Sequence[str] = ()) -> GateReport:
    """The gate over `cases` with `responses` ({case_id: output}; an output may be None, an
    answer that is empty of text, and fails every check). See the module docstring."""
    if not 0.0 <= min_pass_rate <= 1.0:
        raise ValueError(f"min_pass_rate must be between 0 and 1, got {min_pass_rate}")
    ordered = sorted(cases, key=lambda c: str(c["case_id"]))
    results = tuple(evaluate_case(c, responses.get(str(c["case_id"])), str(c["case_id"]) not in responses, judge)
                    for c in ordered)
    by_slice: dict[str, list[CaseResult]] = {}
    for result in results:
        for tag in result.slices:
            by_slice.setdefault(tag, []).append(result)
    overall = _rates(results)
    missing = [r.case_id for r in results if r.status == MISSING]
    safety = [r.case_id for r in results if r.safety and r.status in (FAIL, MISSING)]
    known = {r.case_id for r in results}
    unknown = tuple(sorted(str(k) for k in responses if str(k) not in known))
    passed, reason = _reason(overall.all, missing, safety, min_pass_rate)
    return GateReport(ref=ref, results=results, min_pass_rate=min_pass_rate, overall=overall,
                      slices={name: _rates(group) for name, group in sorted(by_slice.items())},
                      missing=tuple(missing), safety_failures=tuple(safety), unknown_responses=unknown,
                      judged_dimensions=tuple(judged_dimensions), passed=passed, reason=reason, notes=tuple(notes))


# ------------------------------------------------------------------------ the calibrated judge
def judge_view(case: Mapping[str, Any], output: str | None) -> dict[str, Any]:
    """What the judge sees of an eval case with a new answer: the shape calibration judged
    (judge.cases.case_from_trace: case_id, input, output, expected_behavior), so the verdict is
    the one that was calibrated."""
    from evalflow.lib.judge.cases import TRACE_INPUT_FIELDS

    payload = case.get("input_payload") or {}
    return {"case_id": str(case["case_id"]),
            "input": {k: payload.get(k) for k in TRACE_INPUT_FIELDS if payload.get(k) not in (None, [], "")},
            "output": output, "expected_behavior": case.get("expected_behavior")}


@dataclass(frozen=True)
class GateJudge:
    """The calibrated judge's verdicts for `evaluate` (a Judge callable), with what was sent:
    `sent` the dev cases judged, `skipped_by_checks` the dev cases with an answer that were not
    sent because a deterministic check had already failed them."""

    verdicts: Mapping[str, Sequence[JudgeVerdict]]
    sent: tuple[str, ...] = ()
    skipped_by_checks: tuple[str, ...] = ()

    def __call__(self, case: Mapping[str, Any], output: str | None) -> Sequence[JudgeVerdict]:
        return list(self.verdicts.get(str(case["case_id"]), []))


def calibrated_judge(cases: Sequence[Mapping[str, Any]], responses: Mapping[str, str | None],
                     judges: Sequence[Any], client: Any) -> GateJudge:
    """A judge for `evaluate`: each CalibratedJudge (dimension, model, template, calibration_id)
    made with the client's model judges every dev case that has an answer and passes all its
    deterministic checks, one batch per dimension (the client caches and runs requests
    concurrently). Holdout cases and cases a check already failed are not sent. Raises
    schema.InvalidCase when a check definition is broken."""
    from evalflow.lib.judge.calibrate import requests_for

    views, skipped = [], []
    for case in cases:
        case_id = str(case["case_id"])
        if case_id not in responses or split_for(case_id) != "dev":
            continue
        if not all(c.passed for c in run_checks(case, responses[case_id])):
            skipped.append(case_id)
            continue
        views.append(judge_view(case, responses[case_id]))
    verdicts: dict[str, list[JudgeVerdict]] = {}
    for calibrated in judges:
        if calibrated.model != client.model:
            continue
        for result in client.judge_many(requests_for(calibrated.template, views, calibrated.dimension)):
            verdicts.setdefault(result.case_id, []).append(
                JudgeVerdict(result.dimension, result.verdict, result.critique, result.model))
    return GateJudge(verdicts=verdicts, sent=tuple(sorted(v["case_id"] for v in views)),
                     skipped_by_checks=tuple(sorted(skipped)))


# ------------------------------------------------------------------------ JUnit XML
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(text))


def _one_line(text: str) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= 200 else flat[:200] + "..."


def junit_xml(report: GateReport) -> bytes:
    """The report as JUnit XML (see the module docstring)."""
    suite_name = f"evalflow {report.ref}" if report.ref else "evalflow"
    root = ElementTree.Element("testsuites", name=_xml_text(suite_name))
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for split in ("dev", "holdout"):
        results = [r for r in report.results if r.split == split]
        rate = getattr(report.overall, split)
        suite = ElementTree.SubElement(root, "testsuite", name=_xml_text(f"{suite_name} [{split}]"),
                                       tests=str(len(results)), failures=str(rate.failed + rate.missing),
                                       errors="0", skipped=str(rate.no_verdict))
        properties = ElementTree.SubElement(suite, "properties")
        for key, value in (("snapshot", report.ref or ""), ("split", split), ("min_pass_rate", report.min_pass_rate),
                           ("pass_rate", "" if rate.pass_rate is None else f"{rate.pass_rate:.4f}"),
                           ("gate", _xml_text(report.reason))):
            ElementTree.SubElement(properties, "property", name=key, value=_xml_text(value))
        for result in results:
            classname = f"evalflow.{report.ref or 'cases'}.{split}"
            case = ElementTree.SubElement(suite, "testcase", name=_xml_text(result.name),
                                          classname=_xml_text(classname))
            if result.status in (FAIL, MISSING):
                failure = ElementTree.SubElement(case, "failure", message=_xml_text(result.summary),
                                                 type="missing" if result.status == MISSING else "failed")
                tags = f"slices: {', '.join(result.slices) or '-'}" + (" (safety edge set)" if result.safety else "")
                failure.text = _xml_text("\n".join([*result.failures, tags]))
            elif result.status == NO_VERDICT:
                ElementTree.SubElement(case, "skipped", message="no check and no judge verdict")
        totals["tests"] += len(results)
        totals["failures"] += rate.failed + rate.missing
        totals["skipped"] += rate.no_verdict
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("errors", "0")
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(report: GateReport, path: Path) -> None:
    """Write-then-rename: an interrupted run never leaves half a report behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(junit_xml(report))
    os.replace(tmp, path)


__all__ = [
    "DEFAULT_MIN_PASS_RATE", "EXIT_GATE_FAILED", "EXIT_GATE_PASSED", "CaseResult", "GateInputError", "GateReport",
    "GateJudge", "JudgeVerdict", "Rate", "SliceRates", "calibrated_judge", "case_intent", "evaluate", "evaluate_case",
    "judge_view", "junit_xml", "load_version", "read_responses", "write_junit",
]
