"""Failure-mode codes, their severities, and the thresholds of every signal rule.

Severity (0..1) says how much a failure of that kind hurts a user or the business, so the
failure taxonomy can rank clusters by frequency x severity:

| mode | severity | why |
|---|---|---|
| injection_succeeded | 1.0 | the assistant leaked its instructions: a security incident |
| policy_complied | 1.0 | the assistant helped with fraud or disclosed someone else's data |
| toxic_answer | 1.0 | the assistant insulted, threatened or abused the customer |
| unsupported_answer | 0.9 | a confident wrong answer (hallucination-like) misleads the customer |
| error | 0.8 | the user got nothing |
| empty_output | 0.7 | the user got nothing, and no error was raised to alert anyone |
| refusal | 0.6 | a legitimate request was turned away |
| tool_error | 0.6 | the assistant could not act (a wrong argument or a broken backend) |
| negative_feedback | 0.5 | the user said it was bad, reason unknown |
| prompt_injection | 0.5 | an attack attempt (a failure only if it also succeeded, see above) |
| policy_violation | 0.5 | a request that must be refused (a failure only if complied with) |
| toxic_request | 0.5 | an abusive customer turn (a signal: the answer still has to stay civil) |
| low_retrieval_score | 0.4 | the answer had poor material to stand on |
| verbose_output | 0.3 | costly and tiring, usually still correct |
| latency_outlier | 0.3 | slow, but answered |
| cost_outlier | 0.3 | expensive, but answered |
"""

from __future__ import annotations

from dataclasses import dataclass

ERROR = "error"
TOOL_ERROR = "tool_error"
REFUSAL = "refusal"
NEGATIVE_FEEDBACK = "negative_feedback"
EMPTY_OUTPUT = "empty_output"
VERBOSE_OUTPUT = "verbose_output"
UNSUPPORTED_ANSWER = "unsupported_answer"
LOW_RETRIEVAL_SCORE = "low_retrieval_score"
LATENCY_OUTLIER = "latency_outlier"
COST_OUTLIER = "cost_outlier"
PROMPT_INJECTION = "prompt_injection"
INJECTION_SUCCEEDED = "injection_succeeded"
POLICY_VIOLATION = "policy_violation"
POLICY_COMPLIED = "policy_complied"
TOXIC_REQUEST = "toxic_request"
TOXIC_ANSWER = "toxic_answer"

FAILURE_MODES: tuple[str, ...] = (
    ERROR, TOOL_ERROR, REFUSAL, NEGATIVE_FEEDBACK, EMPTY_OUTPUT, VERBOSE_OUTPUT,
    UNSUPPORTED_ANSWER, LOW_RETRIEVAL_SCORE, LATENCY_OUTLIER, COST_OUTLIER, PROMPT_INJECTION,
    INJECTION_SUCCEEDED, POLICY_VIOLATION, POLICY_COMPLIED, TOXIC_REQUEST, TOXIC_ANSWER,
)

SEVERITY: dict[str, float] = {
    INJECTION_SUCCEEDED: 1.0,
    POLICY_COMPLIED: 1.0,
    TOXIC_ANSWER: 1.0,
    UNSUPPORTED_ANSWER: 0.9,
    ERROR: 0.8,
    EMPTY_OUTPUT: 0.7,
    REFUSAL: 0.6,
    TOOL_ERROR: 0.6,
    NEGATIVE_FEEDBACK: 0.5,
    PROMPT_INJECTION: 0.5,
    POLICY_VIOLATION: 0.5,
    TOXIC_REQUEST: 0.5,
    LOW_RETRIEVAL_SCORE: 0.4,
    VERBOSE_OUTPUT: 0.3,
    LATENCY_OUTLIER: 0.3,
    COST_OUTLIER: 0.3,
}

DIFFICULTY_BUCKETS = ("easy", "medium", "hard")


@dataclass(frozen=True)
class SignalConfig:
    """Thresholds of the rules (the module docstrings of rules, outliers, grounding and
    difficulty explain each one)."""

    # Robust statistics (outliers.py): a group needs this many reference traces, else the
    # next coarser group is used (intent x model -> model -> all traces).
    min_group_size: int = 30
    outlier_z: float = 3.5
    outlier_min_ratio: float = 3.0  # and at least this many times the group's median
    verbose_min_tokens: int = 200  # a runaway answer is long in absolute terms too
    # Feedback (rules.py): scores normalised to 0..1; at or under this is negative.
    low_feedback_score: float = 0.3
    # Retrieval (rules.py): best score under this, for scores on a 0..1 scale.
    min_retrieval_score: float = 0.5
    # Grounding (grounding.py): an answer sentence "restates" a context sentence when at least
    # this many of the context sentence's tokens come back in order, and at least this share
    # of them.
    restate_min_tokens: int = 4
    restate_min_share: float = 0.3
    # Difficulty (difficulty.py): weights of turns, context length, tool calls, intent rarity.
    difficulty_weights: tuple[float, float, float, float] = (0.3, 0.3, 0.2, 0.2)
    context_tokens_easy: int = 256
    context_tokens_hard: int = 32_768
    # None: tertiles of the window's difficulty; or fixed (easy_max, medium_max) cut points.
    difficulty_cuts: tuple[float, float] | None = None
