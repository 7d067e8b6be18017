"""Reading judge replies: JSON, a JSON object in a code fence, plain text ending in Pass/Fail;
anything else is unparseable, never guessed."""

from __future__ import annotations

import pytest

from evalflow.lib.judge.parse import parse_pairwise_reply, parse_reply
from evalflow.simulator.judge_server import MALFORMED_REPLIES, UNKNOWN_CASE_REPLY

# reply -> (verdict, how)
READABLE = [
    ('{"verdict": "Pass", "critique": "all facts right"}', "Pass", "json"),
    ('  {"verdict": "fail", "critique": "wrong fee"}\n', "Fail", "json"),
    ('{"critique": "ok", "verdict": " PASS ", "extra": 1}', "Pass", "json"),
    ('Here is my grading.\n```json\n{"verdict": "Fail", "critique": "made up a fee"}\n```', "Fail", "fenced_json"),
    ('```\n{"verdict": "Pass", "critique": "fine"}\n```', "Pass", "fenced_json"),
    ('```json\n{"verdict": "Pass"}\n```\nand again\n```json\n{"verdict": "Pass"}\n```', "Pass", "fenced_json"),
    ("The answer states the 60-day window correctly. Verdict: Pass", "Pass", "last_word"),
    ("The refund promise is not allowed by policy, so: FAIL.", "Fail", "last_word"),
    ("Verdict: **Fail**", "Fail", "last_word"),
    ("pass", "Pass", "last_word"),
    ('"Pass"', "Pass", "last_word"),
    ("Final answer: \u201cPass\u201d", "Pass", "last_word"),
]

UNREADABLE = [
    "",
    "   ",
    None,
    "I am not sure.",
    "Pass or fail? Hard to say.",
    "It passes.",  # a form of the word is not the word
    "Passed",
    '{"verdict": "Maybe", "critique": "unclear"}',
    '{"critique": "no verdict key"}',
    '{"verdict": true}',
    '{"verdict": "Pass", "critique": "cut off',  # truncated JSON is not read by its last word
    '{"verdict": "Fail"',
    '["Pass"]',
    "42",
    "null",
    '```json\n{"verdict": "Pass"}\n```\n```json\n{"verdict": "Fail"}\n```',  # fences that disagree
    '```json\n{"verdict": "Unsure"}\n```\nBut overall: Pass',  # a fenced object decides, and it has no verdict
    "Pass, although I would need the documents to be sure",
]


@pytest.mark.parametrize(("reply", "verdict", "how"), READABLE)
def test_readable_replies_give_their_verdict(reply, verdict, how):
    result = parse_reply(reply)
    assert (result.verdict, result.how) == (verdict, how)


@pytest.mark.parametrize("reply", UNREADABLE)
def test_anything_else_is_unparseable_not_guessed(reply):
    result = parse_reply(reply)
    assert (result.verdict, result.how, result.parsed) == (None, "unparseable", False)


def test_the_critique_comes_with_the_verdict():
    assert parse_reply('{"verdict": "Fail", "critique": "wrong fee"}').critique == "wrong fee"
    assert parse_reply('```json\n{"verdict": "Pass", "critique": "fine"}\n```').critique == "fine"
    assert parse_reply("Fees are right. Pass").critique == "Fees are right. Pass"
    assert parse_reply('{"verdict": "Pass", "critique": 3}').critique is None


@pytest.mark.parametrize("reply", [*MALFORMED_REPLIES, UNKNOWN_CASE_REPLY])
def test_every_malformed_reply_of_the_simulated_judge_is_unparseable(reply):
    assert parse_reply(reply).verdict is None


@pytest.mark.parametrize(("reply", "expected"), [
    ('{"preferred": "first", "critique": "clearer"}', "first"),
    ('```json\n{"preferred": "Second"}\n```', "second"),
    ("Both are equally good: tie", "tie"),
    ('{"preferred": "A"}', None),
    ('{"verdict": "Pass"}', None),
    ("I prefer the first one, it is shorter", None),
])
def test_pairwise_replies(reply, expected):
    assert parse_pairwise_reply(reply).verdict == expected
