"""Person names (and places) in any letter case, from spaCy's entities plus text evidence.

spaCy's small English model finds Title-case English names but misses all-caps and lower-case
names and tags many unfamiliar names as ORG or GPE ("Funmilayo Adeyemi" -> ORG). The signals
combined here are general, not lists of names (none is shipped or downloaded):

- the word itself: most name words (Funmilayo, Okonkwo, Pérez) are not English dictionary
  words, while capitalised words that are not PII nearly all are (`lexicon.Lexicon`, built from
  the WordNet index inside the spaCy model);
- spaCy's entities: PERSON (also from a copy with all-caps runs in Title case), and ORG/GPE/...
  entities that are name-shaped (capitalised, no organisation word such as Inc or Bank, one
  unfamiliar word);
- position and neighbours: triggers in any case ("my name is", "Mr", "hi", "this is",
  "transfer ... to", "my landlord"), a vocative (", Felix."), a possessive (Sumaya's), a
  sentence-initial unfamiliar word followed by a verb ("Leiva began"), a speaker label
  ("Eve: ..."), a list in which most items are names, a later mention of a found name;
- structure: the value of a name-like key in JSON or key=value text ("beneficiary_name":
  "andrés hernández"), a whole text that is only a name with a name-like field as context;
- negative evidence: shop positions ("payment to Zara", "the Netflix charge"), brands before a
  noun ("Northwind cards"), identifiers (TCK-5677, ToolExecutionError), determiners.

GPE/LOC/FAC entities that are not names, and capitalised words after "in", "from", "moved to"
and the like, become LOCATION when that entity is wanted.
"""

from __future__ import annotations

import re
from typing import Sequence

from presidio_analyzer import AnalysisExplanation, LocalRecognizer, RecognizerResult

from evalflow.lib.redact.lexicon import NAME_PARTICLES, NAME_TITLES, NEVER_NAMES, ORG_WORDS, Lexicon

_TOKEN = re.compile(r"[^\W\d_](?:[^\W\d_]|['’\-](?=[^\W\d_]))*(?:(?<=\b[^\W\d_])\.)?")
_CAP_RUN = re.compile(
    r"[^\W\d_a-z][^\W\d_]*(?:['’\-][^\W\d_]+)*(?:(?<=\b[^\W\d_])\.)?(?:[ \t]+(?:[^\W\d_a-z][^\W\d_]*"
    r"(?:['’\-][^\W\d_]+)*(?:(?<=\b[^\W\d_])\.)?|"
    + "|".join(sorted(NAME_PARTICLES)) + r")){0,4}")
_ALLCAPS_RUN = re.compile(r"\b[^\W\d_a-z]{2,}(?:[ \t]+[^\W\d_a-z]{2,})+\b")

_STRONG_TRIGGER = re.compile(
    r"(?:\bmy\s+name\s+is|\bname\s+is|\bname's|\bnames?\s*[:=?]|\bcall\s+me|"
    r"\b(?:mr|mrs|ms|mx|dr|prof)\b\.?|\bmiss|\bdear|\bsigned|\bregards,?|\bsincerely,?|"
    r"\bunder\s+the\s+name(?:\s+of)?|\bin\s+the\s+name\s+of|\baccount\s+holder|\bcard\s*holder|"
    r"\bbeneficiary|\bon\s+behalf\s+of|\battn:?|\battention:?|\bpayee|\brecipient)"
    r"[\s,:]+$", re.IGNORECASE)
# Words that address or introduce a person: a capitalised word after them is taken as a name.
_PERSONAL_TRIGGER = re.compile(
    r"(?:\bi\s+am|\bi'm|\bim|\bthis\s+is|\bit's|\bit\s+is|\bhi|\bhello|\bhey|\bthanks|"
    r"\bthank\s+you|\bof\s+course|\bdone|\bupdated|\bsorry|\bsure|\bok|\bokay|\bwelcome|\bbye|"
    r"\bcheers|\bcustomer|\bclient|\bmother|\bfather|\bmom|\bmum|\bdad|\bwife|\bhusband|\bson|"
    r"\bdaughter|\bbrother|\bsister|\bfriend|\blandlord|\blandlady|\bcolleague|\bpartner|\btold|"
    r"\bsaid|\bsays|\basked|\bmet|\bmeet|\bcontact|"
    r"\btransfer(?:red|ring)?\b(?:[^.!?\n]|\.(?=\d)){0,30}\bto|\bsen[dt]\s+(?:money\s+)?to|"
    r"\bwire\s+to|\bpay|\bpaid|\bassistant\s+to|\bspeak\s+to|\btalk\s+to|\bguardian|\badd|"
    r"\bnamed(?:\s+(?:him|her|them))?|\bcalled(?:\s+(?:him|her|them))?|\bkid|\bchild|\bbaby|"
    r"\bgrand(?:son|daughter|mother|father|ma|pa)|\baunt|\buncle|"
    r"\bcousin|\bnephew|\bniece|\bboss|\bmanager|\bneighbou?r|\broommate|\btenant|\bfianc[ée]e?)"
    r"[\s,:]+$", re.IGNORECASE)
