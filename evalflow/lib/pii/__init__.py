"""PII detection and redaction.

Heavy imports (presidio, spaCy) happen only when a detector is built, so importing this package
stays cheap. The detector API lives in `evalflow.lib.pii.detect`.
"""
