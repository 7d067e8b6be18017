"""Pause Python's cyclic garbage collector around bulk work.

Parsing and staging build millions of small dicts and lists, none of them cyclic. Each full
collection walks every live object, so with a large batch in memory the collector's passes
grew faster than the batch (measured: staging 100k traces took 8.9 s with it, see
benchmarks/ingest.py). Reference counting still frees everything as usual.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def paused_gc() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