# Prepositions: a name may follow, but so may a shop or a product ("payment to Netflix").
_PREP_TRIGGER = re.compile(r"(?:\bto|\bfor|\bfrom|\bwith|\bby|\band)[\s,:]+$", re.IGNORECASE)
_LOCATION_TRIGGER = re.compile(
    r"(?:\bin|\bnear|\bbased\s+in|\blives?\s+in|\bliving\s+in|\bborn\s+in|\bgrew\s+up\s+in|"
    r"\blocated\s+in|\boriginally\s+from|\bmoved\s+to|\bvisit(?:ing)?|\btrip\s+to|\btravel\s+to|"
    r"\bcity\s+of|\btown\s+of|\bto|\bfrom|\bat|\bflew\s+to|\breturned\s+to)\s+$", re.IGNORECASE)
# "holder_name": "Funmilayo Adeyemi" / name=Olivia Smith / 'customer_name': 'X'
_KEY_VALUE = re.compile(
    r"""["']?(?P<key>[A-Za-z][\w\-]{0,40})["']?\s*[:=]\s*"""
    r"""(?:"(?P<dq>[^"\n\\]{1,60})"|'(?P<sq>[^'\n\\]{1,60})'|(?P<bare>[^"'\n,;{}\[\]<>=]{1,60}?)(?=[,;\n}]|$))""")
_KEY_BEFORE = re.compile(r"""["']([A-Za-z][\w\-]{0,40})["']\s*:\s*["']$|\b([A-Za-z][\w\-]{0,40})=["']?$""")
_NOT_NAME_KEYS = frozenset(("file", "filename", "user", "username", "host", "hostname", "model", "tool",
                            "function", "app", "product", "merchant", "bank", "company", "org", "field",
                            "table", "column", "key", "event", "queue", "service", "template", "step"))
# "Eve: What a wife." / "Rachel:" : a speaker label at the start of a line
_SPEAKER = re.compile(r"(?:^|\n|\\n)[ \t]*(?P<name>[^\W\d_][^\W\d_'’\-]*(?:[ \t]+[^\W\d_][^\W\d_'’\-]*)?)"
                      r"[ \t]*:[ \t]*(?=\S)")
# "Emilie, Barbara, Richard and David": a list of capitalised words
_LIST = re.compile(r"(?:[^\W\d_][\w'’\-]*,[ \t]+){1,8}[^\W\d_][\w'’\-]*,?[ \t]+(?:and|&)[ \t]+[^\W\d_][\w'’\-]*")
_FIELD_LABELS = frozenset("""
website web desk office home work title company department position role status priority subject
summary description notes note comment comments reason result error warning info question answer
system tool function input output response request reply message date time when where who what
total amount balance reference category type tags location city country state region zip code
""".split())
# A shop, not a person: "payment of €16.73 to Lidl", "declined at Zara", "the Netflix charge".
_MERCHANT_WORDS = (r"\b(?:payments?|charges?|charged|transactions?|purchases?|subscriptions?|merchant|"
                   r"refunds?|orders?|bought|shopping|spent|declined|dispute)\b(?:[^.!?\n]|\.(?=\d)){0,25}"
                   r"\b(?:to|from|at|by|with|on|in)")
_MERCHANT_CONTEXT = re.compile(_MERCHANT_WORDS + r"\s+$", re.IGNORECASE)
_MERCHANT_BEFORE = re.compile(r"(?:" + _MERCHANT_WORDS + r"|\bat|\bthe)\s+$", re.IGNORECASE)
_DETERMINER_BEFORE = re.compile(r"\b(?:the|a|an|my|your|our|their|this|that|these|those|some|any|no)\s+$",
                                re.IGNORECASE)
# "Towa is very reliable", "Leiva began writing": an unfamiliar capitalised word doing something
_PERSON_VERB_AFTER = re.compile(
    r"[ \t]+(?:is|was|had|has|lives|lived|began|will|would|said|says|spent|went|told|gave|wrote|"
    r"works|worked|grew|died|listed|called|asked|wants|needs|can|could|did|does)\b")

NAME_HINTS = frozenset(("name", "names", "holder", "beneficiary", "payee", "recipient", "customer",
                        "contact", "person", "owner", "signatory", "cardholder", "first", "last",
                        "surname", "given", "full", "fullname", "firstname", "lastname", "author",
                        "sender", "assignee", "reporter", "patient", "employee", "guardian",
                        "nominee", "attorney", "spouse", "display"))

