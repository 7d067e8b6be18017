"""The redaction resource: one tuned detector per process, and the pseudonym key."""

from pathlib import Path

import dagster as dg

from evalflow.lib.common.settings import text_setting
from evalflow.lib.redact.pseudonym import (
    KEY_ENV,
    OPERATORS_ENV,
    Pseudonymizer,
    load_key,
    parse_operators,
)


class RedactionResource(dg.ConfigurableResource):
    """Empty values mean: read the environment (EVALFLOW_PII_OPERATORS, and the detector
    settings of evalflow.lib.redact.config) or use the defaults."""

    operators: str = ""

    def redactor(self, data_dir: Path, log=None):

        from evalflow.lib.redact.traces import TraceRedactor

        key, source = load_key(data_dir, create=True)
        if source == "created" and log is not None:
            log.warning(f"created a local pseudonym key in {data_dir} (gitignored); "
                        f"set {KEY_ENV} to use your own")
        pseudonymizer = Pseudonymizer(key=key, operators=parse_operators(self.operators or text_setting(OPERATORS_ENV)))
        detector = _detector()
        return TraceRedactor(detector.detect_batch, pseudonymizer), detector.versions()


    def allow_list(self) -> tuple[str, ...]:
        from evalflow.lib.redact.config import detector_config_from_env

        return detector_config_from_env().allow_list


_DETECTORS: dict = {}


def _detector():
    # Loading spaCy and building the recognizers takes seconds: once per process and config.
    from evalflow.lib.redact.config import detector_config_from_env
    from evalflow.lib.redact.engine import PiiDetector

    config = detector_config_from_env()
    if config not in _DETECTORS:
        _DETECTORS[config] = PiiDetector(config)
    return _DETECTORS[config]


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"redaction": RedactionResource()})
