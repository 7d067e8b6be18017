"""Keep the PII stage off the network.

tldextract (which Presidio's email recognizer uses to validate top-level domains) downloads the
public suffix list on first use. With no network that prints errors and waits on timeouts; with
a network it is a call out of a stage that handles raw PII. tldextract ships a snapshot of the
list, so the extractor here reads that snapshot only: no suffix-list URLs, no cache directory.
"""

from __future__ import annotations

import types
from functools import lru_cache


@lru_cache(maxsize=1)
def offline_extractor():
    """A TLDExtract that never fetches: the bundled suffix-list snapshot, no disk cache."""
    import tldextract

    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


def patch_presidio_tldextract() -> None:
    """Point Presidio's email recognizer at the offline extractor (idempotent).

    The recognizer calls ``tldextract.extract(...)`` through its module-level ``tldextract``
    name; replacing that name (not the tldextract module itself) changes only Presidio.
    """
    from presidio_analyzer.predefined_recognizers.generic import email_recognizer

    extractor = offline_extractor()
    current = getattr(email_recognizer, "tldextract", None)
    if getattr(current, "__evalflow_offline__", False):
        return
    email_recognizer.tldextract = types.SimpleNamespace(
        extract=extractor, TLDExtract=extractor.__class__, __evalflow_offline__=True
    )
