"""The LLM judge: an OpenAI-compatible chat-completions client, prompt templates per dimension,
and the calibration against human consensus labels that a judge must pass before it labels
anything. See docs/judge.md.
"""
