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
  match (an email needs an '@', an SSN nine digits, ...: preconditions.py). spaCy loads only its
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

import threading
import time
from collections.abc import Sequence
from contextlib import nullcontext

from evalflow.lib.redact.config import DetectorConfig
from evalflow.lib.redact.detection import Detection, resolve_overlaps
from evalflow.lib.redact.nlp import load_spacy, numpy_gemm_for_ner
from evalflow.lib.redact.preconditions import LETTER, digit_count, precondition
from evalflow.lib.redact.presidio_internals import (
    LazyArtifacts,
    PreloadedSpacyEngine,
    context_enhancer,
)
from evalflow.lib.redact.text_prep import (
    chunks,
    context_from_path,
    unescaped_view,
    worth_scanning,
)


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
        self._nlp_engine = PreloadedSpacyEngine(self.nlp, config.model_name)
        recognizers = build_recognizers(config, self.entities, self.lexicon)
        registry = RecognizerRegistry(recognizers=recognizers, supported_languages=["en"])
        self._enhancer = context_enhancer(config.context_suffix_count)
        # The engine Presidio users know, for ad-hoc use; detect_batch runs the same recognizers,
        # enhancer and filters itself (see _analyze_texts / _finish), once per distinct text.
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
        self._recognizers = [(r, precondition(r), getattr(r, "name", "") == "EvalflowNameRecognizer")
                             for r in recognizers]
        self._entity_list = list(self.entities)
        self._paths: dict[str, tuple[str, ...]] = {}  # field path -> context words
        self._text_cache = _BoundedCache(config.cache_texts, config.cache_chars)
        self._ner_cache = _BoundedCache(config.cache_texts, config.cache_chars)
        self._blas_one_thread = numpy_gemm_for_ner(self.nlp) if config.ner_numpy_gemm and config.n_process == 1 \
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
            if not worth_scanning(text):
                continue
            for offset, chunk in chunks(text, cfg.max_chunk_chars, cfg.chunk_overlap):
                if worth_scanning(chunk):
                    pieces.append((text, offset, unescaped_view(chunk)))
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
        digits = digit_count(chunk)
        letter = LETTER.search(chunk) is not None
        artifacts = LazyArtifacts(chunk, entities, variant_entities, self.nlp, self._nlp_engine)
        common: list = []
        plain: list = []
        hinted: list | None = None
        entity_list = self._entity_list
        for recognizer, test, is_names in self._recognizers:
            if test is not None and not test(chunk, digits, letter):
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
        return resolve_overlaps(found) if found else []

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
            with self._blas_one_thread() if self._blas_one_thread is not None else nullcontext():
                docs = self.nlp.pipe(todo, batch_size=cfg.batch_size, n_process=n_process)
                for window, doc in zip(todo, docs):
                    spans = tuple((e.start_char, e.end_char, e.label_) for e in doc.ents)
                    found[window] = spans
                    cache.put(window, spans)
        for k, offset, is_variant, window in jobs:
            target = variant_ents[k] if is_variant else ents[k]
            target.extend((s + offset, e + offset, label) for s, e, label in found[window])
        return ents, variant_ents


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
