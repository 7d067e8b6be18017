"""The drift report's asset checks: each groups the signals that answer one question a person asks
("did the traffic move?", "did the prompts change?"), fails when any of them breached its
threshold in a week of the run, and takes the worst severity among those breaches. They are
non-blocking: a drift alert is news for the person reading, not a reason to stop the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol

# check name -> (description, prefixes of the signal names it covers; no signal matches two)
CHECKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "intent_mix_stable": (
        "The week's intent mix is close to the golden set's production baseline and to the week before: JS "
        "divergence under its threshold (which allows for the week's sample size).", ("intent_mix",)),
    "embeddings_stable": (
        "The week's query embeddings are not distinguishable from the baseline's by the kernel two-sample test "
        "(MMD permutation p-value above alpha divided by the number of embedding tests).", ("embedding",)),
    "prompts_match_golden": (
        "No system-prompt hash, tool-schema hash or template id that the golden baseline (or the week before) never "
        "had carries a share of the week's traffic at or above the threshold.",
        ("system_prompt", "tool_schema", "prompt_template")),
    "retrieval_stable": (
        "BM25 re-retrieval of the golden queries over the week's knowledge base still finds the documents it found "
        "when the golden set was published (mean overlap@k above the threshold), no document changed content "
        "under the same id, and few retrievals return document ids the baseline never saw.", ("retrieval", "kb_")),
    "golden_set_fresh": (
        "The golden set is not stale: the share of cases older than six months and the version's age are under "
        "their thresholds.", ("staleness", "version_age")),
    "safety_slice_covered": (
        "The share of the week's traffic with injection or policy signals did not rise significantly, the safety "
        "edge set's share of golden cases keeps up with it, and the safety edge set's pass rate is not 15+ points "
        "above the rolling set's safety cases.", ("safety",)),
    "no_score_inflation": (
        "The golden pass rate is not 15+ points above the rolling set's (contamination or overfitting), and it is "
        "not stuck at 90%+ while production failures do not fall (a stall).", ("score_inflation", "stall")),
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
    """The check a signal belongs to (by its name's prefix), or None."""
    return next((name for name, (_, prefixes) in CHECKS.items() if signal.startswith(prefixes)), None)


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
