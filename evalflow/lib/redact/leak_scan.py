"""The high-precision leak scan of redacted output: the `no_pii_left` asset check and the
CLI's `leak_counts`.

    high_precision_scan(text, allow_list)   # list[Detection], sorted by start

Regex and checksum only, no NER: the redactor's own recognizers for the types below, with the
weak shapes left out, so what it reports is a leak and not a guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from evalflow.lib.redact.detection import Detection, resolve_overlaps
from evalflow.lib.redact.preconditions import digit_count, precondition

HIGH_PRECISION_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE",
                           "IP_ADDRESS", "URL_CREDENTIALS", "USERNAME")


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
    return tuple((r, precondition(r)) for r in recognizers)


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
    # recognizer runs only where its pattern can match (see preconditions.py): most strings of
    # a trace are short values with no '@' and too few digits for any of these types.
    digits = digit_count(blanked)
    if not digits and "@" not in blanked and ":" not in blanked and "/" not in blanked and "~" not in blanked:
        return ()  # emails need an '@', IPv6 forms a ':', home paths a '/' or '~', every other type digits
    entities = list(HIGH_PRECISION_ENTITIES)
    found = []
    for recognizer, test in _high_precision_recognizers():
        if test is not None and not test(blanked, digits, True):
            continue
        for r in recognizer.analyze(blanked, entities, None):
            if r.score < _HIGH_PRECISION_MIN_SCORE.get(r.entity_type, 0.5):
                continue
            if blanked[r.start:r.end].strip().lower() in allow:
                continue
            found.append(Detection(r.entity_type, r.start, r.end, round(float(r.score), 4)))
    return tuple(resolve_overlaps(found))
