"""The snapshot stage's operations over the lake: promote the golden set, build the rolling set,
diff two versions, export one. Each reads what it needs from the store, calls the pure logic
(promotions.py, rolling.py, diff.py, export.py) and publishes through store.publish."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Mapping, Sequence

from evalflow.lib.snapshots import store
from evalflow.lib.snapshots.diff import diff_cases
from evalflow.lib.snapshots.export import ExportResult, write_export
from evalflow.lib.snapshots.manifest import Provenance
from evalflow.lib.snapshots.promotions import GoldenState, Promotion, PromotionResult, apply_promotion
from evalflow.lib.snapshots.refs import GOLDEN, ROLLING, DatasetRef, parse_ref
from evalflow.lib.snapshots.rolling import RollingPlan, RollingResult, rolling_version


def golden_state(data_dir: Path) -> GoldenState | None:
    """The latest golden version (verified), or None before the first."""
    latest = store.latest_version(data_dir, GOLDEN)
    if latest is None:
        return None
    ref = DatasetRef(GOLDEN, latest)
    manifest = store.read_manifest(data_dir, ref)
    return GoldenState(version=latest, cases=store.read_cases(data_dir, ref), rubrics=manifest.get("rubrics") or {})


def plan_promotion(data_dir: Path, promotion: Promotion,
                   available: Sequence[Mapping[str, Any]]) -> PromotionResult:
    """What `promote` would publish (nothing is written): validates the promotion against the
    latest golden version and the available cases."""
    by_id = {c["case_id"]: c for c in available}
    return apply_promotion(promotion, golden_state(data_dir), by_id, store.case_history(data_dir, GOLDEN))


def promote(data_dir: Path, promotion: Promotion, available: Sequence[Mapping[str, Any]],
            provenance: Provenance | None = None) -> tuple[PromotionResult, store.Published]:
    """Apply `promotion` and publish the next golden version (its changelog is the commit message)."""
    result = plan_promotion(data_dir, promotion, available)
    published = store.publish(data_dir, result.ref, result.cases, author=promotion.author, message=promotion.message,
                              commit_message=result.changelog_text, provenance=provenance,
                              sampling_plan=result.sampling_plan, parent=result.parent, changelog=result.changelog,
                              rubrics=result.rubrics)
    return result, published


def publish_rolling(data_dir: Path, day: date, cases: Sequence[Mapping[str, Any]], plan: RollingPlan,
                    provenance: Provenance | None = None,
                    author: str = "evalflow") -> tuple[RollingResult, store.Published]:
    """Select and publish `rolling@<day>` (see rolling.py for the rule)."""
    first_seen = {cid: ref for cid, (ref, _) in store.case_history(data_dir, ROLLING).items()}
    result = rolling_version(day, cases, plan, first_seen=first_seen)
    window = result.sampling_plan["window"]
    message = (f"rolling set for {window[0]}..{window[1]}: {len(result.cases)} of "
               f"{result.sampling_plan['eligible']} cases")
    strata = "\n".join(f"  {s}: {v['selected']} of {v['available']}" for s, v in result.sampling_plan["strata"].items())
    published = store.publish(data_dir, result.ref, result.cases, author=author, message=message,
                              commit_message=f"{result.ref}: {message}\nStrata (intent|slice tags):\n{strata}",
                              provenance=provenance, sampling_plan=result.sampling_plan)
    return result, published


def diff(data_dir: Path, a: DatasetRef | str, b: DatasetRef | str) -> dict[str, Any]:
    """Cases added and removed, labels changed (old/new), rubric changes from version a to b."""
    ref_a = a if isinstance(a, DatasetRef) else parse_ref(a)
    ref_b = b if isinstance(b, DatasetRef) else parse_ref(b)
    manifest_a, manifest_b = store.read_manifest(data_dir, ref_a), store.read_manifest(data_dir, ref_b)
    return diff_cases(store.read_cases(data_dir, ref_a), store.read_cases(data_dir, ref_b),
                      manifest_a.get("rubrics"), manifest_b.get("rubrics"), str(ref_a), str(ref_b))


def export(data_dir: Path, ref: DatasetRef | str, out_dir: Path | None = None, variant: str = "all") -> ExportResult:
    """Write the (verified) version under `<out_dir>/<name>/<version>/` (default `<data>/exports`):
    `all.*` with the holdout, `dev.*` without it (export.py)."""
    ref = ref if isinstance(ref, DatasetRef) else parse_ref(ref)
    cases = store.read_cases(data_dir, ref)
    return write_export(ref, cases, store.read_manifest(data_dir, ref), out_dir or Path(data_dir) / "exports", variant)
