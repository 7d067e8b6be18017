"""The drift report's asset checks: each groups the signals that answer one question a person asks
("did the traffic move?", "did the prompts change?"), fails when any of them breached its
threshold in a week of the run, and takes the worst severity among those breaches. They are
non-blocking: a drift alert is news for the person reading, not a reason to stop the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol

# check name -> (description, signal name prefixes it covers)
CHECKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "intent_mix_stable": (
        "The week's intent mix is close to the golden set's production baseline and to the week before: JS "
        "divergence under its threshold (which allows for the week's sample size).", ("intent_mix",)),
    "embeddings_stable": (
        "The week's query embeddings are not distinguishable from the baseline's by the two-sample test "
        "(permutation p-value above alpha), or the centroid moved less than the threshold.", ("embedding",)),
    "prompts_match_golden": (
        "No system-prompt hash, tool-schema hash or template id carrying a share of the week's traffic above the "
        "threshold is new (or vanished) against the golden baseline or the week before.",
        ("prompt", "system_prompt", "tool_schema", "template")),
    "retrieval_stable": (
        "BM25 re-retrieval of the golden queries over the week's knowledge base still finds the documents it found "
        "when the golden set was published (mean overlap@k above the threshold), and no document changed content "
        "under the same id.", ("retrieval", "kb")),
    "golden_set_fresh": (
        "The golden set is not stale: the share of cases older than six months and the version's age are under "
        "their thresholds.", ("staleness", "version_age", "stale")),
    "safety_slice_covered": (
        "The safety edge set's share of golden cases keeps up with the injection and policy signals in the week's "
        "traffic, and its pass rate is not below the threshold.", ("safety",)),
    "no_score_inflation": (
        "The golden pass rate is not 15+ points above the rolling set's (contamination or overfitting), and it is "
        "not stuck at 90%+ while production failures do not fall (a stall).", ("score_inflation", "inflation",
                                                                               "stall")),
}
CHECK_DESCRIPTIONS = {name: text for name, (text, _) in CHECKS.items()}


class _Signal(Protocol):
    signal: str
    baseline: str
    severity: str | None
    detail: str


class _Outcome(Protocol):
    week: str

    def breaches(self) -> list[_Signal]: ...


def check_for(signal: str) -> str | None:
    """The check a signal belongs to (by the longest matching prefix), or None."""
    best = None
    for name, (_, prefixes) in CHECKS.items():
        for prefix in prefixes:
            if signal.startswith(prefix) and (best is None or len(prefix) > best[1]):
                best = (name, len(prefix))
    return best[0] if best else None


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    severity: str  # ERROR or WARN (the worst breach's); WARN when passed
    metadata: dict[str, Any] = field(default_factory=dict)


def check_results(outcomes: Iterable[_Outcome]) -> list[CheckOutcome]:
    """One result per check over the weeks of a run (see the module doc)."""
    found: dict[str, list[tuple[str, _Signal]]] = {name: [] for name in CHECKS}
    for outcome in outcomes:
        for signal in outcome.breaches():
            name = check_for(signal.signal)
            if name is not None:
                found[name].append((outcome.week, signal))
    results = []
    for name, breaches in found.items():
        worst = "ERROR" if any(s.severity == "ERROR" for _, s in breaches) else "WARN"
        metadata: dict[str, Any] = {"breaches": len(breaches),
                                    "weeks": ", ".join(sorted({week for week, _ in breaches})) or "none"}
        for week, signal in breaches[:10]:
            metadata[f"{week} {signal.signal} vs {signal.baseline}"] = f"{signal.severity}: {signal.detail}"
        results.append(CheckOutcome(name, passed=not breaches, severity=worst, metadata=metadata))
    return results
