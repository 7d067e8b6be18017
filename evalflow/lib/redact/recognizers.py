"""Presidio recognizers tuned for support-assistant traffic.

Each one is a plain Presidio recognizer (`PatternRecognizer` or `LocalRecognizer`), so they run
inside `AnalyzerEngine.analyze` with Presidio's context enhancer, allow list and thresholds.
Scores: 1.0 for checksum-validated values, about 0.6-0.8 for shapes that are PII on their own,
about 0.3 for shapes that need a context word (Presidio adds 0.35 when one of the recognizer's
context words is among the 5 tokens before the value), so the default threshold of 0.4 keeps
phone numbers (Presidio's own phone recognizer scores 0.4 flat).
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

import phonenumbers
import regex
from presidio_analyzer import (
    AnalysisExplanation,
    LocalRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerResult,
)
from presidio_analyzer.predefined_recognizers import EmailRecognizer, IpRecognizer

from evalflow.lib.redact.luhn import luhn_valid

# ------------------------------------------------------------------ helpers


def _result(recognizer: LocalRecognizer, entity: str, start: int, end: int, score: float,
            why: str) -> RecognizerResult:
    return RecognizerResult(
        entity_type=entity,
        start=start,
        end=end,
        score=score,
        analysis_explanation=AnalysisExplanation(
            recognizer=recognizer.name, original_score=score, textual_explanation=why),
        recognition_metadata={
            RecognizerResult.RECOGNIZER_NAME_KEY: recognizer.name,
            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer.id,
        },
    )


# ------------------------------------------------------------------ credit cards

_CARD = re.compile(r"(?<![\w\-.])\d{2,6}(?:([ \-])\d{2,7}(?:\1\d{1,7}){1,4}|\d{6,17})(?![\w\-]|[.,]\d)")


class CardRecognizer(LocalRecognizer):
    """Card numbers with or without spaces/dashes (one separator kind), Luhn-checked.

    Presidio's own card pattern misses the Amex 4-6-5 grouping; this one takes any grouping of
    13-19 digits whose issuer prefix is a card network's (1-6: UATP/JCB 1800, Mir/Mastercard 2,
    Amex/Diners/JCB 3, Visa 4, Mastercard/Maestro 5, Discover/UnionPay 6) and whose Luhn digit
    checks out.
    """

    ENTITY = "CREDIT_CARD"

    def __init__(self, context: Sequence[str] | None = None):
        super().__init__(
            supported_entities=[self.ENTITY], name="EvalflowCardRecognizer",
            context=list(context or ("card", "credit", "debit", "visa", "mastercard", "amex", "cc")))

    def load(self) -> None:  # noqa: D102
        pass

    def analyze(self, text, entities, nlp_artifacts=None):  # noqa: D102
        if self.ENTITY not in entities:
            return []
        out = []
        for m in _CARD.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if 13 <= len(digits) <= 19 and digits[0] in "123456" and luhn_valid(digits):
                out.append(_result(self, self.ENTITY, m.start(), m.end(), 1.0, "Luhn-valid card"))
            elif 12 <= len(digits) <= 19 and re.match(r"5[06-9]|6|0604", digits) and luhn_valid(digits):
                # Maestro numbers can be 12 digits long; weaker alone, certain next to "card"
                out.append(_result(self, self.ENTITY, m.start(), m.end(), 0.5, "Luhn-valid Maestro"))
        return out


# ------------------------------------------------------------------ phone numbers

_PHONE_GROUP = r"(?:\(\s?\d{1,5}\s?\)|\d{1,12})"
_PHONE_SEP = r"(?:[ \t]?[\-.\u2010-\u2014][ \t]?|[ \t]|(?<=\)))"
_PHONE = re.compile(
    rf"(?<![\w+./\-])(?P<body>(?:\+[ \t]?)?{_PHONE_GROUP}(?:{_PHONE_SEP}{_PHONE_GROUP}){{0,6}})"
    rf"(?P<ext>[ \t]?(?:x|ext\.?|extension)[ \t]?\d{{1,6}})?(?![\w/]|-\d|[.,]\d)",
    re.IGNORECASE,
)
_DATE_LIKE = re.compile(
    r"^(?:\d{4}[\-./]\d{1,2}[\-./]\d{1,2}|\d{1,2}[\-./]\d{1,2}[\-./]\d{2,4})$"
    r"|(?<!\d)(?:19|20)\d{2}-[01]\d-[0-3]\d(?!\d)")  # an ISO date, alone or before a time
_IPV4_LIKE = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_DECIMAL_LIKE = re.compile(r"^\d+\.\d+$")  # 148.9094: an exchange rate, not 148-9094
_SSN_LIKE = re.compile(r"^\d{3}([\- ])\d{2}\1\d{4}$")  # 531-21-7351: the US SSN layout
# A bare digit string right after one of these words is that identifier, not a phone number.
_OTHER_NUMBER_BEFORE = re.compile(
    r"\b(?:routing|sort\s+code|account|acct|iban|order|ref(?:erence)?|ticket|transfer|invoice|"
    r"tracking|case|claim|policy|member|customer|transaction|confirmation|card|pin|otp|code|"
    r"amount|balance|total|id)\b[^\d\n]{0,20}$", re.IGNORECASE)

DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "ES", "NG", "CN", "AE", "IT", "NL", "AU",
                         "CA", "BR", "MX", "IE", "PL", "SE", "CH", "AT", "BE", "JP", "ZA", "SG",
                         "PT", "DK", "NO", "FI")
_PHONE_LABEL_AFTER = re.compile(r"[ \t]*[\-–(]?[ \t]*(?:office|fax|mobile|cell|home|work|desk|tel|phone|landline|"
                                r"whatsapp)\b", re.IGNORECASE)
PHONE_CONTEXT = ("phone", "mobile", "cell", "call", "tel", "telephone", "fax", "desk", "office",
                 "contact", "reach", "number", "whatsapp", "sms", "text", "ring", "landline",
                 "callback", "ph", "home", "work", "msisdn", "destination")


class PhoneRecognizer(LocalRecognizer):
    """Phone numbers in international (+CC / 00CC) and national formats.

    A regex finds phone-shaped digit groups; libphonenumber then decides. With a country code,
    a number whose length is possible for that country is taken (0.7; fictional ranges such as
    +44 7700 900xxx are not "valid" but are still someone's contact detail in a trace). Without
    one, a number valid in any of `regions` is taken (0.6); one that is only possible, or a
    bare digit string, needs a context word such as "call" or "mobile" (0.3 + 0.35).
    """

    ENTITY = "PHONE_NUMBER"

    def __init__(self, regions: Sequence[str] = DEFAULT_PHONE_REGIONS,
                 context: Sequence[str] = PHONE_CONTEXT, high_precision_only: bool = False):
        self.regions = tuple(regions)
        self.high_precision_only = high_precision_only
        self._scores: dict[str, float] = {}
        super().__init__(supported_entities=[self.ENTITY], name="EvalflowPhoneRecognizer",
                         context=list(context))

    def load(self) -> None:  # noqa: D102
        pass

    def score(self, body: str) -> float:
        # a pure function of the body (and the regions): the same number recurs in many texts,
        # and trying it against every region with libphonenumber is the costly part
        known = self._scores.get(body)
        if known is None:
            known = self._score(body)
            if len(self._scores) < 100_000:
                self._scores[body] = known
        return known

    def _score(self, body: str) -> float:
        digits = re.sub(r"\D", "", body)
        compact = body.strip()
        if len(digits) == 6 and not self.high_precision_only and re.fullmatch(r"\d{2,3}(?:[ .\-]\d{2,3}){1,2}", compact):
            return 0.3  # a local number without area code ("Mobile: 33 93 31"): with a context word only
        if not 7 <= len(digits) <= 15:
            return 0.0
        if _DATE_LIKE.search(compact) or _IPV4_LIKE.match(compact) or _DECIMAL_LIKE.match(compact) \
                or _SSN_LIKE.match(compact):
            return 0.0
        international = compact.startswith("+") or (compact.startswith("00") and len(digits) >= 10)
        if international:
            candidate = compact if compact.startswith("+") else "+" + compact[2:].lstrip()
            try:
                number = phonenumbers.parse(candidate, None)
            except phonenumbers.NumberParseException:
                return 0.0
            if phonenumbers.is_valid_number(number):
                return 0.75
            if phonenumbers.is_possible_number(number):
                return 0.7
            return 0.0
        separated = bool(re.search(r"[\s\-.()\u2010-\u2014]", compact))
        if separated and sum(len(g) >= 2 for g in re.findall(r"\d+", compact)) < 2:
            return 0.0  # "1 2 3 4 5 6 7" is a list of digits, not a number anyone dials
        possible = False
        for region in self.regions:
            try:
                number = phonenumbers.parse(compact, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                if separated:
                    return 0.6
                # a bare national number with its trunk 0 (08075681642) reads as a phone on
                # its own; other digit strings need a context word
                return 0.45 if compact.startswith("0") and 10 <= len(digits) <= 11 else 0.3
            possible = possible or phonenumbers.is_possible_number(number)
        if self.high_precision_only:
            return 0.0
        return 0.3 if (possible or separated) else 0.0

    def analyze(self, text, entities, nlp_artifacts=None):  # noqa: D102
        if self.ENTITY not in entities:
            return []
        out = []
        for m in _PHONE.finditer(text):
            body = m.group("body")
            s = self.score(body)
            if s and body.isdigit() and _OTHER_NUMBER_BEFORE.search(text, max(0, m.start() - 40), m.start()):
                continue
            if 0 < s < 0.6 and _PHONE_LABEL_AFTER.match(text, m.end()):
                # "68 21 97 office", "02775761418 mobile": a label after the number (Presidio's
                # context window after a match is used up by the number's own tokens)
                s = 0.65
            if self.high_precision_only and s < 0.6:
                continue
            if s > 0:
                out.append(_result(self, self.ENTITY, m.start(), m.end(), s, "phone number"))
        return out


# ------------------------------------------------------------------ account and order ids


def id_recognizers(extra_patterns: Iterable[tuple[str, str]] = ()) -> list[PatternRecognizer]:
    """Account/customer ids and order ids: prefixed codes, or numbers after 'account'/'order'."""
    account = [
        Pattern("prefixed account id",
                r"\b(?:ACC|ACCT|ACCNT|CUST|CUS|CID|CLIENT|MEMBER|MBR|USR)[\-_#:]?\d{4,14}\b", 0.85),
        Pattern("account number after 'account'",
                r"(?<=\b(?:account|acct|a/c|acc)(?:\s+(?:number|no\.?|num|#|id))?\s*[:#]?\s*)"
                r"\d{6,17}\b", 0.6),
        Pattern("customer number after 'customer'",
                r"(?<=\bcustomer\s+(?:number|no\.?|id|#)\s*[:#]?\s*)[A-Z0-9\-]{5,20}\b", 0.6),
    ]
    order = [
        Pattern("prefixed order id", r"\b(?:ORD|ORDER|PO|SO)[\-_#]\d{4,12}\b", 0.85),
        Pattern("order number after 'order'",
                r"(?<=\border\s+(?:number\s+|no\.?\s*|id\s+|#\s*)?)\d{5,12}\b", 0.6),
    ]
    by_type: dict[str, list[Pattern]] = {"ACCOUNT_ID": account, "ORDER_ID": order}
    for i, (entity, pattern) in enumerate(extra_patterns):
        by_type.setdefault(entity, []).append(Pattern(f"configured {entity} {i}", pattern, 0.85))
    return [
        PatternRecognizer(supported_entity=entity, patterns=patterns,
                          name=f"Evalflow{entity.title().replace('_', '')}Recognizer",
                          context=["account", "customer", "order", "id", "number"])
        for entity, patterns in by_type.items()
    ]


# ------------------------------------------------------------------ date of birth

_MONTHS = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
           r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DATE = re.compile(
    rf"(?<![\w/.\-])(?:\d{{1,2}}[/.\-]\d{{1,2}}[/.\-](?:19|20)?\d{{2}}"
    rf"|(?:19|20)\d{{2}}[/.\-]\d{{1,2}}[/.\-]\d{{1,2}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS},?\s+(?:19|20)\d{{2}}"
    rf"|{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{{2}})(?![\w/\-]|\.\d)",
    re.IGNORECASE,
)
_DOB_CONTEXT = re.compile(r"\b(?:born|birth|dob|d\.o\.b\.?|birthday|birthdate|b-day)\b", re.IGNORECASE)


class DateOfBirthRecognizer(LocalRecognizer):
    """A date is a date of birth only when a birth word precedes it closely.

    Other dates (transactions, deliveries, timestamps) are not PII on their own, and flagging
    them as Presidio's DATE_TIME does hides order numbers and amounts.
    """

    ENTITY = "DATE_OF_BIRTH"

    def __init__(self, window: int = 40):
        self.window = window
        super().__init__(supported_entities=[self.ENTITY], name="EvalflowDateOfBirthRecognizer")

    def load(self) -> None:  # noqa: D102
        pass

    def analyze(self, text, entities, nlp_artifacts=None):  # noqa: D102
        if self.ENTITY not in entities or not _DOB_CONTEXT.search(text):
            return []
        out = []
        for m in _DATE.finditer(text):
            before = text[max(0, m.start() - self.window):m.start()]
            if _DOB_CONTEXT.search(before):
                out.append(_result(self, self.ENTITY, m.start(), m.end(), 0.85, "date after a birth word"))
        return out


# ------------------------------------------------------------------ street addresses

_STREET_SUFFIXES = (
    "street|st|road|rd|avenue|ave|av|lane|ln|drive|dr|boulevard|blvd|court|ct|place|pl|way|"
    "terrace|ter|crescent|cres|close|square|sq|parkway|pkwy|highway|hwy|circle|cir|trail|trl|"
    "row|walk|alley|grove|gardens|mews|wharf|quay|parade|esplanade|causeway|expressway|freeway|"
    "turnpike|pike|loop|pass|points?|ridge|vista|heights|meadows?|bend|brook|creek|crossing|cove|"
    "glen|green|harbou?r|haven|isle|island|junction|knoll|landing|manor|mills?|mission|mount|"
    "orchard|oval|plaza|port|prairie|ranch|shores?|springs?|summit|trace|valley|village|ways|"
    "wells|fort|fields?|forge|fork|divide|corners?|courts|estates?|ford|falls|ferry|gateway|"
    "hollow|inlet|lakes?|locks|mall|motorway|radial|ramp|route|skyway|spur|stravenue|stream|"
    "throughway|tunnel|underpass|viaduct|hill|hills|park|rise|chase|dale|drove|fold|garth|gate|"
    "nook|wynd|marg|nagar|salai|crossroad|expy|fwy|tpke|jct|blvd|cswy|u\\.|utca"
)
_STREET_PREFIXES = (
    r"rue|avenue|av\.|boulevard|bd|chemin|impasse|all[ée]e|place|quai|cours|route|via|viale|"
    r"vicolo|piazza|piazzale|corso|largo|calle|c/|avda\.?|avenida|paseo|plaza|carrera|camino|"
    r"ctra\.?|carretera|traves[ií]a|rua|r\.|pra[çc]a|praceta|travessa|estrada|rodovia|ul\.|ulica|"
    r"al\.|aleja|trg|ulitsa|prospekt|strada|bulevardul|pia[țt]a|odos|leoforos|πλατεία|οδός|"
    r"λεωφόρος|πλ\.?|jalan|jl\.|soi|thanon|calea|sokak|caddesi|cad\.|sk\."
)
# street types that are not also everyday English or Romance words ("via", "place", "route")
_LOWER_PREFIXES = (r"rue|calle|avenida|avda\.|rua|ulica|ul\.|strada|viale|piazza|paseo|carrera|chemin|"
                   r"boulevard|avenue|praça|travessa|largo|corso|carretera|ctra\.|trg|ulitsa|πλατεία|οδός")
_COMPOUND_SUFFIXES = (
    r"stra(?:ß|ss)e|str\.|weg|gasse|allee|platz|ring|damm|ufer|markt|pfad|steig|vej|gade|gata|"
    r"gatan|vägen|väg|veien|vegen|vegur|straat|laan|singel|gracht|dreef|kade|hof|hove|plein|steeg|"
    r"tie|katu|kuja|polku|braut|gränd|stræti|stræde|utca|út|ulice|strasse|gässli|gässle"
)
_WORD = r"[^\W\d_][\w'’.\-]*"
_UPPER = "[" + "".join(re.escape(chr(c)) for c in range(0x2000) if chr(c).isupper()) + "]"
_CAP_WORD = _UPPER + r"[\w'’\-]*\.?"  # starts with an upper-case letter (any script)
_PARTICLE = r"(?:de|del|della|la|le|les|du|des|di|da|do|dos|das|van|von|der|den|y|e|of|the)"
_NUM = r"\d{1,6}[A-Za-z]?(?:[/\-]\d{1,4}[A-Za-z]?)?"

_ANCHORS = [
    # 1200 Maple Avenue / 9 Victoria Road / 8 wressle road / 27 2279 President St
    (re.compile(rf"(?<![\w\-/.,]){_NUM}(?:[ \t]+\d{{1,6}})?,?[ \t]+(?P<words>(?:{_WORD}[ \t]+){{1,4}}?)"
                rf"(?:{_STREET_SUFFIXES})(?![\w])\.?", re.IGNORECASE), 0.7, "number street-type"),
    # rue de la République 12 / 12 rue Victor Hugo / Calle Mayor 12 / ul. Tylna 149
    (re.compile(rf"(?:(?<![\w\-/.]){_NUM}[ \t]+(?:\d{{1,6}}[ \t]+)?)?(?<![\w])(?i:{_STREET_PREFIXES})(?:(?<=[./])|\b)[ \t]*"
                rf"(?P<words>(?:(?:{_PARTICLE}|[ld]['’])[ \t]*)*{_CAP_WORD}(?:[ \t]+(?:{_PARTICLE}[ \t]+|[ld]['’])*"
                rf"{_CAP_WORD}){{0,3}})(?:[ \t]+{_NUM}\b)?"), 0.7, "street-type name"),
    # the same in a lower-case text: 12 rue de la republique
    (re.compile(rf"(?<![\w\-/.]){_NUM}[ \t]+(?i:{_LOWER_PREFIXES})[ \t]+(?P<words>(?:[^\W\d_]+[ \t]+){{0,3}}"
                rf"[^\W\d_]+)(?:[ \t]+{_NUM}\b)?|(?<![\w])(?i:{_LOWER_PREFIXES})[ \t]+(?P<words2>(?:[^\W\d_]+[ \t]+){{0,3}}[^\W\d_]+)"
                rf"[ \t]+{_NUM}\b"), 0.6, "street-type name (lower case)"),
    # Hauptstraße 12 / Asselsestraat 7 / 0070 Hauptstrasse 124
    (re.compile(rf"(?:(?<![\w\-/.]){_NUM}[ \t]+(?:\d{{1,6}}[ \t]+)?)?(?<![\w])[^\W\d_]+(?:{_COMPOUND_SUFFIXES})(?:[ \t]+{_NUM}\b)",
                re.IGNORECASE), 0.7, "compound street name"),
    # P.O. Box 46 / PSC 7662, Box 0234 / Unit 9502 Box 8155 / APO AE 70868
    (re.compile(r"(?<![\w])(?:\d{1,6}[ \t]+)?(?:P\.?[ \t]?O\.?[ \t]?Box|Post Office Box|"
                r"(?:PSC|Unit|CMR)[ \t]+\d{3,5},?[ \t]+Box)[ \t]*\d{1,6}\b", re.IGNORECASE), 0.7, "PO box"),
    (re.compile(r"(?<![\w])(?:APO|FPO|DPO)[ \t]+(?:AA|AE|AP)[ \t]+\d{5}\b"), 0.7, "military post"),
    (re.compile(r"(?<![\w])(?:USNS|USNV|USS|USCGC)[ \t]+[^\W\d_][\w'’\-]+"), 0.5, "ship"),
    # the corner of Sludevej 68 and Ante Via
    (re.compile(rf"\b(?:the[ \t]+)?corner[ \t]+of[ \t]+(?:{_WORD}[ \t]+|\d{{1,6}}[ \t]+){{1,5}}?and[ \t]+"
                rf"(?:{_CAP_WORD}[ \t]*){{1,3}}", re.IGNORECASE), 0.6, "street corner"),
    # 82134 Tungata 11 / 779 Jaama 45: house number, capitalised name, number (Faker's intl style)
    (re.compile(rf"(?<![\w\-/.,]){_NUM}[ \t]+(?P<words>{_CAP_WORD}(?:[ \t]+(?:{_CAP_WORD}|"
                rf"de|del|la|le|di|da|do|dos|das|van|von|der|den|an|am|im|auf)){{0,3}})[ \t]+\d{{1,5}}(?:[A-Z]\b)?\b(?![.,]\d|[\-/])"),
     0.5, "number name number"),
    # an address block's first line: "63 30 N. Stadion" followed by more address lines
    (re.compile(rf"(?m)(?<![\w\-/.,])\d{{1,6}}[A-Za-z]?(?:[ \t]+\d{{1,6}})?[ \t]+{_CAP_WORD}(?:[ \t]+(?:{_CAP_WORD}|"
                rf"{_PARTICLE}|\d{{1,5}}))*(?=[ \t]*$)"), 0.0, "address block"),
    # Flat 305, / Room 1203, / Villa 12, (as the first part of a multi-part address)
    (re.compile(r"(?<![\w])(?:flat|apt\.?|apartment|suite|unit|room|villa|house|building|bldg\.?)"
                r"[ \t]*#?\d{1,5}[A-Za-z]?,?(?=\s|\\n|$)", re.IGNORECASE), 0.0, "unit"),
    # after an address word, in any case: "his address: 46 velký průhon 426"
    (re.compile(rf"\b(?:address(?:\s+is)?:?|lives?\s+(?:at|on)|living\s+at|moved\s+to|located\s+at)[ \t]*"
                rf"(?P<addr>(?:{_NUM}[ \t]+)?(?P<words>(?:[^\W\d_][\w'’\-.]*[ \t]+){{1,4}}){_NUM}\b)",
                re.IGNORECASE), 0.6, "after address word"),
]

# Parts that may follow (or, for units, precede) a street in a postal address.
_UNIT = re.compile(r"(?:apt\.?|apartment|suite|ste\.?|unit|flat|floor|fl\.|room|rm\.?|bldg\.?|building|"
                   r"no\.?|#|villa|house|street|st\.?|block|sector|zone|area)[ \t]*#?\d{1,5}[A-Za-z]?\b",
                   re.IGNORECASE)
_POSTCODE = re.compile(
    r"(?:[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2}"        # UK
    r"|[A-Z]\d[A-Z][ \t]?\d[A-Z]\d"                    # Canada
    r"|\d{4}[ \t]?[A-Z]{2}(?![a-z])"                   # Netherlands
    r"|\d{3}[ \t]\d{2}"                                # CZ/SK/SE/GR
    r"|\d{4,6}(?:-\d{3,4})?)\b")
_ORDINAL_FLOOR = re.compile(r"\d{1,2}[º°ª](?:[ \t]?[A-Za-z]{1,2}\b)?")
_STATE = re.compile(r"[A-Z]{2,3}\b")
_PLACE_WORD = _UPPER + r"[^\W\d_]*(?:['’\-][^\W\d_]+)*\.?(?![\w])"
_PLACE = re.compile(rf"{_PLACE_WORD}(?:[ \t]+(?:{_PLACE_WORD}|am|an|de|del|di|da|do|dos|la|le|les|"
                    rf"sur|upon|on|en|im|in|bei|van|von|der|den|\d{{1,2}}\b)){{0,4}}(?:[ \t]+\([^\W\d_]+\))?")
_SEP = re.compile(r"(?:[ \t]*(?:,|;|\n|\\n)[ \t]*)+|[ \t]+")
_HOUSE_NUMBER = re.compile(r"\d{1,4}[A-Za-z]?\b\.?")
_ADDRESS_PARTICLES = frozenset("an der den dem am im auf zum zur de la le du des del di da do dos das van von".split())
_LINE = re.compile(r"[^\n\\]{1,60}(?=\n|\\n|$)")
_MONTH_OR_DAY = re.compile(r"(?i)(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?$")
_LEFT_UNIT = re.compile(r"(?:(?:flat|apt\.?|apartment|suite|unit|room|villa|house|building|bldg\.?|"
                        r"no\.?)[ \t]*#?\d{1,5}[A-Za-z]?[ \t]*,?[ \t]*){1,2}$", re.IGNORECASE)

# Case-insensitive patterns also match these four letters to ASCII i, i, s and k (Python's
# IGNORECASE); folding them first keeps a substring test on the lower-cased text conservative.
_IGNORECASE_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
_ANY_DIGIT = re.compile(r"\d")


class _Cues:
    """What a text holds that an anchor needs: a digit, a space or tab, a literal word."""

    __slots__ = ("text", "digit", "blank", "_folded")

    def __init__(self, text: str):
        self.text = text
        self.digit = _ANY_DIGIT.search(text) is not None
        self.blank = " " in text or "\t" in text
        self._folded = None

    def has(self, *words: str) -> bool:
        """Whether the text, case-folded as IGNORECASE matches, holds one of these ASCII words."""
        if self._folded is None:
            self._folded = self.text.translate(_IGNORECASE_FOLD).lower()
        return any(w in self._folded for w in words)


_BLANK_DIGIT = re.compile(r"(?<![ \t])[ \t]+\d")
_COMPOUND_END = re.compile(rf"(?:{_COMPOUND_SUFFIXES})$", re.IGNORECASE)


def _compound_before_number(text: str) -> bool:
    """Whether a compound street suffix ("straße", "vej", ...) ends right before blanks and a
    digit somewhere: the compound anchor ends that way. Its own scan backtracks through every
    word for the suffix; this looks only where blanks meet a digit (suffixes are under 10 chars)."""
    return any(_COMPOUND_END.search(text, max(0, m.start() - 10), m.start()) for m in _BLANK_DIGIT.finditer(text))


# Which anchors can match at all: each gate is implied by its pattern (a house number needs a
# digit, "[ \t]+" a blank, a literal word its letters), so a failed gate skips a scan that
# could only have found nothing. Anchors without a gate always run.
_ANCHOR_GATES = {
    "number street-type": lambda c: c.digit and c.blank,
    "street-type name (lower case)": lambda c: c.digit and c.blank,
    "compound street name": lambda c: c.digit and c.blank and _compound_before_number(c.text),
    "PO box": lambda c: c.digit and c.has("box"),
    "military post": lambda c: c.digit and c.blank and "PO" in c.text,
    "ship": lambda c: c.blank and "US" in c.text,
    "street corner": lambda c: c.blank and c.has("corner"),
    "number name number": lambda c: c.digit and c.blank,
    "address block": lambda c: c.digit and c.blank,
    "unit": lambda c: c.digit,
    "after address word": lambda c: c.digit and c.blank and c.has("address", "liv", "moved", "located"),
}
assert set(_ANCHOR_GATES) <= {why for _rx, _score, why in _ANCHORS}

_ZIP_AFTER_WORD = re.compile(r"\b(?:zip|zip\s+code|postal\s+code|postcode|post\s+code|pin\s+code)"
                             r"(?:\s+is)?\s*[:#]?\s*(?P<zip>\d{4,6}(?:-\d{3,4})?|\d{2}-\d{3}|\d{3}\s?\d{2,3}|"
                             r"[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2})\b", re.IGNORECASE)
ADDRESS_CONTEXT = ("address", "live", "lives", "living", "moved", "move", "ship", "deliver",
                   "delivery", "send", "mail", "located", "street", "home", "residence", "billing",
                   "postal", "zip", "postcode")


class AddressRecognizer(LocalRecognizer):
    """Postal addresses: a street anchor, then the unit, place, region and postcode parts.

    Anchors cover English street types (number + name + Street/Rd/...), prefix street types
    (rue, calle, via, ul., ...), compound names (Hauptstraße 12, Frørupvej 2), PO and military
    boxes, "the corner of X and Y", and "number Name number" house-number forms. From an anchor
    the span grows over following parts separated by commas, spaces or line breaks (literal
    "\\n" included, as in JSON-escaped tool results): units, postcodes, capitalised place names,
    region codes. It stops at the first part that is none of these, so an address inside a
    sentence does not swallow the sentence.
    """

    ENTITY = "STREET_ADDRESS"

    def __init__(self, lexicon=None, max_parts: int = 7):
        self.lexicon = lexicon
        self.max_parts = max_parts
        super().__init__(supported_entities=[self.ENTITY], name="EvalflowAddressRecognizer",
                         context=list(ADDRESS_CONTEXT))

    def load(self) -> None:  # noqa: D102
        pass

    def _words_ok(self, text: str, m: re.Match) -> bool:
        """Words between a house number and a street type: capitalised, or a lower-case address."""
        groups = m.groupdict()
        words = groups.get("words") or groups.get("words2")
        if not words:
            return True
        tokens = words.split()
        if any(t[0].isupper() for t in tokens) or m.group().isupper():
            lower = [t for t in tokens if not t[0].isupper()]
            # "Rue de la Paix": lower-case particles are fine, lower-case content words are not
            return all(t.lower() in ("de", "la", "le", "del", "di", "da", "do", "dos", "das", "of",
                                     "the", "l'", "d'", "van", "von", "der", "den", "des", "du")
                       or t.lower().startswith(("l'", "d'")) for t in lower)
        # all lower-case: no stop words inside ("3 cards on the way" is not an address)
        if self.lexicon is None:
            return False
        return not any(self.lexicon.is_stop(t) for t in tokens)

    def _extend_right(self, text: str, end: int) -> int:
        parts = 0
        pos = end
        numbers_in_row = 0
        multiline = False
        while parts < self.max_parts:
            sep = _SEP.match(text, pos)
            if not sep:
                break
            nxt = sep.end()
            if nxt >= len(text):
                break
            part = None
            for kind, rx in (("unit", _UNIT), ("floor", _ORDINAL_FLOOR), ("postcode", _POSTCODE),
                             ("place", _PLACE), ("state", _STATE), ("number", _HOUSE_NUMBER)):
                m = rx.match(text, nxt)
                if m and m.end() > nxt:
                    if kind == "place" and not self._place_ok(m.group()):
                        continue
                    part = (kind, m.end())
                    break
            newline = "\n" in sep.group() or "\\n" in sep.group()
            multiline = multiline or newline or "\n" in text[end:pos]
            if part is None and (newline or multiline):
                # a multi-line address: a short line, or the rest of one, of any case
                # ("polapit tamar", "nan", "u Hrotovic")
                line_end = self._address_line(text, nxt)
                if line_end:
                    part = ("line", line_end)
            if part is None:
                break
            kind, part_end = part
            numbers_in_row = numbers_in_row + 1 if kind in ("postcode", "number") else 0
            after = text[part_end:part_end + 2]
            # a number followed by more digits is a phone or an amount, not a postcode
            if kind in ("postcode", "number") and (numbers_in_row > 1 or re.match(r"[ \t]?\d|[\-./]\d", after)):
                break
            pos = part_end
            parts += 1
        return pos

    def _address_line(self, text: str, start: int) -> int:
        m = _LINE.match(text, start)
        if not m:
            return 0
        line = m.group().rstrip()
        if not line or len(line) > 40 or re.search(r"[:@]|https?|www\.", line) or _PHONE.search(line) \
                and len(re.sub(r"\D", "", line)) >= 7:
            return 0
        words = re.findall(r"[^\W\d_]+", line)
        if len(words) > 4 or not self._place_ok(line):
            return 0
        if self.lexicon is not None and any(self.lexicon.is_stop(w) for w in words if w.lower() not in
                                            ("de", "la", "le", "del", "da", "di", "du", "am", "an", "nan")):
            return 0
        return start + len(line)

    def _place_ok(self, place: str) -> bool:
        words = place.split()
        if not words:
            return False
        first = words[0].strip(".").lower()
        if first in ("i", "the", "a", "an", "and", "or", "but", "please", "thanks", "thank", "if",
                     "call", "mobile", "desk", "fax", "phone", "email", "e-mail", "tel", "ok",
                     "website", "personal", "name", "address", "hi", "hello", "dear", "regards",
                     "best", "cheers", "sincerely"):
            return False
        return not place.rstrip().endswith(":")

    def _number_name_number_ok(self, m: re.Match) -> bool:
        """"82134 Tungata 11" is an address; "31 December 2026" and "5 Musicians Of The 70" are not."""
        words = m.group("words").split()
        if self.lexicon is None:
            return False
        if any((self.lexicon.is_stop(w) and w.lower() not in _ADDRESS_PARTICLES) or _MONTH_OR_DAY.match(w)
               for w in words):
            return False
        return any(not self.lexicon.is_common(w) for w in words)

    def analyze(self, text, entities, nlp_artifacts=None):  # noqa: D102
        if self.ENTITY not in entities:
            return []
        spans: list[tuple[int, int, float]] = []
        cues = _Cues(text)
        for rx, score, _why in _ANCHORS:
            gate = _ANCHOR_GATES.get(_why)
            if gate is not None and not gate(cues):
                continue
            for m in rx.finditer(text):
                if not self._words_ok(text, m):
                    continue
                if _why == "number name number" and not self._number_name_number_ok(m):
                    continue
                if _why == "after address word" and self.lexicon is not None and any(
                        self.lexicon.is_stop(w) and w.lower() not in _ADDRESS_PARTICLES
                        for w in m.group("words").split()):
                    continue
                start, end = (m.start("addr"), m.end("addr")) if "addr" in m.groupdict() else (m.start(), m.end())
                if score == 0.0:
                    # a unit alone is not an address; it starts one when a street or two more
                    # address parts follow
                    right = self._extend_right(text, end)
                    if right - end < 8 or text[end:right].count(",") + text[end:right].count("\n") < 1:
                        continue
                    prev = re.search(r"(?:^|\n)[ \t]*(\d{1,6}[ \t]+[^\n]{3,50})\n[ \t]*$", text[max(0, start - 60):start])
                    if prev:
                        start = max(0, start - 60) + prev.start(1)
                    spans.append((start, right, 0.5))
                    continue
                left = _LEFT_UNIT.search(text, max(0, start - 40), start)
                if left:
                    start = left.start()
                end = self._extend_right(text, end)
                spans.append((start, end, score))
        if cues.digit and cues.has("zip", "post", "pin"):
            for m in _ZIP_AFTER_WORD.finditer(text):
                spans.append((m.start("zip"), m.end("zip"), 0.6))
        if not spans:
            return []
        spans.sort()
        merged = [list(spans[0])]
        for s, e, sc in spans[1:]:
            if s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
                merged[-1][2] = max(merged[-1][2], sc)
            else:
                merged.append([s, e, sc])
        return [_result(self, self.ENTITY, s, e, sc, "postal address") for s, e, sc in merged]


# ------------------------------------------------------------------ emails, URL credentials, home paths, IPv6
#
# Shapes that are PII whatever domain or host they name (issue 11). Each is a Presidio
# PatternRecognizer (its regexes run with Presidio's `regex` module, so variable-length
# lookbehinds are fine) and each is in the leak check's high-precision scan.


# icon@2x.png, logo@1.5x.jpg: image files at a display scale, not addresses
_SCALE_SUFFIX = re.compile(r"\d+(?:\.\d+)?x\.(?:png|jpe?g|gif|webp|svg|bmp|ico|tiff?|heic|avif)$", re.IGNORECASE)


class EmailAnyDomainRecognizer(EmailRecognizer):
    """Presidio's email recognizer without its public-suffix check.

    Presidio keeps an address only when tldextract knows its top-level domain, so
    jane.doe@corp.internal, bob@payroll.local or ann@example.test were dropped: exactly the
    company-internal addresses support and agent traffic carries. Here an address of any domain
    counts; what is refused is a last label that cannot be a top-level domain (one character,
    or digits only: lodash@4.17.21) and image scale suffixes (icon@2x.png). No tldextract call,
    so no suffix list either.
    """

    def __init__(self):
        super().__init__(patterns=[Pattern("Email (any domain)", EmailRecognizer.PATTERNS[0].regex, 0.5)],
                         context=["email", "mail", "e-mail"], name="EvalflowEmailRecognizer")

    def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):  # noqa: D102
        # Presidio's address shape, minus one place: the userinfo of a URL
        # (https://user:secret@host) is not an address; UrlCredentialsRecognizer takes it.
        # (Checked here, not by a lookbehind in the pattern: an unbounded lookbehind at every
        # position is quadratic on long tokens, and a regex that times out finds nothing.)
        out = []
        for r in super().analyze(text, entities, nlp_artifacts, regex_flags):
            if _in_url_userinfo(text, r.start):
                # The match began right after "//"; Presidio's local part allows '/', '?', '#',
                # so "//example.com/contact?email=ann@x" starts there too: what follows the last
                # of those is the address. No such character: it is the userinfo itself.
                at = text.index("@", r.start)
                cut = max(text.rfind(c, r.start, at) for c in "/?#")
                if cut < 0 or cut + 1 >= at:
                    continue
                r.start = cut + 1
            out.append(r)
        return out

    def validate_result(self, pattern_text: str) -> bool:  # noqa: D102
        domain = pattern_text.rpartition("@")[2]
        tld = domain.rpartition(".")[2]
        if len(tld) < 2 or not any(c.isalpha() for c in tld):
            return False
        return _SCALE_SUFFIX.fullmatch(domain) is None


def _in_url_userinfo(text: str, start: int, limit: int = 256) -> bool:
    """Whether `start` lies in the userinfo of a URL: "//" then no '/', '?', '#', '@' or space.
    `mailto:jane@x` and `?email=jane@x` are not. Past `limit` chars back, answer no (the
    address is then masked as an address; UrlCredentialsRecognizer still takes the userinfo)."""
    i = start
    low = max(0, start - limit)
    while i > low and not (text[i - 1].isspace() or text[i - 1] in "/?#@"):
        i -= 1
    return i >= 2 and text[i - 2:i] == "//"


class UrlCredentialsRecognizer(PatternRecognizer):
    """The userinfo of a URL, `user:secret` in scheme://user:secret@host/ (or `user` alone).

    Only the userinfo is reported (URL_CREDENTIALS), so scheme, host, port and path stay
    readable: postgres://<URL_CREDENTIALS_…>@db.local:5432/x. Env-var and template forms
    (${USER}, {{user}}, %USER%) and the shared service users git, anonymous and ftp
    (ssh://git@github.com/...) are not credentials.
    """

    ENTITY = "URL_CREDENTIALS"
    # RFC 3986 userinfo: no '/', '?', '#', '@', brackets, spaces or quotes
    PATTERN = r"(?<=\b[a-z][a-z0-9+.\-]{0,30}://)(?![$%]|(?:git|anonymous|ftp)@)[^\s/?#@\[\]{}<>\"'\\]+(?=@[\w\[])"

    def __init__(self):
        super().__init__(supported_entity=self.ENTITY, name="EvalflowUrlCredentialsRecognizer",
                         patterns=[Pattern("URL userinfo", self.PATTERN, 0.95)])


# Folders under /home, /Users or C:\Users that are not a person's: system folders and accounts,
# and the placeholders documentation uses.
_NOT_A_USER = (r"(?!(?i:shared|public|default(?:[ .]user)?|all[ .]users|guest|root|administrator|"
               r"user(?:name)?|your[_\-]?(?:user)?name)(?![\w.\-]))")
_USER = r"[^\W_][\w.\-]{0,63}(?<![.\-])"


class HomePathRecognizer(PatternRecognizer):
    """The user name in a home-directory path: /home/jdoe/, /Users/jane.doe/, C:\\Users\\jsmith\\
    (JSON-escaped too), https://host/~jdoe/, ~jdoe/.bashrc. Only that segment is reported
    (USERNAME): /home/<USERNAME_…>/app.log keeps the path readable.

    /home and /Users count at the start of a path only (after a space, a quote, '=' or
    "file://"), not as a URL's path segment (https://shop.example/home/deals); /Users is
    macOS's, so case-sensitive (a REST path /users/42 is not it); Windows paths in any case.
    A ~ needs a '/' before it (a URL's user directory) or after the name (a shell path), so
    "~twenty minutes" stays.
    """

    ENTITY = "USERNAME"
    PATTERNS = (
        ("unix home", rf"(?<=(?:^|[^\w.~\-])(?:/home|/Users|/export/home|/var/home)/){_NOT_A_USER}{_USER}"),
        ("windows profile", rf"(?<=\b[A-Za-z]:(?:\\{{1,2}}|/)(?i:users|documents and settings)(?:\\{{1,2}}|/))"
                            rf"{_NOT_A_USER}(?:[\w.\-]+(?: [\w.\-]+){{1,3}}(?=\\)|{_USER})"),
        ("url user directory", rf"(?<=/~){_NOT_A_USER}{_USER}"),
        ("shell ~user", rf"(?<=(?:^|[\s\"'(=:,\[])~){_NOT_A_USER}{_USER}(?=/)"),
    )

    def __init__(self):
        super().__init__(supported_entity=self.ENTITY, name="EvalflowHomePathRecognizer",
                         patterns=[Pattern(name, rx, 0.85) for name, rx in self.PATTERNS],
                         # case-sensitive (Presidio's default flags ignore case): /Users is macOS's
                         global_regex_flags=regex.DOTALL | regex.MULTILINE)


def ip_recognizer() -> IpRecognizer:
    """Presidio's IP recognizer (IPv4, IPv6 full and compressed, IPv4-mapped, zones, prefixes,
    each checked by `ipaddress`), plus IPv6 right after a `label:` as in log lines
    ("client_ip:2001:db8::1"), which Presidio's lookbehind (no ':' before) skips."""
    patterns = list(IpRecognizer.PATTERNS)
    ipv6 = next((p for p in patterns if p.name == "IPv6"), None)
    lead = "(?<![\\w:])"
    if ipv6 is not None and ipv6.regex.startswith(lead):
        patterns.append(Pattern("IPv6 after a label",
                                r"(?<=(?:^|[^\w:])[A-Za-z_][\w\-]{0,63}:)" + ipv6.regex[len(lead):], ipv6.score))
    return IpRecognizer(patterns=patterns)