_NER_OTHER = {"ORG", "GPE", "LOC", "FAC", "NORP", "PRODUCT", "WORK_OF_ART", "EVENT", "LANGUAGE",
              "LAW", "PERSON"}
_LOCATION_LABELS = {"GPE", "LOC", "FAC"}


def _same_length_title(word: str) -> str:
    out = []
    for i, ch in enumerate(word):
        c = ch.upper() if i == 0 else ch.lower()
        out.append(c if len(c) == 1 else ch)
    return "".join(out)


def case_variant(text: str) -> str | None:
    """The text with all-caps word runs in Title case (same length), or None if it has none.

    spaCy's small model reads "VALENTINA LÓPEZ" as an acronym soup; "Valentina López" it tags
    as a person. Offsets are preserved, so entities of the copy map straight back.
    """
    if not _ALLCAPS_RUN.search(text):
        return None
    return _ALLCAPS_RUN.sub(
        lambda m: re.sub(r"[^\W\d_]+", lambda w: _same_length_title(w.group()), m.group()), text)


_CLAUSE_END = re.compile(r"[ \t]*[.!?:,]")
_NEXT_LOWER_WORD = re.compile(r"[ \t]+([a-z]+)\b")
_SPAN_SEGMENT = re.compile(r"[^\d@_/\\#:;()\[\]{}<>|=+*&%$€£¥₹₦,!?\"“”]+")
_DIGIT_AFTER = re.compile(r"-?\d")
_INNER_CAPITAL = re.compile(r"(?<=[a-z])[A-Z]")
_NAME_PUNCT = re.compile(r"[\s.\-'’,]")


def _may_end_trigger(text: str, pos: int) -> bool:
    """Whether a trigger phrase can end right before pos: every trigger pattern ends in
    "[\\s,:]+$", so the character before pos must be whitespace, ',' or ':'."""
    if pos <= 0:
        return False
    ch = text[pos - 1]
    return ch.isspace() or ch == "," or ch == ":"


_CANDIDATE = re.compile(r"(?<![\w\-])[^\W\d_][^\W\d_'’\-]+")


def _at_sentence_start(text: str, pos: int) -> bool:
    before = text[max(0, pos - 3):pos].rstrip(" \t\"'“(")
    return not before or before[-1] in ".!?:\n>" or before.endswith("\\n")


def ner_windows(text: str, lexicon: Lexicon, window: int | None) -> list[tuple[int, int]]:
    """Where spaCy's NER can add something: around capitalised words that are neither function
    words nor sentence-initial verbs/adjectives ("What", "Please", "Replacement" are skipped;
    "Carmen", "Spain", "Grace" are not). Windows of `window` chars each side, cut at spaces and
    merged; None means the whole text whenever it has one such word."""
    windows: list[list[int]] = []
    for m in _CANDIDATE.finditer(text):
        word = m.group()
        if not word[0].isupper() or (word.isupper() and len(word) <= 3):
            continue
        lower = word.lower()
        if lexicon.is_stop(lower) or lower in NEVER_NAMES or lower in ORG_WORDS:
            continue
        if _at_sentence_start(text, m.start()) and not lexicon.name_compatible(word):
            continue
        if window is None:
            return [(0, len(text))]
        start, end = max(0, m.start() - window), min(len(text), m.end() + window)
        if start > 0:
            cut = text.rfind(" ", start, m.start())
            start = cut + 1 if cut >= 0 else start
        if end < len(text):
            cut = text.rfind(" ", m.end(), end)
            end = cut if cut > m.end() else end
        if windows and start <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], end)
        else:
            windows.append([start, end])
    return [(s, e) for s, e in windows]


