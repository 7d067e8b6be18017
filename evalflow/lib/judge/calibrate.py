"""Calibrating the judge against human consensus labels, per dimension and prompt variant.

Only cases with an agreed human consensus label take part, and never a holdout case (listed in
the result as split "holdout" with no judge verdict; `_never_holdout` refuses to build a request
for one). The others split by case hash into a tuning part and a test part (cases.py):

1. every prompt variant judges the tuning cases;
2. the best variant on the tuning part is chosen: highest agreement, then highest kappa, then
   the lowest prompt sha256 (an arbitrary but stable order, so the same inputs always choose
   the same variant), then the variant name;
3. only that variant judges the test cases. The other variants never see the test part, so the
   test figures are an honest estimate for the chosen prompt, not the best of several draws.

Figures per part: agreement (share of cases where judge and human agree), Cohen's kappa
(scikit-learn), TPR, TNR and the confusion matrix. The positive class is Fail: what a gate must
catch is a failing answer, so TPR is the share of human Fails the judge also fails (a judge that
passes everything has TPR 0), and TNR the share of human Passes it passes. Unparseable replies
are left out of the figures and counted. A figure whose denominator is zero is None (JSON null),
and so is kappa when both raters used a single class (it is undefined there; such a test part
cannot show kappa >= the threshold, so it does not calibrate).

A (model, prompt) is `calibrated` for the dimension when the test part has at least
min_test_cases scored cases, test agreement >= min_agreement, test kappa >= min_kappa, and the
human agreement gate of the dimension is open (passed in by the caller).
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import polars as pl

from evalflow.lib.judge.cases import calibration_split, canonical_json, case_sha256, is_holdout
from evalflow.lib.judge.client import JudgeClient, JudgeRequest, JudgeResult
from evalflow.lib.judge.config import CalibrationThresholds
from evalflow.lib.judge.parse import VERDICTS
from evalflow.lib.judge.prompts import PromptTemplate, render

POSITIVE = "Fail"  # the class a gate must catch


@dataclass(frozen=True)
class PartFigures:
    n: int  # cases scored (a human verdict and a readable judge verdict)
    agreement: float | None
    kappa: float | None
    tpr: float | None
    tnr: float | None
    confusion: dict[str, int]  # tp, fn, fp, tn with Fail as the positive class
    unparseable: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "agreement": self.agreement, "kappa": self.kappa, "tpr": self.tpr, "tnr": self.tnr,
                "confusion": dict(self.confusion), "unparseable": self.unparseable}


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def figures(pairs: Iterable[tuple[str, str | None]]) -> PartFigures:
    """Figures over (human, judge) verdict pairs; a judge verdict of None is unparseable."""
    pairs = list(pairs)
    scored = [(h, j) for h, j in pairs if j is not None]
    tp = sum(h == POSITIVE and j == POSITIVE for h, j in scored)
    fn = sum(h == POSITIVE and j != POSITIVE for h, j in scored)
    fp = sum(h != POSITIVE and j == POSITIVE for h, j in scored)
    tn = sum(h != POSITIVE and j != POSITIVE for h, j in scored)
    return PartFigures(n=len(scored), agreement=_ratio(tp + tn, len(scored)), kappa=_kappa(scored),
                       tpr=_ratio(tp, tp + fn), tnr=_ratio(tn, tn + fp),
                       confusion={"tp": tp, "fn": fn, "fp": fp, "tn": tn}, unparseable=len(pairs) - len(scored))


def _kappa(scored: Sequence[tuple[str, str]]) -> float | None:
    if not scored:
        return None
    from sklearn.metrics import cohen_kappa_score  # scikit-learn loads only when a calibration runs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 0/0 when both raters used one class: reported as None
        value = cohen_kappa_score([h for h, _ in scored], [j for _, j in scored], labels=list(VERDICTS))
    return None if math.isnan(value) else float(value)


@dataclass
class VariantResult:
    template: PromptTemplate
    tune: PartFigures
    verdicts: dict[str, JudgeResult]

    def as_dict(self) -> dict[str, Any]:
        return {"variant": self.template.variant, "prompt_sha256": self.template.sha256,
                "path": str(self.template.path) if self.template.path else None, "tune": self.tune.as_dict()}


@dataclass
class Calibration:
    dimension: str
    model: str
    template: PromptTemplate  # the variant chosen on the tuning part
    variants: list[VariantResult]
    tune: PartFigures
    test: PartFigures
    cases: list[dict[str, Any]]  # case_id, split, human, judge (None: holdout, or unparseable)
    calibrated: bool
    gate_open: bool
    thresholds: CalibrationThresholds
    calibration_id: str
    labels_without_case: list[str] = field(default_factory=list)
    critiques: dict[str, str | None] = field(default_factory=dict, repr=False)

    @property
    def unparseable(self) -> int:
        return self.tune.unparseable + self.test.unparseable

    def shortfalls(self) -> list[str]:
        """Why the judge is not calibrated ([] when it is)."""
        t, test = self.thresholds, self.test
        out = []
        if test.n < t.min_test_cases:
            out.append(f"{test.n} scored test cases, {t.min_test_cases} needed")
        if test.agreement is None or test.agreement < t.min_agreement:
            out.append(f"test agreement {_show(test.agreement)} below {t.min_agreement:g}")
        if test.kappa is None or test.kappa < t.min_kappa:
            out.append(f"test kappa {_show(test.kappa)} below {t.min_kappa:g}")
        if not self.gate_open:
            out.append("the human agreement gate is closed")
        return out

    def to_report(self) -> dict[str, Any]:
        """The REPORT.json of `evalflow judge calibrate`."""
        return {
            "dimension": self.dimension, "model": self.model, "prompt_sha256": self.template.sha256,
            "variant": self.template.variant, "calibration_id": self.calibration_id,
            "calibrated": self.calibrated, "gate_open": self.gate_open, "shortfalls": self.shortfalls(),
            "thresholds": {"min_agreement": self.thresholds.min_agreement, "min_kappa": self.thresholds.min_kappa,
                           "min_test_cases": self.thresholds.min_test_cases},
            "tune": self.tune.as_dict(), "test": self.test.as_dict(), "unparseable": self.unparseable,
            "variants": [v.as_dict() for v in self.variants],
            "holdout": sum(c["split"] == "holdout" for c in self.cases),
            "labels_without_case": len(self.labels_without_case),
            "cases": [dict(c) for c in self.cases],
        }


def _show(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


class HoldoutLeak(RuntimeError):
    """A holdout case was about to be sent to the judge (a bug: the split must prevent it)."""


def _never_holdout(case_ids: Iterable[str]) -> None:
    # A raise, not an assert: `python -O` drops asserts, and this rule must hold however run.
    leaked = [case_id for case_id in case_ids if is_holdout(case_id)]
    if leaked:
        raise HoldoutLeak(f"{len(leaked)} holdout case(s) would reach the judge, e.g. {leaked[0]}")


def requests_for(template: PromptTemplate, cases: Sequence[Mapping[str, Any]], dimension: str) -> list[JudgeRequest]:
    _never_holdout(str(c["case_id"]) for c in cases)
    return [JudgeRequest(case_id=str(c["case_id"]), dimension=dimension, prompt=render(template, c, dimension),
                         prompt_sha256=template.sha256, case_sha256=case_sha256(c, dimension)) for c in cases]


def human_verdicts(consensus: pl.DataFrame, dimension: str, id_column: str = "item_id") -> dict[str, str]:
    """{case id: Pass/Fail} from consensus rows (majority_vote's output or consensus_labels):
    the dimension's rows with status 'agreed' and a Pass/Fail value; disputed, feedback-only and
    tied rows are left out."""
    if consensus.is_empty():
        return {}
    rows = consensus.filter((pl.col("dimension") == dimension) & (pl.col("status") == "agreed")
                            & pl.col("value").is_in(list(VERDICTS)))
    return dict(zip(rows[id_column].cast(pl.String).to_list(), rows["value"].to_list()))


def _rank(variant: VariantResult) -> tuple:
    tune = variant.tune
    return (-(tune.agreement if tune.agreement is not None else -1.0),
            -(tune.kappa if tune.kappa is not None else -2.0), variant.template.sha256, variant.template.variant)


def choose_variant(variants: Sequence[VariantResult]) -> VariantResult:
    """The best on the tuning part: agreement, then kappa, then the lowest sha256, then the name."""
    return min(variants, key=_rank)


def calibrate(cases: Mapping[str, Mapping[str, Any]], human: Mapping[str, str], dimension: str,
              templates: Sequence[PromptTemplate], client: JudgeClient, gate_open: bool,
              thresholds: CalibrationThresholds | None = None) -> Calibration:
    """Calibrate the judge for one dimension: `cases` by case id, `human` the agreed consensus
    verdicts by case id, `templates` the prompt variants (at least one)."""
    if not templates:
        raise ValueError("calibration needs at least one prompt template")
    thresholds = thresholds or CalibrationThresholds()
    bad = sorted({v for v in human.values() if v not in VERDICTS})
    if bad:
        raise ValueError(f"human verdicts must be Pass or Fail, got {bad[:3]}")
    labelled = sorted(case_id for case_id in human if case_id in cases)
    without_case = sorted(case_id for case_id in human if case_id not in cases)
    split = {case_id: "holdout" if is_holdout(case_id) else calibration_split(case_id) for case_id in labelled}
    tune_cases = [cases[c] for c in labelled if split[c] == "tune"]
    test_cases = [cases[c] for c in labelled if split[c] == "test"]

    variants = []
    for template in templates:
        results = client.judge_many(requests_for(template, tune_cases, dimension))
        verdicts = {r.case_id: r for r in results}
        variants.append(VariantResult(template, figures((human[c], verdicts[c].verdict) for c in verdicts), verdicts))
    best = choose_variant(variants)
    test_results = {r.case_id: r for r in client.judge_many(requests_for(best.template, test_cases, dimension))}
    test = figures((human[c], r.verdict) for c, r in test_results.items())

    judged = {**best.verdicts, **test_results}
    rows = [{"case_id": c, "split": split[c], "human": human[c],
             "judge": judged[c].verdict if c in judged else None,
             "unparseable": c in judged and judged[c].verdict is None} for c in labelled]
    calibrated = bool(gate_open and test.n >= thresholds.min_test_cases
                      and test.agreement is not None and test.agreement >= thresholds.min_agreement
                      and test.kappa is not None and test.kappa >= thresholds.min_kappa)
    identity = {"dimension": dimension, "model": client.model, "prompt_sha256": best.template.sha256,
                "cases": [[c, split[c], case_sha256(cases[c], dimension), human[c]] for c in labelled]}
    return Calibration(
        dimension=dimension, model=client.model, template=best.template, variants=variants, tune=best.tune,
        test=test, cases=rows, calibrated=calibrated, gate_open=bool(gate_open), thresholds=thresholds,
        calibration_id="cal-" + hashlib.sha256(canonical_json(identity)).hexdigest()[:20],
        labels_without_case=without_case, critiques={c: r.critique for c, r in judged.items()})


@dataclass(frozen=True)
class CalibratedJudge:
    """A (model, prompt) that passed calibration for a dimension: what judge_unlabelled needs, and
    what the judge_labels asset rebuilds from judge_calibrations and the prompt folder."""
    dimension: str
    model: str
    template: PromptTemplate
    calibration_id: str


def judge_unlabelled(cases: Iterable[Mapping[str, Any]], calibration: Calibration | CalibratedJudge,
                     client: JudgeClient) -> list[dict[str, Any]]:
    """Judge labels for cases no human labelled, written only by a calibrated (model, prompt):
    [] when the calibration did not pass, or was made with another model than the client's.
    Holdout cases are skipped (their labels stay human), and so are unparseable replies."""
    if isinstance(calibration, Calibration) and not calibration.calibrated:
        return []
    if calibration.model != client.model:
        return []
    eligible = [c for c in cases if not is_holdout(str(c["case_id"]))]
    results = client.judge_many(requests_for(calibration.template, eligible, calibration.dimension))
    trace_ids = {str(c["case_id"]): c.get("trace_id") for c in eligible}
    return [{"case_id": r.case_id, "trace_id": trace_ids.get(r.case_id), "dimension": r.dimension,
             "verdict": r.verdict, "critique": r.critique, "model": r.model, "prompt_sha256": r.prompt_sha256,
             "calibration_id": calibration.calibration_id} for r in results if r.verdict is not None]
