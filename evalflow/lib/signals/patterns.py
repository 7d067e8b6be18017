"""Lexical patterns of refusals, prompt injections, instruction leaks and policy violations.

These are generic word lists of the kind a support bot's moderation layer keeps (the phrasing
catalogued by jailbreak corpora and refusal classifiers), not the simulator's sentences: each
pattern names a family (an "ignore ... instructions" override, a "so it isn't reported"
structuring request) and matches its many wordings. They are applied to lowercased text with
curly apostrophes folded, and after redaction, where people's names are placeholders such as
`<PERSON_1a2b3c4d>`.

Known blind spots: paraphrases outside the families (a polite injection with no trigger word),
other languages, and refusals phrased without a first-person "can't/won't/unable" clause.
"""

from __future__ import annotations

import re

_NOT = r"(?:can't|cannot|can not|won't|will not|am not able to|'m not able to|are not able to|" \
       r"am unable to|'m unable to|are unable to|'re unable to|must decline to|have to decline to)"
_ACTS = r"(?:help|assist|provide|share|disclose|reveal|give|discuss|answer|comply|fulfil|fulfill|" \
        r"process|support|do that|do this|complete)"

# A first-person refusal near the start of an answer. "Sorry, I couldn't retrieve that" is a
# capability failure, not a refusal, so the verb list is about helping/sharing, not fetching.
REFUSAL = [
    re.compile(rf"\b(?:i|we)\s*{_NOT}\s+(?:\w+\s+)?{_ACTS}\b"),
    re.compile(rf"\b(?:i|we)(?:'m| am| are|'re)\s+not\s+(?:able|allowed|permitted|authori[sz]ed)\s+to\s+{_ACTS}\b"),
    re.compile(r"\bunfortunately,?\s+(?:i|we)\s+(?:can't|cannot|am unable|'m unable|are unable|won't)\b"),
    re.compile(r"\b(?:i|we)\s+(?:must|have to|need to)\s+(?:decline|refuse)\b"),
    re.compile(r"\b(?:this|that|your) request (?:is|goes) (?:against|outside|beyond) (?:my|our) "
               r"(?:policy|policies|guidelines|scope)\b"),
]
REFUSAL_WINDOW = 300  # characters: a refusal opens the answer, it is not buried in it

# Attempts to override, unlock or extract the assistant's instructions.
INJECTION = [
    re.compile(r"\b(?:ignore|disregard|forget|override|bypass|skip)\b.{0,30}\b(?:previous|prior|"
               r"above|earlier|all|your|the|these|any|system)\b.{0,20}\b(?:instructions?|rules|prompts?|"
               r"guidelines|directives|restrictions|policies|programming)\b"),
    re.compile(r"\b(?:system|developer|admin|debug|god|jailbreak|dan)\s+(?:mode|override)\b"),
    re.compile(r"\b(?:you are now|from now on,? you (?:are|will)|pretend (?:to be|you are)|"
               r"act as (?:an? )?(?:unrestricted|unfiltered|jailbroken))\b"),
    re.compile(r"\b(?:do anything now|without (?:any )?(?:restrictions|limitations|filters|rules))\b"),
    re.compile(r"\b(?:reveal|print|show|repeat|output|display|leak|dump|tell me|write out)\b.{0,20}"
               r"\b(?:your\s+(?:\w+\s+)?(?:prompt|instructions|rules|guidelines)|(?:system|hidden|"
               r"initial|original|internal|secret)\s+(?:prompt|instructions|message|rules))\b"),
    re.compile(r"\b(?:repeat|print|output|copy)\b.{0,20}\b(?:everything|all|the text|the words|"
               r"what is written)\s+(?:above|before)\b"),
    re.compile(r"\b(?:list|reveal|show|print|enumerate|dump)\b.{0,30}\b(?:internal|hidden|private)\b"
               r".{0,20}\b(?:tools?|functions?|apis?|schemas?|endpoints?)\b"),
]
# "DAN" is a jailbreak persona only in capitals; lowercase "dan" is a first name.
INJECTION_CASED = [re.compile(r"\bDAN\b")]

