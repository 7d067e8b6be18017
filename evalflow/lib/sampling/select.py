"""The five passes that fill the budget, in order (the formula is in the package docstring)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
import polars as pl

from evalflow.lib.sampling.allocate import largest_remainder
from evalflow.lib.sampling.dedup import DuplicateGuard
from evalflow.lib.sampling.facets import Facet
from evalflow.lib.sampling.pools import CandidatePool
from evalflow.lib.sampling.strata import NO_FAILURE, NO_INTENT

COVERAGE = "intent coverage"
FACET = "facet coverage"
FLOOR_SMALL = "floor for small stratum"
FLOOR = "stratum floor"
PROPORTIONAL = "stratum allocation"


@dataclass
class PriorityGroup:
    key: str
    category: str
    reason: str
    rows: np.ndarray
    # Set for a group that only stands in for a failure mode: it stops once the mode is in the sample.
    until_mode: str | None = None


class Selector:
    def __init__(self, frame: pl.DataFrame, budget: int, seed: int, max_per_session: int,
                 guard: DuplicateGuard, novelty_window: int | None = None):
        self.budget = budget
        self.seed = seed
        self.max_per_session = max_per_session
        self.guard = guard
        self.novelty_window = novelty_window
        self.stratum = frame["stratum"].to_list()
        self.intent = frame["_intent"].to_list()
        self.session = frame["_session"].to_list()
        self.bucket = np.asarray(frame["time_bucket"].to_list(), dtype=object)
        self.primary = frame["primary_failure"].to_list()
        self.modes = [m or [] for m in frame["failure_modes"].to_list()]
        self.modes_chosen: Counter = Counter()
        self.chosen: list[int] = []
        self.reasons: list[str] = []
        self._is_chosen = np.zeros(frame.height, dtype=bool)
        self.session_picks: Counter = Counter()
        self.session_blocked: set[int] = set()
        self.intent_picks: Counter = Counter()
        self.stratum_picks: Counter = Counter()
        self.bucket_picks: Counter = Counter()
        self.bucket_population = Counter(self.bucket.tolist())
        self.stratum_bucket_picks: dict[str, Counter] = defaultdict(Counter)

        by_stratum: dict[str, list[int]] = defaultdict(list)
        for row, key in enumerate(self.stratum):
            by_stratum[key].append(row)
        self.stratum_size = {k: len(v) for k, v in by_stratum.items()}
        self.intent_size = Counter(self.intent)
        self.stratum_intent = {k: self.intent[v[0]] for k, v in by_stratum.items()}
        self.stratum_failure = {k: self.primary[v[0]] for k, v in by_stratum.items()}
        self.pools = {k: self._pool(f"stratum:{k}", np.asarray(v), self.stratum_bucket_picks[k])
                      for k, v in sorted(by_stratum.items())}

    # -- bookkeeping ---------------------------------------------------------------------------

    @property
    def full(self) -> bool:
        return len(self.chosen) >= self.budget

    def _pool(self, key: str, rows: np.ndarray, picks: Counter) -> CandidatePool:
        return CandidatePool(key, rows, self.bucket[rows], self.seed, picks)

    def _usable(self, row: int) -> bool:
        if self._is_chosen[row]:
            return False
        if self.session_picks[self.session[row]] >= self.max_per_session:
            self.session_blocked.add(row)
            return False
        return not self.guard.is_duplicate(row)

    def _load(self, bucket: str) -> float:
        return self.bucket_picks[bucket] / self.bucket_population[bucket]

    def _take(self, pool: CandidatePool, reason: str) -> int | None:
        row = pool.take(self._usable, self._load, self.guard.novelty_order, self.novelty_window)
        if row is None:
            return None
        self._record(row, reason)
        if pool.bucket_picks is not self.stratum_bucket_picks[self.stratum[row]]:
            pool.bucket_picks[self.bucket[row]] += 1
        return row

    def _take_first(self, rows: np.ndarray, reason: str) -> int | None:
        """The first usable row of ``rows`` in the given order."""
        for row in rows.tolist():
            if self._usable(row):
                self._record(row, reason)
                return row
        return None

    def _record(self, row: int, reason: str) -> None:
        stratum, bucket = self.stratum[row], self.bucket[row]
        self.chosen.append(row)
        self.reasons.append(reason)
        self._is_chosen[row] = True
        self.guard.add(row)
        self.session_picks[self.session[row]] += 1
        self.intent_picks[self.intent[row]] += 1
        self.stratum_picks[stratum] += 1
        self.bucket_picks[bucket] += 1
        self.modes_chosen.update(set(self.modes[row]))
        self.stratum_bucket_picks[stratum][bucket] += 1

    # -- passes --------------------------------------------------------------------------------

    def priority(self, groups: list[PriorityGroup], cap: int) -> None:
        """Round-robin over groups: the group with the fewest picks, then the category with the
        fewest picks (every category before any gets a second), then the group's order. A
        group with ``until_mode`` retires once a trace with that mode is in the sample."""
        limit = min(cap, self.budget)
        pools = [self._pool(f"group:{g.key}", g.rows, Counter()) for g in groups]
        alive = set(range(len(groups)))
        group_picks: Counter = Counter()
        category_picks: Counter = Counter()
        while len(self.chosen) < limit and alive:
            g = min(alive, key=lambda i: (group_picks[i], category_picks[groups[i].category], i))
            if groups[g].until_mode and self.modes_chosen[groups[g].until_mode]:
                alive.discard(g)
                continue
            if self._take(pools[g], groups[g].reason) is None:
                alive.discard(g)
                continue
            group_picks[g] += 1
            category_picks[groups[g].category] += 1

    def intent_coverage(self, min_traces: int, typical: dict[str, np.ndarray] | None = None) -> None:
        """One trace for each intent with >= min_traces eligible traces that has none yet
        (larger intents first): its most typical usable trace when ``typical`` gives the
        intent's rows in that order (farthest-first would hand the intent's oddest trace in),
        else from the intent's largest stratum that still offers one."""
        sizes = Counter(i for i in self.intent if i != NO_INTENT)
        strata_of: dict[str, list[str]] = defaultdict(list)
        for key in sorted(self.pools, key=lambda k: (-self.stratum_size[k], k)):
            strata_of[self.stratum_intent[key]].append(key)
        for intent in sorted(sizes, key=lambda i: (-sizes[i], i)):
            if self.full:
                return
            if sizes[intent] < min_traces or self.intent_picks[intent]:
                continue
            if typical and intent in typical and self._take_first(typical[intent], COVERAGE) is not None:
                continue
            for key in strata_of[intent]:
                if self._take(self.pools[key], COVERAGE) is not None:
                    break

    def facet_coverage(self, facets: list[Facet]) -> None:
        """One trace for each facet with no pick yet, farthest-first over facets: the next pick
        goes to the facet whose anchor has the lowest highest-cosine to the chosen traces (ties:
        larger facet, intent, anchor), from the facet's own pool (time round-robin, novelty)."""
        closeness = self.guard.closeness
        if closeness is None or not facets:
            return
        pools = [self._pool(f"facet:{f.intent}:{f.anchor}", f.rows, Counter()) for f in facets]
        open_facets = list(range(len(facets)))
        while not self.full:
            open_facets = [i for i in open_facets if not self._is_chosen[facets[i].rows].any()]
            if not open_facets:
                return
            i = min(open_facets, key=lambda i: (float(closeness[facets[i].anchor]),
                                                -len(facets[i].rows), facets[i].intent,
                                                facets[i].anchor))
            if self._take(pools[i], FACET) is None:
                open_facets.remove(i)

    def floor(self, floor: int) -> None:
        """Up to `floor` traces per stratum, level by level. Within a level the next trace goes
        to the intent with the lowest (picks + 1) / traces (D'Hondt: when the budget runs out
        here, intents end up close to proportional and none is skipped for a tiny one's floor);
        within an intent to its no-failure strata first (failures had pass 1), larger first."""
        total = len(self.stratum)
        order = sorted(self.pools, key=lambda k: (self.stratum_failure[k] != NO_FAILURE,
                                                  -self.stratum_size[k], k))
        for level in range(1, floor + 1):
            queues: dict[str, list[str]] = defaultdict(list)
            for key in order:
                if self.stratum_picks[key] < level:
                    queues[self.stratum_intent[key]].append(key)
            while queues and not self.full:
                intent = min(queues, key=lambda i: ((self.intent_picks[i] + 1) / self.intent_size[i], i))
                key = queues[intent].pop(0)
                if not queues[intent]:
                    del queues[intent]
                small = self.stratum_size[key] * self.budget / total < level
                self._take(self.pools[key], FLOOR_SMALL if small else FLOOR)

    def proportional(self) -> None:
        """The rest of the budget by largest remainder over stratum sizes, capped by what each
        pool still offers; shortfalls (duplicates, full sessions) are dealt again."""
        while not self.full:
            room = {k: len(p) for k, p in self.pools.items()}
            quotas = largest_remainder(self.stratum_size, self.budget - len(self.chosen), room)
            before = len(self.chosen)
            for key in sorted(quotas):
                for _ in range(quotas[key]):
                    if self._take(self.pools[key], PROPORTIONAL) is None:
                        break
            if len(self.chosen) == before:
                return
