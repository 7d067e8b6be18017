"""The drift report's thresholds and severities, with their defaults and the reasons for them.

Every threshold is a field of `DriftConfig`. Defaults are below, each with why; docs/drift.md
has the same table for people. Override them in a TOML file, `<data>/drift.toml` (or the file
EVALFLOW_DRIFT_CONFIG names), top level or under a `[drift]` table:

    intent_js_floor = 0.01          # care about bigger intent-mix moves only
    inflation_gap = 0.20

An unknown key, a value of the wrong type or out of range, or an ERROR threshold milder than its
WARN one is an error that names the key (a typo must not silently keep the default). Two
settings are also environment variables, because they are the ones a person changes for one
run: EVALFLOW_DRIFT_SEED and EVALFLOW_DRIFT_MIN_TRACES; the environment wins over the file.

The noisy signals (intent mix, embeddings, safety share, pass-rate gaps) alarm only when the
change is both larger than a floor a person cares about and unlikely under sampling noise at the
week's own sample size, so a small or partial week does not alarm from noise alone. The exact
signals (hashes, changed documents) have no noise: any real change above a share is an alarm.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalflow.lib.common.settings import SettingError, int_setting, text_setting
from evalflow.lib.snapshots.staleness import DUE_FOR_REVIEW_SHARE, STALE_AFTER_DAYS

CONFIG_ENV = "EVALFLOW_DRIFT_CONFIG"
CONFIG_FILE = "drift.toml"


class DriftConfigError(SettingError):
    """A drift configuration value that is unknown, of the wrong type or out of range."""


@dataclass(frozen=True)
class DriftConfig:
    # -- reproducibility ----------------------------------------------------------------------
    # Seeds every random draw (null resamples, embedding samples, permutations), combined with the
    # week and the signal, so a re-run of a week gives the same figures.
    seed: int = 0

    # -- traffic --------------------------------------------------------------------------------
    # Below this many traces with an intent (in the week or in its baseline) the intent mix and the
    # safety share are reported without an alarm: the multinomial null is an approximation that
    # needs a few counts per common intent, and a person cannot act on a mix of 50 traces.
    min_traces: int = 200

    # -- intent mix -----------------------------------------------------------------------------
    # The JS alarm threshold is max(intent_js_floor, the intent_null_quantile of JS between two
    # multinomial samples of the baseline mix at the week's and the baseline's effective sizes).
    # 0.999: with two baselines a week, about one stable week in 500 alarms from chance.
    intent_null_quantile: float = 0.999
    # Draws of the null; 5000 puts five draws beyond the 0.999 quantile (a stable estimate).
    intent_null_draws: int = 5000
    # Smallest JS (bits) worth an alarm whatever the sample size: on a week of a million traces
    # the null is ~1e-4 and every seasonal wiggle would be "significant". 0.005 is ~12% of the
    # simulator's planted shift (4 intents x3-8) done in full, which measures 0.042.
    intent_js_floor: float = 0.005
    # ERROR at this JS (bits), when it is also above the null: Evidently's default drift threshold
    # for categorical features (0.1), i.e. a move any fixed-threshold tool would call drift.
    intent_js_error: float = 0.1
    # Pseudo-count added to every intent of the union before KL (Lidstone smoothing): KL(week ||
    # baseline) is infinite when the week has an intent the baseline never saw; 0.5 is the
    # Jeffreys prior (Krichevsky-Trofimov estimator).
    kl_pseudocount: float = 0.5

    # -- embeddings -----------------------------------------------------------------------------
    # At most this many traces per side (one per session, seeded): the permutation test costs
    # O(n^2 * permutations), and at 500 per side a shift of a few percent of traffic shows.
    embedding_sample: int = 500
    # Fewer embedded traces than this on either side: no test.
    embedding_min: int = 50
    # Permutations of the MMD test; the smallest p-value is 1/(permutations + 1) (~0.0005), which
    # must be below the per-test alpha (0.001 with the defaults) for the test to be able to fire.
    embedding_permutations: int = 2000
    # Family-wise alpha over the report's embedding tests (golden and previous week): each test
    # uses embedding_alpha / number of tests (Bonferroni): 0.001 each, about one stable week in
    # 500 alarming from chance, like the intent mix.
    embedding_alpha: float = 0.002

    # -- prompt templates, system prompts, tool schemas (exact, no noise) -------------------------
    # Share of the week's traffic on hashes (or template ids) the baseline never had: WARN from the
    # first canary percent, ERROR once a quarter of the traffic runs a version the golden set never
    # saw.
    hash_new_share_warn: float = 0.01
    hash_new_share_error: float = 0.25
    # A value (hash, template id, document id) the baseline lacks counts as new only when a baseline
    # of its size would have missed it by chance with probability below this: (1 - share)^n. At
    # 7,000 baseline traces everything above 0.1% counts; at 200, only values above 3.4%.
    unseen_alpha: float = 0.001

    # -- retrieval corpus -----------------------------------------------------------------------
    retrieval_k: int = 5
    # Mean overlap@k of the golden queries' top-k (now vs recorded) below which to warn / error.
    # A stable knowledge base gives 1.0 (BM25 is deterministic over the same documents); documents
    # missing from a week's retrieved context move a few ranks, hence not 0.9.
    retrieval_overlap_warn: float = 0.7
    retrieval_overlap_error: float = 0.4
    # Fewer golden cases with a query and a recorded top-k than this: no alarm.
    retrieval_min_cases: int = 3
    # Documents whose content changed under the same id (exact): WARN from this many; ERROR when
    # one of them is in a golden case's recorded top-k (the case's expected answer may be wrong now).
    kb_changed_docs_warn: int = 1
    # Share of the week's retrievals that returned a document id the baseline never saw (new
    # documents, or the knowledge base re-issued under new ids): exact like the hashes. 5%: a
    # document retrieved that often is no rare page that happened not to be retrieved before.
    kb_new_share_warn: float = 0.05
    kb_new_share_error: float = 0.25

    # -- staleness ------------------------------------------------------------------------------
    # The six-month rule of docs/snapshots.md (lib/snapshots/staleness.py): a case whose source
    # trace is older than this tests what users asked then.
    stale_after_days: int = STALE_AFTER_DAYS  # 183
    # WARN when this share of the golden set's dated cases is stale (the snapshots' "due for
    # review" rule, 0.5); ERROR when nearly all are.
    stale_share_warn: float = DUE_FOR_REVIEW_SHARE  # 0.5
    stale_share_error: float = 0.9
    # WARN when the golden version is older than this (days): a set nobody promoted in six months
    # has had no new coverage while production moved.
    version_age_warn_days: int = 183

    # -- safety ---------------------------------------------------------------------------------
    # The week's share of traffic with injection or policy signals rose against the baseline:
    # alarm when it is at least ratio x the baseline's, at least min_diff above it, and the one-sided
    # two-proportion test (with the sessions' design effect) gives p below safety_alpha.
    safety_share_ratio: float = 1.5
    safety_share_min_diff: float = 0.005
    safety_alpha: float = 0.001

    # -- pass rates -----------------------------------------------------------------------------
    # Golden pass rate this much (15 points, the rule) above the rolling set's: a sign of
    # contamination or overfitting. Flagged only when both sides have pass_rate_min_cases cases
    # with verdicts and the one-sided two-proportion test gives p below inflation_alpha: at 30
    # cases a side a 15-point gap happens by chance one time in ten.
    inflation_gap: float = 0.15
    inflation_gap_error: float = 0.30
    inflation_alpha: float = 0.01
    pass_rate_min_cases: int = 20
    # The stall: golden pass rate >= stall_pass_rate in each of the last stall_versions versions,
    # while production's weekly failure rate did not fall by stall_min_drop (relative) since the
    # first of them was published.
    stall_pass_rate: float = 0.90
    stall_versions: int = 3
    stall_min_drop: float = 0.10

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# (low, high) inclusive bounds of each numeric field; None: unbounded on that side.
_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "min_traces": (1, None), "intent_null_quantile": (0.5, 0.999999), "intent_null_draws": (100, 1_000_000),
    "intent_js_floor": (0.0, 1.0), "intent_js_error": (0.0, 1.0), "kl_pseudocount": (1e-9, 100.0),
    "embedding_sample": (10, 100_000), "embedding_min": (2, 100_000), "embedding_permutations": (99, 1_000_000),
    "embedding_alpha": (1e-9, 0.5), "hash_new_share_warn": (0.0, 1.0),
    "unseen_alpha": (1e-12, 0.5), "hash_new_share_error": (0.0, 1.0),
    "retrieval_k": (1, 1000), "retrieval_overlap_warn": (0.0, 1.0), "retrieval_overlap_error": (0.0, 1.0),
    "retrieval_min_cases": (1, None), "kb_changed_docs_warn": (1, None),
    "kb_new_share_warn": (0.0, 1.0), "kb_new_share_error": (0.0, 1.0), "stale_after_days": (1, None),
    "stale_share_warn": (0.0, 1.0), "stale_share_error": (0.0, 1.0), "version_age_warn_days": (1, None),
    "safety_share_ratio": (1.0, None), "safety_share_min_diff": (0.0, 1.0), "safety_alpha": (1e-12, 0.5),
    "inflation_gap": (0.0, 1.0), "inflation_gap_error": (0.0, 1.0), "inflation_alpha": (1e-12, 1.0),
    "pass_rate_min_cases": (1, None), "stall_pass_rate": (0.0, 1.0), "stall_versions": (1, 1000),
    "stall_min_drop": (0.0, 1.0),
}


def _checked(name: str, value: Any, kind: type, where: str) -> Any:
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DriftConfigError(f"{where}: {name} must be a whole number, got {value!r}")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise DriftConfigError(f"{where}: {name} must be a number, got {value!r}")
        value = float(value)
    low, high = _BOUNDS.get(name, (None, None))
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = " and ".join(b for b in (f"at least {low:g}" if low is not None else "",
                                          f"at most {high:g}" if high is not None else "") if b)
        raise DriftConfigError(f"{where}: {name} must be {bounds}, got {value!r}")
    return value


def config_from_mapping(values: dict[str, Any], where: str = "drift configuration",
                        base: DriftConfig | None = None) -> DriftConfig:
    """`base` (default: the defaults) with `values` applied; DriftConfigError names a bad key."""
    base = base or DriftConfig()
    fields = {f.name: f for f in dataclasses.fields(DriftConfig)}
    changes: dict[str, Any] = {}
    for name, value in values.items():
        if name not in fields:
            raise DriftConfigError(f"{where}: unknown key {name!r} (the keys are in docs/drift.md)")
        kind = type(getattr(base, name))
        changes[name] = _checked(name, value, kind, where)
    config = dataclasses.replace(base, **changes)
    if config.hash_new_share_error < config.hash_new_share_warn:
        raise DriftConfigError(f"{where}: hash_new_share_error must not be below hash_new_share_warn")
    if config.kb_new_share_error < config.kb_new_share_warn:
        raise DriftConfigError(f"{where}: kb_new_share_error must not be below kb_new_share_warn")
    if config.stale_share_error < config.stale_share_warn:
        raise DriftConfigError(f"{where}: stale_share_error must not be below stale_share_warn")
    if config.inflation_gap_error < config.inflation_gap:
        raise DriftConfigError(f"{where}: inflation_gap_error must not be below inflation_gap")
    if config.retrieval_overlap_error > config.retrieval_overlap_warn:
        raise DriftConfigError(f"{where}: retrieval_overlap_error must not be above retrieval_overlap_warn")
    if 1 / (config.embedding_permutations + 1) > config.embedding_alpha / 2:
        raise DriftConfigError(f"{where}: embedding_permutations too few for embedding_alpha: the smallest p-value "
                               f"1/(permutations + 1) must be at most embedding_alpha / 2 (two tests)")
    if config.embedding_min > config.embedding_sample:
        raise DriftConfigError(f"{where}: embedding_min must not be above embedding_sample")
    return config


def config_path(data_dir: Path) -> Path:
    """The TOML file read: EVALFLOW_DRIFT_CONFIG, else <data>/drift.toml."""
    named = text_setting(CONFIG_ENV)
    return Path(named).expanduser() if named else Path(data_dir) / CONFIG_FILE


def load_drift_config(data_dir: Path) -> DriftConfig:
    """The defaults, overridden by the TOML file (config_path) when it exists, then by
    EVALFLOW_DRIFT_SEED and EVALFLOW_DRIFT_MIN_TRACES. A file EVALFLOW_DRIFT_CONFIG names that
    does not exist is an error; a missing <data>/drift.toml is not."""
    path = config_path(data_dir)
    config = DriftConfig()
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise DriftConfigError(f"{path}: cannot be read ({error.strerror or type(error).__name__})") from None
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise DriftConfigError(f"{path}: not TOML ({error})") from None
        if isinstance(data.get("drift"), dict):
            data = {**{k: v for k, v in data.items() if k != "drift"}, **data["drift"]}
        config = config_from_mapping(data, str(path))
    elif path.exists():
        raise DriftConfigError(f"{path} is not a file (the drift configuration is a TOML file)")
    elif text_setting(CONFIG_ENV):
        raise DriftConfigError(f"{CONFIG_ENV} names {path}, which does not exist")
    env: dict[str, Any] = {}
    if text_setting("EVALFLOW_DRIFT_SEED") is not None:
        env["seed"] = int_setting("EVALFLOW_DRIFT_SEED", 0)
    if text_setting("EVALFLOW_DRIFT_MIN_TRACES") is not None:
        env["min_traces"] = int_setting("EVALFLOW_DRIFT_MIN_TRACES", 200, low=1)
    return config_from_mapping(env, "environment", base=config) if env else config