class NameRecognizer(LocalRecognizer):
    """PERSON (and LOCATION) from NER entities in the NlpArtifacts plus the text itself."""

    def __init__(self, lexicon: Lexicon, entities: Sequence[str] = ("PERSON", "LOCATION"),
                 person_score: float = 0.85):
        self.lexicon = lexicon
        self.person_score = person_score
        self.mid_sentence_unknown = True
        self._function_cache: dict[str, bool] = {}
        self._name_only_memo: tuple = (None, None)
        super().__init__(supported_entities=list(entities), name="EvalflowNameRecognizer")

    def load(self) -> None:  # noqa: D102
        pass

    # -------------------------------------------------------------- token tests

    def _tokens(self, text: str, start: int, end: int) -> list[tuple[int, int, str]]:
        return [(start + m.start(), start + m.end(), m.group()) for m in _TOKEN.finditer(text[start:end])]

    def _unknown(self, word: str) -> bool:
        w = word.strip(".")
        if len(w) < 2 or (w.isupper() and len(w) <= 3):
            return False
        return not self.lexicon.is_common(w)

    def _function(self, word: str) -> bool:
        known = self._function_cache.get(word)
        if known is None:
            w = word.lower().strip(".")
            known = self.lexicon.is_stop(w) or w in NEVER_NAMES or w in ORG_WORDS
            if len(self._function_cache) < 200_000:
                self._function_cache[word] = known
        return known

    @staticmethod
    def _capitalised(word: str) -> bool:
        return word[:1].isupper()

    @staticmethod
    def _sentence_start(text: str, pos: int) -> bool:
        before = text[max(0, pos - 3):pos].rstrip(" \t\"'“(")
        return not before or before[-1] in ".!?:\n>" or before.endswith("\\n")

    def _trigger(self, text: str, start: int) -> str | None:
        if not _may_end_trigger(text, start):
            return None
        before = text[max(0, start - 40):start]
        if _STRONG_TRIGGER.search(before):
            return "strong"
        if _PERSONAL_TRIGGER.search(before):
            return "personal"
        if _PREP_TRIGGER.search(before):
            return "prep"
        return None

    @staticmethod
    def _vocative(text: str, start: int, end: int) -> bool:
        """", Felix." / "Thank you, Sofía." : a single word set off by a comma, ending a clause."""
        before = text[max(0, start - 2):start]
        return before.endswith((", ", ",\t")) and bool(_CLAUSE_END.match(text[end:end + 3]))

    # -------------------------------------------------------------- candidates

    def _places_in_org(self, text: str, start: int, end: int) -> list[tuple[int, int, float]]:
        tokens = self._tokens(text, start, end)
        out = []
        run: list = []
        for tok in tokens:
            is_org = _norm(tok[2]) in ORG_WORDS
            if not is_org and self._capitalised(tok[2]) and not self._function(tok[2]):
                run.append(tok)
                continue
            if run:
                out.append(run)
            run = []
        if run:
            out.append(run)
        places = []
        for r in out:
            before = text[max(0, r[0][0] - 25):r[0][0]]
            if (re.search(r"\bof[ \t]+$", before) or _LOCATION_TRIGGER.search(before)
                    or re.search(r"\bwhere:?[ \t]*$", before, re.IGNORECASE)) and \
                    any(self._unknown(t[2]) or (t[2].isupper() and len(t[2]) > 3) for t in r):
                places.append((r[0][0], r[-1][1], 0.5))
        return places

    @staticmethod
    def _key_verdict(text: str, start: int) -> bool | None:
        """For a value in key/value text, whether its key names a person; None elsewhere."""
        key = _KEY_BEFORE.search(text, max(0, start - 60), start)
        if not key:
            return None
        words = set(re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1 \2",
                                                  key.group(1) or key.group(2)).lower()))
        return bool(words & NAME_HINTS) and not words & _NOT_NAME_KEYS

    def _brand_before_noun(self, text: str, end: int) -> bool:
        """"Northwind cards", "Zara charge": a capitalised word used as a modifier of a noun."""
        nxt = _NEXT_LOWER_WORD.match(text[end:end + 25])
        return bool(nxt) and self.lexicon.is_common(nxt.group(1)) and not self.lexicon.is_stop(nxt.group(1)) \
            and not nxt.group(1).endswith("ed")

    def _has_org_word(self, text: str, start: int, end: int) -> bool:
        return any(_norm(w) in ORG_WORDS for _s, _e, w in self._tokens(text, start, end))

    def _clean_span(self, text: str, start: int, end: int, *, trim_common_at_start: bool):
        """The name words of a span: titles, function words and (at a sentence start) common
        words trimmed off the edges; digits or symbols at an edge cut there ("8345, Emily"),
        between name words they disqualify the span."""
        segments = [m for m in _SPAN_SEGMENT.finditer(text[start:end])
                    if _TOKEN.search(m.group())]
        if len(segments) != 1:
            return None
        seg = segments[0]
        tokens = self._tokens(text, start + seg.start(), start + seg.end())
        if not tokens:
            return None
        for ts, te, word in tokens:
            # TCK-567705, ACC12, ToolExecutionError: identifiers, not names
            if _DIGIT_AFTER.match(text[te:te + 2]) or (ts and text[ts - 1].isdigit()) or \
                    len(_INNER_CAPITAL.findall(word)) >= 2:
                return None
        while tokens and (self._function(tokens[0][2]) or tokens[0][2].lower().strip(".") in NAME_TITLES
                          or (trim_common_at_start and self._sentence_start(text, tokens[0][0])
                              and not self.lexicon.name_compatible(tokens[0][2]) and len(tokens) > 1)):
            tokens = tokens[1:]
        while tokens and (self._function(tokens[-1][2]) or tokens[-1][2].lower() in NAME_PARTICLES):
            tokens = tokens[:-1]
        if not tokens:
            return None
        return tokens

    def _person_from_tokens(self, tokens, *, min_unknown: int) -> bool:
        words = [t[2] for t in tokens]
        if any(_norm(w) in ORG_WORDS for w in words):
            return False
        return sum(self._unknown(w) for w in words) >= min_unknown

    def _accept_single(self, text: str, token) -> bool:
        """One capitalised word on its own is a name only with support around it."""
        s, e, word = token
        if word.isupper() and len(word) <= 3:
            return False  # USD, SMS, MXN
        if _MERCHANT_BEFORE.search(text, max(0, s - 50), s):
            return False
        key = self._key_verdict(text, s)
        if key is not None:
            return key
        trigger = self._trigger(text, s)
        if trigger in ("strong", "personal") or self._vocative(text, s, e):
            return True
        if not self._unknown(word) or not self._capitalised(word):
            return False
        if text[e:e + 2] in ("'s", "’s"):  # Sumaya's kid
            return True
        if not self._sentence_start(text, s):
            # mid-sentence, capitalised and not a dictionary word: "by ex-Zombie Fukunaga is",
            # but not a brand before its noun ("Northwind cards", "the Zara charge")
            return self.mid_sentence_unknown and not self._brand_before_noun(text, e)
        if text[e:e + 1] == ",":  # "Marisca, can I ..."
            return True
        if _PERSON_VERB_AFTER.match(text, e):
            return True
        nxt = _NEXT_LOWER_WORD.match(text[e:e + 20])
        return bool(nxt) and self.lexicon.is_verb_form(nxt.group(1))

    def _name_only_tokens(self, text: str):
        """The tokens of a text that is only a short name-shaped value (at most four words, no
        function words, nothing but letters and name punctuation), else None."""
        memo = self._name_only_memo  # context_sensitive() and analyze() ask about one text in turn
        if memo[0] == text:
            return memo[1]
        stripped = text.strip()
        found = None
        if stripped and len(stripped) <= 60:
            offset = text.index(stripped[0])
            tokens = self._tokens(text, offset, offset + len(stripped))
            rest = _NAME_PUNCT.sub("", _TOKEN.sub("", stripped))
            if tokens and not rest and len(tokens) <= 4 and not any(self._function(t[2]) for t in tokens):
                found = tokens
        self._name_only_memo = (text, found)
        return found

    def context_sensitive(self, text: str) -> bool:
        """Whether the field context (`evalflow_context` of the artifacts) can change what
        `analyze` finds in this text: only a text that is only a name-shaped value, whose
        verdict depends on a name-like field ("holder_name"). Everything else is found, or
        not, whatever field it sits in."""
        return self._name_only_tokens(text) is not None

    def analyze(self, text, entities, nlp_artifacts=None):  # noqa: D102
        want_person = "PERSON" in entities
        want_location = "LOCATION" in entities
        if not (want_person or want_location):
            return []
        persons: list[tuple[int, int, float, str]] = []
        locations: list[tuple[int, int, float]] = []
        covered: list[tuple[int, int]] = []
        ents = []
        if nlp_artifacts is not None:
            ents = [(e.start_char, e.end_char, e.label_) for e in nlp_artifacts.entities]
            ents += list(getattr(nlp_artifacts, "evalflow_variant_entities", ()))
        context = set(getattr(nlp_artifacts, "evalflow_context", ()) or ())
        has_upper = any(c.isupper() for c in text)

        # an entity across a line break is two things on two lines ("Tiffany Kilfoyle\nNera Consulting")
        split_ents = []
        for start, end, label in ents:
            if "\n" in text[start:end]:
                pos = start
                for line in text[start:end].split("\n"):
                    if line.strip():
                        lead = len(line) - len(line.lstrip())
                        split_ents.append((pos + lead, pos + len(line.rstrip()), label))
                    pos += len(line) + 1
            else:
                split_ents.append((start, end, label))
        ents = split_ents

        # 1-2: NER entities
        for start, end, label in ents:
            if label not in _NER_OTHER:
                continue
            covered.append((start, end))
            if label == "PERSON":
                tokens = self._clean_span(text, start, end, trim_common_at_start=False)
                if not tokens:
                    continue
                if len(tokens) == 1:
                    word = tokens[0][2]
                    ok = self._accept_single(text, tokens[0]) or (
                        self._capitalised(word) and not (word.isupper() and len(word) <= 3)
                        and (self._unknown(word) or self.lexicon.name_compatible(word))
                        and not self._plural_common(word)
                        and not self._brand_before_noun(text, tokens[0][1])
                        and self._key_verdict(text, tokens[0][0]) is not False
                        and not _MERCHANT_BEFORE.search(text, max(0, tokens[0][0] - 50), tokens[0][0]))
                elif any(self._capitalised(t[2]) for t in tokens):
                    ok = not any(_norm(t[2]) in ORG_WORDS for t in tokens)
                else:  # lower-case words tagged PERSON: only when they are not dictionary words
                    ok = sum(self._unknown(t[2]) for t in tokens) >= (1 if not has_upper else 2)
                if ok:
                    persons.append((tokens[0][0], tokens[-1][1], self.person_score, "ner person"))
                continue
            tokens = self._clean_span(text, start, end, trim_common_at_start=True)
            if tokens and any(self._capitalised(t[2]) for t in tokens):
                # "ex-Zombie Fukunaga": lower-case words at the edges are not part of a name
                while not self._capitalised(tokens[0][2]):
                    tokens = tokens[1:]
                while not self._capitalised(tokens[-1][2]):
                    tokens = tokens[:-1]
            if tokens and all(self._capitalised(t[2]) for t in tokens) and not self._has_org_word(text, start, end):
                if len(tokens) >= 2 and self._person_from_tokens(tokens, min_unknown=1):
                    persons.append((tokens[0][0], tokens[-1][1], 0.6, "name-shaped entity"))
                    continue
                if len(tokens) == 1 and self._person_from_tokens(tokens, min_unknown=0) and \
                        self._accept_single(text, tokens[0]) and (
                        self._unknown(tokens[0][2]) or label not in _LOCATION_LABELS):
                    persons.append((tokens[0][0], tokens[-1][1], 0.6, "addressed by name"))
                    continue
            if label not in _LOCATION_LABELS:
                if want_location and self._has_org_word(text, start, end):
                    locations.extend(self._places_in_org(text, start, end))
                elif want_location and tokens and self._location_trigger(text, tokens) and \
                        all(self._capitalised(t[2]) for t in tokens):
                    locations.append((tokens[0][0], tokens[-1][1], 0.5))
                continue
            if want_location:
                raw = text[start:end]
                words = raw.split()
                if (re.search(r"[\d@_/\\]", raw) or not raw[:1].isupper()
                        or (raw.isupper() and len(raw) <= 3)
                        or (len(words) == 1 and self._sentence_start(text, start)
                            and self._plural_common(words[0]))
                        or (len(words) == 1 and _MERCHANT_CONTEXT.search(text, max(0, start - 50), start))
                        or (len(words) == 1 and self._brand_before_noun(text, end))):
                    continue
                locations.append((start, end, 0.6))

        # 3: capitalised runs spaCy left alone
        for m in _CAP_RUN.finditer(text):
            s, e = m.start(), m.end()
            if any(s < ce and cs < e for cs, ce in covered):
                continue
            if self._has_org_word(text, s, e):
                # an organisation, not a person; a place may sit inside it ("University of
                # Leppen", "Where: Kouklia Country Club")
                if want_location:
                    locations.extend(self._places_in_org(text, s, e))
                continue
            tokens = self._clean_span(text, s, e, trim_common_at_start=True)
            if not tokens:
                continue
            if len(tokens) >= 2 and self._person_from_tokens(tokens, min_unknown=1):
                persons.append((tokens[0][0], tokens[-1][1], 0.5, "capitalised unfamiliar words"))
            elif len(tokens) == 1 and self._accept_single(text, tokens[0]):
                persons.append((tokens[0][0], tokens[0][1], 0.5, "capitalised word in a name position"))
            elif want_location and self._location_trigger(text, tokens):
                locations.append((tokens[0][0], tokens[-1][1], 0.5))

        # 3b: a text written all in lower case: pairs of unfamiliar, noun-like words
        if not has_upper:
            persons.extend(self._lowercase_names(text, covered))

        # 4: triggers in any case ("my name is josé pérez", "hi rahul", "to my landlord CAMILLE GIRARD")
        persons.extend(self._trigger_names(text, covered, has_upper))

        # key/value text (JSON tool results, logs): "beneficiary_name": "andrés hernández"
        for m in _KEY_VALUE.finditer(text):
            key_words = set(re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", m.group("key")).lower()))
            if not key_words & NAME_HINTS or key_words & _NOT_NAME_KEYS:
                continue
            group = "dq" if m.group("dq") is not None else "sq" if m.group("sq") is not None else "bare"
            tokens = self._tokens(text, m.start(group), m.end(group))
            rest = _NAME_PUNCT.sub("", _TOKEN.sub("", m.group(group)))
            if tokens and not rest and len(tokens) <= 5:
                persons.append((tokens[0][0], tokens[-1][1], 0.85, "value of a name field"))

        # speaker labels in transcripts ("Eve: What a wife.")
        for m in _SPEAKER.finditer(text):
            words = m.group("name").split()
            if all(self._capitalised(w) and w.lower() not in _FIELD_LABELS and not self._function(w)
                   and self.lexicon.name_compatible(w) for w in words) and not (
                    len(words) == 1 and words[0].isupper() and len(words[0]) <= 3):
                persons.append((m.start("name"), m.end("name"), 0.5, "speaker label"))

        # lists of names: when half the items already look like names, all of them are
        for m in _LIST.finditer(text):
            items = [(im.start() + m.start(), im.end() + m.start(), im.group())
                     for im in re.finditer(r"[^\W\d_][\w'’\-]*", m.group()) if im.group() not in ("and",)]
            if len(items) < 3 or not all(self._capitalised(w) and not self._function(w) for _s, _e, w in items):
                continue
            known = sum(1 for s_, e_, w in items
                        if self._unknown(w) or any(ps <= s_ and e_ <= pe for ps, pe, _sc, _w in persons))
            if known * 2 >= len(items):
                persons.extend((s_, e_, 0.5, "list of names") for s_, e_, _w in items)

        # 5: a text that is only a name
        tokens = self._name_only_tokens(text)
        if tokens:
            hinted = bool(context & NAME_HINTS)
            if hinted or (len(tokens) >= 2 and self._person_from_tokens(tokens, min_unknown=1)
                          and (all(self._capitalised(t[2]) for t in tokens)
                               or sum(self._unknown(t[2]) for t in tokens) >= 2)):
                persons.append((tokens[0][0], tokens[-1][1], 0.85 if hinted else 0.6, "name-only value"))

        persons.extend(self._propagate(text, persons))
        results = []
        if want_person:
            for s, e, score, why in _union(persons):
                results.append(self._result("PERSON", s, e, score, why))
        if want_location:
            for s, e, score in locations:
                if not any(s < pe and ps < e for ps, pe, _sc, _w in persons):
                    results.append(self._result("LOCATION", s, e, score, "location"))
        return results

    def _lowercase_names(self, text: str, covered) -> list[tuple[int, int, float, str]]:
        out = []
        tokens = self._tokens(text, 0, len(text))
        i = 0
        while i < len(tokens):
            run = [tokens[i]]
            j = i + 1
            while j < len(tokens) and len(run) < 3 and text[run[-1][1]:tokens[j][0]] in (" ", "\t") \
                    and self.lexicon.name_compatible(tokens[j][2]) and not self._function(tokens[j][2]):
                run.append(tokens[j])
                j += 1
            if (len(run) >= 2 and self.lexicon.name_compatible(run[0][2]) and not self._function(run[0][2])
                    and sum(self._unknown(t[2]) and len(t[2]) >= 4 for t in run) >= 1
                    and not _DETERMINER_BEFORE.search(text, max(0, run[0][0] - 12), run[0][0])
                    and not any(t[2].lower() in ORG_WORDS for t in run)):
                out.append((run[0][0], run[-1][1], 0.45, "lower-case unfamiliar words"))
                i = j
            else:
                i += 1
        return out

    def _plural_common(self, word: str) -> bool:
        """"Refunds", "Balances": a plural dictionary word, not a place or a person."""
        w = word.lower()
        return w.endswith("s") and self.lexicon.is_common(w) and self.lexicon.is_common(w[:-1])

    def _propagate(self, text: str, persons) -> list[tuple[int, int, float, str]]:
        """Once "Dirk Sommer" is a name, a later "Sommer" in the same text is the same person."""
        if not persons:
            return []
        words = set()
        for s, e, _score, _why in persons:
            for _ts, _te, w in self._tokens(text, s, e):
                w = w.strip(".")
                if len(w) >= 3 and self._capitalised(w) and not self._function(w) and \
                        w.lower() not in NAME_PARTICLES:
                    words.add(w)
        if not words:
            return []
        out = []
        for start, end in _whole_word_matches(text, words):
            if not any(ps <= start and end <= pe for ps, pe, _sc, _w in persons):
                out.append((start, end, 0.5, "same name again"))
        return out

    def _location_trigger(self, text: str, tokens) -> bool:
        if not _LOCATION_TRIGGER.search(text[max(0, tokens[0][0] - 30):tokens[0][0]]):
            return False
        if _MERCHANT_CONTEXT.search(text, max(0, tokens[0][0] - 50), tokens[0][0]):
            return False
        words = [t[2] for t in tokens]
        if len(words) == 1 and words[0].isupper() and len(words[0]) <= 3:
            return False
        return any(self._unknown(w) or (w.isupper() and len(w) > 3) for w in words)

    def _trigger_names(self, text: str, covered, has_upper: bool) -> list[tuple[int, int, float, str]]:
        out = []
        tokens = self._tokens(text, 0, len(text))
        i = 0
        while i < len(tokens):
            ts, te, word = tokens[i]
            if self._function(word) or word.lower().strip(".") in NAME_TITLES:
                i += 1
                continue
            if self._capitalised(word) or self.lexicon.name_compatible(word):
                strength = self._trigger(text, ts)
            else:  # a verb or adjective starts a name only right after "my name is" and the like
                strength = "strong" if _may_end_trigger(text, ts) and \
                    _STRONG_TRIGGER.search(text[max(0, ts - 40):ts]) else None
            if strength is None:
                i += 1
                continue
            run = [tokens[i]]
            j = i + 1
            while j < len(tokens) and len(run) < 3:
                gap = text[run[-1][1]:tokens[j][0]]
                if gap not in (" ", "\t") or self._function(tokens[j][2]):
                    break
                if self._capitalised(tokens[j][2]) != self._capitalised(run[0][2]) and \
                        tokens[j][2].lower() not in NAME_PARTICLES:
                    break  # "Hugo Girard said": case changes where the name ends
                run.append(tokens[j])
                j += 1
            if any(_norm(w[2]) in ORG_WORDS for w in run):
                i += 1
                continue
            capitalised = all(self._capitalised(t[2]) for t in run)
            unknown = [k for k, t in enumerate(run) if self._unknown(t[2])]
            if strength == "strong":
                score = 0.7
            elif capitalised and strength == "personal":
                score = 0.6
            elif capitalised:  # after a preposition: two words, one unfamiliar (not "to Netflix")
                if len(run) < 2 or not unknown:
                    i += 1
                    continue
                score = 0.5
            elif strength == "personal" and len(run) >= 2 and self.lexicon.name_compatible(run[1][2]) and (
                    unknown or re.match(r"[ \t]*(?:[,.;:!?)$€£¥₹₦]|$)", text[run[1][1]:run[1][1] + 2])):
                # "it's harry smith, by the way", "pay oliver williams $60": two noun-like words
                # set off after a personal trigger
                run = run[:2] if not unknown or unknown[-1] < 2 else run[: unknown[-1] + 1]
                score = 0.5
            else:  # lower-case words: unfamiliar ones only, two of them in mixed-case text
                if len(unknown) < (1 if not has_upper or strength == "personal" else 2):
                    i += 1
                    continue
                run = run[: unknown[-1] + 1]
                score = 0.5
            if strength != "strong" and len(run) == 1 and run[0][2].isupper() and len(run[0][2]) <= 3:
                i += 1
                continue
            out.append((run[0][0], run[-1][1], score, f"{strength} trigger"))
            i = j
        return out

    def _result(self, entity: str, start: int, end: int, score: float, why: str) -> RecognizerResult:
        return RecognizerResult(
            entity_type=entity, start=start, end=end, score=score,
            analysis_explanation=AnalysisExplanation(
                recognizer=self.name, original_score=score, textual_explanation=why),
            recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                                  RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id})


