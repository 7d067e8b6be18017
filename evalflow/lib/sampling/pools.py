"""Candidate pools: the traces of one stratum (or failure cluster) in the order they are offered.

Within a pool the traces of each time bucket are shuffled with a generator seeded by
(seed, sha256 of the pool's key), so a pool's order depends on the seed and its own members
only. Each offer comes from the bucket this pool has drawn least from so far (ties: the bucket
least represented in the whole sample relative to its population, then the oldest):
round-robin across time. Within that bucket, when embeddings are given, the offer is the most
novel of the next ``novelty_window`` candidates in shuffled order (the lowest highest-cosine to
any trace chosen so far, anywhere in the sample; ties: shuffled order): picks spread over the
sub-topics of a stratum instead of landing where its traffic is densest; traces without an
embedding (zero rows) come after the embedded ones. Without embeddings, or with a window of 1,
the shuffled order alone. Traces that can never be picked (already chosen,
session full, near-duplicate) are dropped as they are met; all three conditions only grow.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Callable

import numpy as np


def pool_rng(seed: int, key: str) -> np.random.Generator:
    digest = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, digest])


class CandidatePool:
    def __init__(self, key: str, rows: np.ndarray, buckets: np.ndarray, seed: int,
                 bucket_picks: Counter):
        rng = pool_rng(seed, key)
        self.key = key
        self._queues: dict[str, list[int]] = {}
        for bucket in sorted(set(buckets.tolist())):
            members = rows[buckets == bucket]
            self._queues[bucket] = members[rng.permutation(len(members))].tolist()
        # Shared with the selector for strata (picks made by any phase count), own for clusters.
        self.bucket_picks = bucket_picks

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def take(self, usable: Callable[[int], bool], global_load: Callable[[str], float],
             novelty: Callable[[list[int]], np.ndarray | None] | None = None,
             window: int | None = None) -> int | None:
        """The next usable trace, or None when the pool is exhausted."""
        while True:
            live = [b for b, q in self._queues.items() if q]
            if not live:
                return None
            bucket = min(live, key=lambda b: (self.bucket_picks[b], global_load(b), b))
            queue = self._queues[bucket]
            at = 0
            if novelty is not None and (window is None or window > 1):
                keys = novelty(queue if window is None else queue[:window])
                if keys is not None:
                    at = int(np.argmin(keys))
            row = queue.pop(at)
            if usable(row):
                return row