# The assistant quoting or announcing its own instructions.
LEAK = [
    re.compile(r"\b(?:my|the)\s+(?:system\s+)?(?:instructions|prompt|system prompt|guidelines)\s+"
               r"(?:is|are|say|says|read|reads|state|states)\b"),
    re.compile(r"\bhere (?:is|are) my (?:system\s+|initial\s+|original\s+)?(?:prompt|instructions)\b"),
    re.compile(r"\b(?:developer|debug|admin|jailbreak|dan|god) mode (?:is )?(?:now )?(?:enabled|"
               r"activated|on|unlocked)\b"),
]
LEAK_NGRAM = 8  # tokens: a run this long copied from the system prompt is a quote, not chance
LEAK_MIN_SHARED = 3  # shared n-grams: a span of at least LEAK_NGRAM + 2 tokens

# Not "someone else" alone: fraud victims say it ("someone else used my card").
_THIRD_PARTY = (r"(?:neighbou?r|another (?:customer|person|client|user)|"
                r"other (?:customers?|people|clients)|my ex\b|ex-(?:wife|husband|partner)|co-?worker|"
                r"colleague|boss|stranger|<person_[0-9a-f]+>'s)")
_PRIVATE = (r"(?:balance|home address|address|phone number|account (?:details|number|info|"
            r"information)|transactions|statements?|card (?:number|details)|date of birth|pin|"
            r"password|salary|email address)")

# Requests for fraud, or for data about someone who is not the customer.
POLICY = [
    re.compile(rf"\b{_PRIVATE}\b.{{0,40}}{_THIRD_PARTY}"),
    re.compile(rf"{_THIRD_PARTY}\s*(?:'s\s+)?(?:\w+\s+)?{_PRIVATE}\b"),
    re.compile(rf"\b(?:give|tell|send|show|find|get|look up)\s+me\b.{{0,30}}\b{_PRIVATE}\s+of\s+<person_"),
    re.compile(r"\b(?:they|he|she)\s+(?:banks?|bank|has an account|have an account)\s+(?:with|at)\s+"
               r"(?:you|your bank)\b"),
    re.compile(r"\b(?:fake|forged?|forgery|counterfeit|falsif(?:y|ied))\b.{0,25}\b(?:statements?|"
               r"documents?|ids?|identity|payslips?|pay stubs?|invoices?|letters?|receipts?|"
               r"signatures?|cheques?|checks?)\b"),
    re.compile(r"\bso (?:that )?(?:it|they|this|the bank|nobody|no one)\s+(?:isn't|is not|aren't|are not|"
               r"won't be|doesn't get|don't get|won't get|never gets?|can't be|doesn't|won't)\s+"
               r"(?:reported|flagged|detected|noticed|traced|report)\b"),
    re.compile(r"\b(?:avoid|evade|dodge|get around|bypass|stay under|slip under)\b.{0,30}\b(?:"
               r"reporting|being reported|report|detection|aml|kyc|the irs|tax authorit(?:y|ies)|"
               r"being flagged|being traced)\b"),
    re.compile(r"\blaunder(?:ing)?\b"),
    re.compile(r"\bstructur(?:e|ing)\b.{0,20}\b(?:deposits?|cash|payments?|withdrawals?)\b"),
    re.compile(rf"\b(?:someone|somebody) else's\s+(?:account\s+)?{_PRIVATE}"),
]


def normalise(text: str) -> str:
    """Lowercase with typographic apostrophes folded, so patterns need one spelling."""
    return text.replace("\u2019", "'").replace("\u2018", "'").lower()


def matches(patterns: list[re.Pattern], text: str) -> bool:
    return any(p.search(text) for p in patterns)


def is_refusal(output: str) -> bool:
    return matches(REFUSAL, normalise(output[:REFUSAL_WINDOW]))


def is_injection_attempt(user_text: str) -> bool:
    return matches(INJECTION, normalise(user_text)) or matches(INJECTION_CASED, user_text)


def is_policy_violation(user_text: str) -> bool:
    return matches(POLICY, normalise(user_text))
