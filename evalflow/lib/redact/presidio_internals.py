"""Subclasses of Presidio's internals that the detector (engine.py) runs on.

    PreloadedSpacyEngine  Presidio's SpacyNlpEngine around an already loaded spaCy pipeline
    context_enhancer      Presidio's LemmaContextAwareEnhancer, skipped when there is nothing to enhance
    LazyArtifacts         Presidio's NlpArtifacts, built only as far as a recognizer asks

THIS MODULE DEPENDS ON THE EXACT PRESIDIO PIN in pyproject.toml: presidio-analyzer==2.2.366.
These classes override or reach into attributes and methods that are not Presidio's public API,
and engine.py re-implements `AnalyzerEngine.analyze` on top of them. If the pin moves, check
each of these against the new version (tests: test_redact_detect.py, in particular
test_results_match_presidio_analyze_per_text_and_field):

- NlpArtifacts: the attributes its users read (entities, tokens, tokens_indices, lemmas,
  keywords, scores, nlp_engine) and the static `set_keywords(nlp_engine, lemmas, language)`.
  LazyArtifacts never calls NlpArtifacts.__init__; an attribute that a new version adds and
  reads elsewhere would be missing (AttributeError), and one that changes shape (tokens as Token
  objects, not strings) gives wrong context words or a crash.
- LemmaContextAwareEnhancer: `enhance_using_context(text, raw_results, nlp_artifacts,
  recognizers, context)`, and what engine.py calls and reads directly: the private
  `_extract_surrounding_words(nlp_artifacts=, word=, start=)` and
  `_find_supportive_word_in_context(context_list, recognizer_context, mode)`,
  `context_similarity_factor`, `min_score_with_context_similarity`, `context_matching_mode`,
  `MAX_SCORE`, and `RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY`. engine.py applies the
  enhancement itself (score + factor, at least the floor, at most MAX_SCORE): a new rule there
  would silently give scores other than AnalyzerEngine.analyze's.
- SpacyNlpEngine: `__init__(models=[{"lang_code", "model_name"}])`, its `nlp` dict by language,
  `load()`, `is_stopword(word, language)`, `is_punct(word, language)`.
- Also relied on elsewhere, with the same pin: `EntityRecognizer.remove_duplicates` (engine.py's
  de-duplication, as AnalyzerEngine.analyze does it), `PatternRecognizer.analyze` being the
  stock one and `pattern_recognizer.REGEX_TIMEOUT_SECONDS` (preconditions.py compiles the
  patterns as PatternRecognizer does), and the module-level `tldextract` name in Presidio's
  email recognizer (offline.py).

Presidio is imported only when one of these is first built, never at import time.
"""

from __future__ import annotations


class PreloadedSpacyEngine:
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


def context_enhancer(suffix_count: int):
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

        def __init__(self, chunk, entities, variant_entities, nlp, nlp_engine):  # everything is built lazily
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


def LazyArtifacts(chunk, entities, variant_entities, nlp, nlp_engine):  # a function: the class is built on first use
    """NlpArtifacts of one chunk: `entities` are NER's (start, end, label) on it,
    `variant_entities` those on its case-normalised copy (read by the name recognizer)."""
    global _LAZY_ARTIFACTS
    if _LAZY_ARTIFACTS is None:
        _LAZY_ARTIFACTS = _lazy_artifacts_class()
    return _LAZY_ARTIFACTS(chunk, entities, variant_entities, nlp, nlp_engine)
