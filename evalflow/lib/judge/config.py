"""The judge's settings (the judge section of docs/configuration.md), each read through
lib/common/settings.py and checked against its range; a bad value raises SettingError naming
the variable.

Where the judge is (base URL, model, key) is needed only when something is sent: `endpoint()`
raises MissingJudgeSetting naming the first variable that is unset, while
`validate_judge_settings()` checks the rest at start-up without requiring an endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from evalflow.lib.common.settings import SettingError, float_setting, int_setting, text_setting

BASE_URL_ENV = "EVALFLOW_JUDGE_BASE_URL"
MODEL_ENV = "EVALFLOW_JUDGE_MODEL"
API_KEY_ENV = "EVALFLOW_JUDGE_API_KEY"
PROMPTS_DIR_ENV = "EVALFLOW_JUDGE_PROMPTS_DIR"


class MissingJudgeSetting(SettingError):
    """EVALFLOW_JUDGE_BASE_URL or EVALFLOW_JUDGE_MODEL is unset; the message names it."""


@dataclass(frozen=True)
class ClientSettings:
    base_url: str
    model: str
    # repr=False: a config printed in a log or a traceback never shows the key.
    api_key: str | None = field(default=None, repr=False)
    concurrency: int = 4
    timeout_s: float = 60.0
    max_retries: int = 4
    # First backoff delay; doubles per retry (with jitter) up to backoff_max_s.
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0


@dataclass(frozen=True)
class CalibrationThresholds:
    min_agreement: float = 0.85
    min_kappa: float = 0.6
    min_test_cases: int = 20


def endpoint() -> tuple[str, str, str | None]:
    """(base URL, model, API key or None) from the environment."""
    base_url = text_setting(BASE_URL_ENV)
    if base_url is None:
        raise MissingJudgeSetting(f"{BASE_URL_ENV} is not set: the judge's OpenAI-compatible endpoint, "
                                  "e.g. https://api.openai.com/v1 (requests go to {base}/chat/completions)")
    if not base_url.startswith(("http://", "https://")):
        raise SettingError(f"{BASE_URL_ENV} must start with http:// or https://, got {base_url!r}")
    model = text_setting(MODEL_ENV)
    if model is None:
        raise MissingJudgeSetting(f"{MODEL_ENV} is not set: the judge model's name at {BASE_URL_ENV}")
    # Taken as it is (a secret is never stripped or echoed); an empty value means no key.
    return base_url.rstrip("/"), model, text_setting(API_KEY_ENV, strip=False)


def client_settings() -> ClientSettings:
    base_url, model, api_key = endpoint()
    return ClientSettings(base_url=base_url, model=model, api_key=api_key, **transport_settings())


def transport_settings() -> dict:
    return {
        "concurrency": int_setting("EVALFLOW_JUDGE_CONCURRENCY", 4, low=1, high=64),
        "timeout_s": float_setting("EVALFLOW_JUDGE_TIMEOUT_S", 60.0, low=1.0, high=3600.0),
        "max_retries": int_setting("EVALFLOW_JUDGE_MAX_RETRIES", 4, low=0, high=10),
    }


def calibration_thresholds() -> CalibrationThresholds:
    return CalibrationThresholds(
        min_agreement=float_setting("EVALFLOW_JUDGE_MIN_AGREEMENT", 0.85, low=0.0, high=1.0),
        # Kappa is at most 1; below 0 a judge agrees less than chance would.
        min_kappa=float_setting("EVALFLOW_JUDGE_MIN_KAPPA", 0.6, low=-1.0, high=1.0),
        min_test_cases=int_setting("EVALFLOW_JUDGE_MIN_TEST_CASES", 20, low=1),
    )


def max_flip_rate() -> float:
    """The largest order-flip rate at which the judge may compare two answers (pairwise)."""
    return float_setting("EVALFLOW_JUDGE_MAX_FLIP_RATE", 0.10, low=0.0, high=1.0)


def prompts_dir(data_dir: Path) -> Path:
    """The prompt folder the pipeline reads (EVALFLOW_JUDGE_PROMPTS_DIR, default <data>/judge/prompts)."""
    override = text_setting(PROMPTS_DIR_ENV)
    return Path(override).expanduser().resolve() if override else data_dir / "judge" / "prompts"


def validate_judge_settings() -> None:
    """Every judge setting but the endpoint, checked (for validate_environment at start-up)."""
    transport_settings()
    calibration_thresholds()
    max_flip_rate()
    base_url = text_setting(BASE_URL_ENV)
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise SettingError(f"{BASE_URL_ENV} must start with http:// or https://, got {base_url!r}")
