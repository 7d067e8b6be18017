"""The LLM judge: an OpenAI-compatible chat-completions client, prompt templates per dimension,
and the calibration against human consensus labels that a judge must pass before it labels
anything. See docs/judge.md.

- cases.py: stable case ids, the 20% holdout and the tune/test split (hashes of the case id),
  the sha256 of what the judge sees of a case.
- prompts.py (+ prompts/, the packaged defaults): one template per dimension, variants side by
  side, versioned by the sha256 of their text; the user's folder is seeded from the defaults.
- parse.py: reading a reply (JSON, a fenced JSON object, text ending in Pass/Fail); never guessed.
- client.py: the HTTP client (concurrency, timeouts, retries, the verdict cache, usage counters).
- calibrate.py: calibration per dimension and prompt variant; judge labels from a calibrated judge.
- bias.py: position bias (pairwise, both orders) and verbosity bias.
- config.py: the judge settings. store.py: the stage's tables.
"""
