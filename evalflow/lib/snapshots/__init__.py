"""Versioned eval datasets: the golden set (`golden@vN`, changed only by promotions, with a 20%
holdout by case id) and the rolling drift set (`rolling@YYYY-MM-DD`), stored as DuckLake
snapshots in the lake with a manifest each, verified on read, diffed and exported.

- refs.py: version references; content.py: the canonical serialisation and hash, case checks;
  manifest.py: the manifest and provenance; promotions.py: promotion files, validation,
  changelog; rolling.py: the stratified rolling selection; staleness.py: the six-month rule;
  diff.py; export.py; store.py: the lake tables `dataset_versions` and `dataset_cases`;
  versions.py: the operations over the store.
"""

from evalflow.lib.snapshots.content import (
    SERIALISATION,
    InvalidCase,
    SplitChanged,
    canonical_case,
    case_sha256,
    content_sha256,
)
from evalflow.lib.snapshots.manifest import Provenance, collect_provenance
from evalflow.lib.snapshots.promotions import (
    Promotion,
    PromotionError,
    apply_promotion,
    changelog_text,
    load_promotion,
    promotion_from_dict,
    promotion_to_toml,
    validate_promotion,
)
from evalflow.lib.snapshots.refs import GOLDEN, ROLLING, BadReference, DatasetRef, parse_ref
from evalflow.lib.snapshots.rolling import RollingPlan, rolling_version
from evalflow.lib.snapshots.staleness import STALE_AFTER_DAYS, Staleness, staleness
from evalflow.lib.snapshots.store import (
    SnapshotError,
    VersionExists,
    VersionInfo,
    VersionNotFound,
    VersionNotVerified,
    latest_version,
    list_versions,
    publish,
    read_cases,
    read_manifest,
    staleness_of,
    trace_ids,
    verify,
)
from evalflow.lib.snapshots.versions import (
    diff,
    export,
    golden_state,
    pending_promotions,
    plan_promotion,
    promote,
    promotions_dir,
    publish_rolling,
)

__all__ = [
    "BadReference", "DatasetRef", "GOLDEN", "InvalidCase", "Promotion", "PromotionError", "Provenance", "ROLLING",
    "RollingPlan", "SERIALISATION", "STALE_AFTER_DAYS", "SnapshotError", "SplitChanged", "Staleness",
    "VersionExists", "VersionInfo", "VersionNotFound", "VersionNotVerified", "apply_promotion", "canonical_case",
    "case_sha256", "changelog_text", "collect_provenance", "content_sha256", "diff", "export", "golden_state",
    "latest_version", "list_versions", "load_promotion", "parse_ref", "pending_promotions", "plan_promotion",
    "promote", "promotion_from_dict", "promotion_to_toml", "promotions_dir", "publish", "publish_rolling",
    "read_cases", "read_manifest", "rolling_version", "staleness", "staleness_of", "trace_ids",
    "validate_promotion", "verify",
]
