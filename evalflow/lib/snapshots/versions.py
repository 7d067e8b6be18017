"""The snapshot stage's operations over the lake: promote the golden set, build the rolling set,
diff two versions, export one. Each reads what it needs from the store, calls the pure logic
(promotions.py, rolling.py, diff.py, export.py) and publishes through store.publish."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from evalflow.lib.snapshots import store
from evalflow.lib.snapshots.diff import diff_cases
from evalflow.lib.snapshots.export import ExportResult, write_export
from evalflow.lib.snapshots.manifest import Provenance
from evalflow.lib.snapshots.promotions import (
    GoldenState,
    Promotion,
    PromotionError,
    PromotionResult,
    apply_promotion,
)
from evalflow.lib.snapshots.refs import GOLDEN, ROLLING, DatasetRef, parse_ref
from evalflow.lib.snapshots.rolling import RollingPlan, RollingResult, rolling_version


def golden_state(data_dir: Path) -> GoldenState | None:
    """The latest golden version (verified), or None before the first."""
    with store.reading(data_dir) as reader:
        return _golden_state(reader)


def _golden_state(reader: store.Reader) -> GoldenState | None:
    latest = reader.latest(GOLDEN)
    if latest is None:
        return None
    ref = DatasetRef(GOLDEN, latest)
    return GoldenState(version=latest, cases=reader.cases(ref), rubrics=reader.manifest(ref).get("rubrics") or {})


def plan_promotion(data_dir: Path, promotion: Promotion,
                   available: Sequence[Mapping[str, Any]]) -> PromotionResult:
    """What `promote` would publish (nothing is written): validates the promotion against the
    latest golden version (verified first) and the available cases."""
    by_id = {c["case_id"]: c for c in available}
    with store.reading(data_dir) as reader:
        if promotion.source_sha256:
            applied = _applied(reader).get(promotion.source_sha256)
            if applied:
                raise PromotionError([f"this promotion file was applied already: {applied}"], promotion.source)
        return apply_promotion(promotion, _golden_state(reader), by_id, reader.history(GOLDEN))


def _applied(reader: store.Reader) -> dict[str, str]:
    out = {}
    for info in reader.versions(GOLDEN):
        plan = reader.manifest(DatasetRef(GOLDEN, info.version)).get("sampling_plan") or {}
        if plan.get("source_sha256"):
            out.setdefault(plan["source_sha256"], info.ref)
    return out


def promotions_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "promotions"


def pending_promotions(data_dir: Path) -> list[Path]:
    """The promotion files in `<data>/promotions/` (*.toml, in name order) that no golden version
    was made from (recognised by the sha256 of the file's bytes)."""
    files = sorted(promotions_dir(data_dir).glob("*.toml"))
    with store.reading(data_dir) as reader:
        applied = _applied(reader)
    return [f for f in files if hashlib.sha256(f.read_bytes()).hexdigest() not in applied]


def promote(data_dir: Path, promotion: Promotion, available: Sequence[Mapping[str, Any]],
            provenance: Provenance | None = None,
            baseline: Callable[[list[dict[str, Any]]], Mapping[str, Any]] | None = None,
            ) -> tuple[PromotionResult, store.Published]:
    """Apply `promotion` and publish the next golden version (its changelog is the commit message).
    `baseline(cases)` gives the production traffic the version is drawn from, recorded in its
    manifest as `production_baseline` (the drift report's reference)."""
    result = plan_promotion(data_dir, promotion, available)
    published = store.publish(data_dir, result.ref, result.cases, author=promotion.author, message=promotion.message,
                              commit_message=result.changelog_text, provenance=provenance,
                              sampling_plan=result.sampling_plan, parent=result.parent, changelog=result.changelog,
                              rubrics=result.rubrics,
                              production_baseline=baseline(list(result.cases)) if baseline else None)
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
    """Cases added and removed, labels changed (old/new), rubric changes from version a to b
    (both verified first)."""
    ref_a = a if isinstance(a, DatasetRef) else parse_ref(a)
    ref_b = b if isinstance(b, DatasetRef) else parse_ref(b)
    with store.reading(data_dir) as reader:
        return diff_cases(reader.cases(ref_a), reader.cases(ref_b), reader.manifest(ref_a).get("rubrics"),
                          reader.manifest(ref_b).get("rubrics"), str(ref_a), str(ref_b))


def export(data_dir: Path, ref: DatasetRef | str, out_dir: Path | None = None, variant: str = "all") -> ExportResult:
    """Write the (verified) version under `<out_dir>/<name>/<version>/` (default `<data>/exports`):
    `all.*` with the holdout, `dev.*` without it (export.py)."""
    ref = ref if isinstance(ref, DatasetRef) else parse_ref(ref)
    with store.reading(data_dir) as reader:
        cases, manifest = reader.cases(ref), reader.manifest(ref)
    return write_export(ref, cases, manifest, out_dir or Path(data_dir) / "exports", variant)
