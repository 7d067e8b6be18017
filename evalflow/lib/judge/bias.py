"""Bias checks: position bias for pairwise comparisons, verbosity bias.

Position bias exists only when the judge compares two answers to one input. Each pair is judged
in both orders (A shown first, then B shown first); the two preferences, mapped back to A/B,
should be the same. When they differ the pair is a flip, and it counts as a tie: the judge
showed no preference that survives reordering. A judge may be used pairwise only while its flip
rate (flips / pairs with both replies readable) is at most EVALFLOW_JUDGE_MAX_FLIP_RATE (0.10).
A flip is any change, including "A" in one order and "tie" in the other.

Verbosity bias: does the judge agree with people more when the better answer is the longer one?
- pairwise (`verbosity_bias_pairwise`): over pairs where people marked which answer passes
  (`pass_answer`), agreement (the judge's order-robust preference equals the passing answer;
  ties and flips disagree) on pairs whose passing answer is the shorter vs the longer one;
- single cases (`verbosity_bias_single`): agreement with the human verdict on the shorter half
  vs the longer half of the outputs by character length (cases sorted by length, then case id;
  the shorter half is the first n // 2).
Both are reported side by side with their difference (longer minus shorter): a judge that
favours length shows a clearly positive difference.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from evalflow.lib.judge.calibrate import Calibration
from evalflow.lib.judge.cases import canonical_json, rubric_for
from evalflow.lib.judge.client import JudgeClient, JudgeRequest
from evalflow.lib.judge.config import max_flip_rate as max_flip_rate_setting
from evalflow.lib.judge.parse import parse_pairwise_reply
from evalflow.lib.judge.prompts import PromptTemplate, render_pairwise

ORDERS = ("ab", "ba")  # which answer is shown first


@dataclass(frozen=True)
class PairOutcome:
    pair_id: str
    a_first: str | None  # the preference with A shown first, as "a", "b" or "tie" (None: unreadable)
    b_first: str | None  # the same with B shown first
    flipped: bool
    preferred: str | None  # "a", "b", "tie" (a flip is a tie), None when a reply was unreadable

    def as_dict(self) -> dict[str, Any]:
        return {"pair_id": self.pair_id, "a_first": self.a_first, "b_first": self.b_first,
                "flipped": self.flipped, "preferred": self.preferred}


def _as_answer(preference: str | None, order: str) -> str | None:
    if preference is None or preference == "tie":
        return preference
    return order[0] if preference == "first" else order[1]


def pair_sha256(pair: Mapping[str, Any], first: str, second: str, dimension: str) -> str:
    """What the judge sees of a pair in one order (the cache key's case part)."""
    seen = {"pair_id": pair["pair_id"], "input": pair.get("input"), "first": first, "second": second,
            "dimension": dimension, "rubric": rubric_for(pair, dimension)}
    return hashlib.sha256(canonical_json(seen)).hexdigest()


def judge_pairs(pairs: Sequence[Mapping[str, Any]], template: PromptTemplate, client: JudgeClient,
                dimension: str) -> list[PairOutcome]:
    """Each pair ({"pair_id", "input", "answer_a", "answer_b"}) judged in both orders."""
    if not template.pairwise:
        raise ValueError("position bias needs the pairwise template (pairwise.md)")
    requests = []
    for pair in pairs:
        answers = {"a": pair["answer_a"], "b": pair["answer_b"]}
        for order in ORDERS:
            first, second = answers[order[0]], answers[order[1]]
            requests.append(JudgeRequest(case_id=str(pair["pair_id"]), dimension=dimension,
                                         prompt=render_pairwise(template, pair, first, second, dimension),
                                         prompt_sha256=template.sha256,
                                         case_sha256=pair_sha256(pair, first, second, dimension)))
    results = client.judge_many(requests, parse=parse_pairwise_reply)
    outcomes = []
    for index, pair in enumerate(pairs):
        a_first = _as_answer(results[2 * index].verdict, "ab")
        b_first = _as_answer(results[2 * index + 1].verdict, "ba")
        if a_first is None or b_first is None:
            outcomes.append(PairOutcome(str(pair["pair_id"]), a_first, b_first, False, None))
            continue
        flipped = a_first != b_first
        outcomes.append(PairOutcome(str(pair["pair_id"]), a_first, b_first, flipped, "tie" if flipped else a_first))
    return outcomes


def position_bias(outcomes: Sequence[PairOutcome], max_flip_rate: float | None = None) -> dict[str, Any]:
    """Flip rate and whether the judge may be used pairwise."""
    limit = max_flip_rate_setting() if max_flip_rate is None else max_flip_rate
    scored = [o for o in outcomes if o.preferred is not None]
    flips = sum(o.flipped for o in scored)
    rate = flips / len(scored) if scored else None
    return {"pairs": len(outcomes), "scored": len(scored), "unparseable": len(outcomes) - len(scored),
            "flips": flips, "flip_rate": rate, "max_flip_rate": limit,
            "usable_pairwise": rate is not None and rate <= limit,
            "outcomes": [o.as_dict() for o in outcomes]}


def pairwise_position_bias(pairs: Sequence[Mapping[str, Any]], template: PromptTemplate, client: JudgeClient,
                           dimension: str, max_flip_rate: float | None = None) -> dict[str, Any]:
    """Judge each pair in both orders and report the flip rate (see `position_bias`)."""
    return position_bias(judge_pairs(pairs, template, client, dimension), max_flip_rate)


def _group(agreements: Sequence[bool]) -> dict[str, Any]:
    return {"n": len(agreements), "agreement": sum(agreements) / len(agreements) if agreements else None}


def _side_by_side(method: str, names: tuple[str, str], shorter: list[bool], longer: list[bool],
                  **extra) -> dict[str, Any]:
    short, long_ = _group(shorter), _group(longer)
    difference = (long_["agreement"] - short["agreement"]
                  if short["agreement"] is not None and long_["agreement"] is not None else None)
    return {"method": method, names[0]: short, names[1]: long_, "difference": difference, **extra}


def verbosity_bias_pairwise(pairs: Sequence[Mapping[str, Any]], outcomes: Sequence[PairOutcome]) -> dict[str, Any]:
    """Agreement on pairs whose passing answer (`pass_answer`: "a" or "b") is the shorter vs the
    longer of the two; pairs of equal length, without `pass_answer`, or unreadable are left out."""
    by_id = {o.pair_id: o for o in outcomes}
    shorter, longer = [], []
    for pair in pairs:
        better, outcome = pair.get("pass_answer"), by_id.get(str(pair["pair_id"]))
        if better not in ("a", "b") or outcome is None or outcome.preferred is None:
            continue
        other = "b" if better == "a" else "a"
        length, other_length = len(pair[f"answer_{better}"]), len(pair[f"answer_{other}"])
        if length == other_length:
            continue
        (shorter if length < other_length else longer).append(outcome.preferred == better)
    return _side_by_side("pairwise: agreement on pairs whose Pass answer is the shorter vs the longer one",
                         ("pass_shorter", "pass_longer"), shorter, longer)


def verbosity_bias_single(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Agreement on the shorter half vs the longer half of outputs by length. Items:
    {"case_id", "output", "human", "judge"}; those without a judge verdict are left out."""
    scored = sorted(((len(str(i.get("output") or "")), str(i["case_id"]), i["human"] == i["judge"])
                     for i in items if i.get("judge") is not None and i.get("human") is not None))
    half = len(scored) // 2
    lengths = [length for length, _, _ in scored]
    return _side_by_side(
        "single: agreement on the shorter half vs the longer half of outputs by character length",
        ("shorter_half", "longer_half"),
        [agree for _, _, agree in scored[:half]], [agree for _, _, agree in scored[half:]],
        cut_length=lengths[half] if scored and half < len(lengths) else None)


def calibration_verbosity(calibration: Calibration, cases: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """`verbosity_bias_single` over a calibration's judged cases (tune and test)."""
    return verbosity_bias_single(
        {"case_id": c["case_id"], "output": cases[c["case_id"]].get("output"), "human": c["human"],
         "judge": c["judge"]} for c in calibration.cases if c["split"] != "holdout")
