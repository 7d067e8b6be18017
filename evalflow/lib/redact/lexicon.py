"""Is a word an ordinary English word? The signal that tells names from capitalised prose.

spaCy's small model misses names in odd letter cases and tags many unfamiliar names as ORG or
GPE. What generalises across name origins is that most name tokens (Funmilayo, Okonkwo, Pérez,
Venkataraman) are not English dictionary words, while nearly all capitalised words that are not
PII (sentence starts, headings, product words) are. The dictionary is the WordNet lemma index
that ships inside the spaCy model (its lemmatizer lookups), plus spaCy's stop words: nothing is
downloaded and no name list is used. Some names are also words (Grace, Brown, Will); for those
the detector relies on the model, on context words, or on a neighbouring unfamiliar token.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

logger = logging.getLogger(__name__)

# Words that end an organisation's name: a capitalised run holding one is not a person.
ORG_WORDS = frozenset("""
inc inc. ltd ltd. llc plc corp corp. corporation co co. company companies group holdings bank
banks store stores software consulting consultants services service solutions technologies
technology systems partners associates ag gmbh sa nv bv oy ab asa spa srl sarl kk pty limited
university college school academy hospital clinic club foundation institute institution
airlines airways motors pharmaceuticals pharma industries international enterprises capital
fund trust insurance labs lab studio studios media network networks agency council ministry
department office committee association society church museum library hotel restaurant cafe
airport station mall market markets center centre federal national
""".split())

# Tokens that introduce or accompany a name but are not part of it.
NAME_TITLES = frozenset("""
mr mr. mrs mrs. ms ms. miss mx mx. dr dr. prof prof. sir madam dame lord lady sr sr. jr jr.
""".split())

# Lower-case particles that can sit inside a multi-word name or place.
NAME_PARTICLES = frozenset("""
de del della der den di da das do dos du la le van von vom zu al el bin bint ibn abu ben ter
""".split())

# Capitalised words that are common in support traffic and never a name on their own.
NEVER_NAMES = frozenset("""
hi hello hey dear thanks thank regards cheers customer client user agent support team admin
sir madam please ok okay yes no bot assistant name account card order ticket transfer payment
iban swift bic ssn pin otp sms pdf faq api id url email e-mail phone mobile fax address
monday tuesday wednesday thursday friday saturday sunday january february march april may june
july august september october november december today tomorrow yesterday
""".split())


@lru_cache(maxsize=4)
def _wordnet(model_path: str | None) -> frozenset[str]:
    return frozenset(w for words in _wordnet_by_pos(model_path, True).values() for w in words)


@lru_cache(maxsize=8)
def _wordnet_by_pos(model_path: str | None, with_exceptions: bool = False) -> dict[str, frozenset[str]]:
    """WordNet lemmas by part of speech; with the irregular forms (lemma_exc) when asked, which
    are right for "is this a word" but noisy for "which part of speech" ("oliver" as an adj)."""
    by_pos: dict[str, set[str]] = {"noun": set(), "verb": set(), "adj": set(), "adv": set()}
    if model_path:
        lookups_dir = Path(model_path) / "lemmatizer" / "lookups"
        if (lookups_dir / "lookups.bin").exists():
            from spacy.lookups import Lookups

            lookups = Lookups().from_disk(lookups_dir)
            for table_name in ("lemma_index", "lemma_exc") if with_exceptions else ("lemma_index",):
                if lookups.has_table(table_name):
                    table = lookups.get_table(table_name)
                    for pos in ("noun", "verb", "adj", "adv"):
                        try:
                            entry = table[pos]
                        except KeyError:
                            continue
                        by_pos[pos].update(entry if table_name == "lemma_index" else entry.keys())
    if not any(by_pos.values()):
        logger.warning("no lemma lookups in the spaCy model at %s: name detection relies on NER "
                       "and context only", model_path)
    return {pos: frozenset(w for w in words if "_" not in w) for pos, words in by_pos.items()}


class Lexicon:
    """Common-word membership with light inflection handling (plurals, -ed, -ing, -er, -ly)."""

    def __init__(self, model_path: str | None):
        from spacy.lang.en.stop_words import STOP_WORDS

        self.words = _wordnet(model_path)
        by_pos = _wordnet_by_pos(model_path)
        self._not_nouns = by_pos["verb"] | by_pos["adj"] | by_pos["adv"]
        self._verbs = by_pos["verb"]
        self._nouns = by_pos["noun"]
        self.stop_words = frozenset(STOP_WORDS)
        self._cache: dict[str, bool] = {}

    def is_stop(self, word: str) -> bool:
        return word.lower().replace("’", "'") in self.stop_words

    def is_common(self, word: str) -> bool:
        """True for a dictionary word (or its inflection) or a stop word; False for the unfamiliar."""
        w = word.lower().replace("’", "'").strip(".")
        cached = self._cache.get(w)
        if cached is not None:
            return cached
        result = self._lookup(w)
        if len(self._cache) < 200_000:
            self._cache[w] = result
        return result

    def name_compatible(self, word: str) -> bool:
        """Unfamiliar, or a dictionary word used only as a noun (smith, walker, fang), not a
        verb, adjective or adverb (locked, upset, really): the lower-case words a name can be."""
        w = word.lower().strip(".")
        if not self.is_common(w):
            return True
        return w not in self._not_nouns and w not in self.stop_words and w not in NEVER_NAMES

    def is_verb_form(self, word: str) -> bool:
        """A past tense of a dictionary verb (shouted), or a third-person form of one that is not
        also a plural noun (writes, but not cards or transfers)."""
        w = word.lower()
        for suffix, repl in (("ied", "y"), ("ed", ""), ("ed", "e"), ("es", ""), ("s", ""), ("ies", "y")):
            if w.endswith(suffix) and len(w) - len(suffix) >= 2:
                stem = w[: len(w) - len(suffix)] + repl
                is_verb = stem in self._verbs or (len(stem) > 3 and stem[-1] == stem[-2]
                                                  and stem[:-1] in self._verbs)
                if is_verb and (suffix.endswith("d") or stem not in self._nouns):
                    return True
        return False

    def _lookup(self, w: str) -> bool:
        words = self.words
        if w in words or w in self.stop_words or w in NEVER_NAMES:
            return True
        if "'" in w:
            head = w.split("'", 1)[0]
            return head in words or head in self.stop_words
        candidates = []
        for suffix, repl in (("ies", "y"), ("es", ""), ("s", ""), ("ied", "y"), ("ed", ""),
                             ("ed", "e"), ("ing", ""), ("ing", "e"), ("er", ""), ("er", "e"),
                             ("ers", ""), ("ly", ""), ("est", ""), ("ness", ""), ("ment", ""),
                             ("ation", "e"), ("ation", ""), ("ful", "")):
            if w.endswith(suffix) and len(w) - len(suffix) >= 3:
                candidates.append(w[: len(w) - len(suffix)] + repl)
        for c in candidates:
            if c in words:
                return True
            # doubled final consonant: stopped -> stop, running -> run
            if len(c) >= 4 and c[-1] == c[-2] and c[:-1] in words:
                return True
        if "-" in w:
            return all(part in words or part in self.stop_words for part in w.split("-") if part)
        return False