def _whole_word_matches(text: str, words) -> list[tuple[int, int]]:
    """The spans `re.finditer(r"(?<![\\w])(?:w1|w2|...)(?![\\w])", text)` gives with the words
    longest first: at each position the longest word standing alone there, scanning on after
    each match. By str.find instead of a regex compiled per text: with a different set of
    names in every text, those compilations thrash the re module's cache (phonenumbers'
    patterns live there too) and cost more than the search."""
    longest: dict[int, int] = {}  # start -> end of the longest whole-word occurrence there
    size = len(text)
    for word in words:
        n = len(word)
        i = text.find(word)
        while i >= 0:
            end = i + n
            if (i == 0 or not _is_word_char(text[i - 1])) and (end == size or not _is_word_char(text[end])):
                if longest.get(i, -1) < end:
                    longest[i] = end
            i = text.find(word, i + 1)
    out = []
    pos = 0
    for start in sorted(longest):
        if start >= pos:
            out.append((start, longest[start]))
            pos = longest[start]
    return out


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"  # what re's \w matches in a str pattern


def _norm(word: str) -> str:
    w = word.lower().strip(".")
    return w[:-2] if w.endswith(("'s", "’s")) else w


def _union(spans: list[tuple[int, int, float, str]]) -> list[tuple[int, int, float, str]]:
    spans = sorted(spans)
    out: list[list] = []
    for s, e, score, why in spans:
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
            if score > out[-1][2]:
                out[-1][2], out[-1][3] = score, why
        else:
            out.append([s, e, score, why])
    return [tuple(x) for x in out]
