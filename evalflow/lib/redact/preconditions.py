"""Cheap tests that skip a recognizer on a text where it cannot find anything.

Used by the detector (engine.py) and the leak scan (leak_scan.py). Each test takes
(text, digit count, has a letter) and is False only where the recognizer's own patterns cannot
match; test_redact_detect.py checks that they never skip a recognizer that would find something.
"""

from __future__ import annotations

import re

LETTER = re.compile(r"[^\W\d_]")
_NON_DIGITS = re.compile(r"\D+")
_DIGIT_RUN4 = re.compile(r"\d{4}")
_IBAN_START = re.compile(r"[A-Z]{2}[0-9]{2}")  # how every IBAN the pattern takes begins


def digit_count(text: str) -> int:
    return len(_NON_DIGITS.sub("", text))


_ID_DEFAULT_PATTERNS = frozenset(("prefixed account id", "account number after 'account'",
                                  "customer number after 'customer'", "prefixed order id",
                                  "order number after 'order'"))


def precondition(recognizer):
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
