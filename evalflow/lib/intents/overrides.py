"""A reviewer's decisions on the intent catalog, honoured by every later clustering.

The file: ``<data>/intent_overrides.toml`` (``EVALFLOW_INTENT_OVERRIDES`` moves it; absent means no
decisions). Intents are named by their ids (``intent-0007``), as the catalog shows them::

    [[rename]]                       # the name a person reads, instead of the keyword name
    intent = "intent-0007"
    name = "card declined at a shop"

    [[merge]]                        # one intent: the first id stays, the others' rows join it
    intents = ["intent-0012", "intent-0031"]
    name = "dispute a card payment"  # optional

    [[split]]                        # two or more intents in place of one
    intent = "intent-0004"
    parts = 2                        # spherical k-means over its rows, or seeds from examples:
    # examples = [["lost my card"], ["card was stolen"]]   one list per part; a row whose text
    #                                  contains an example (any case) seeds that part
    names = ["lost card", "stolen card"]   # optional, one per part

    [[pin]]                          # keep it as its own intent whatever a re-fit finds
    intent = "intent-0009"

What each decision does to the next clusterings (`apply_overrides`, called by
`discover_intents` after this run's clusters got their ids from the previous catalog):

- rename: the intent keeps the reviewer's name (``reviewed_name``) for as long as its id lives;
  the keyword name stays in ``keywords``.
- merge: clusters holding any of the ids become one intent under the first id. The absorbed
  intents' centroids are kept as extra anchors of the merged intent (``anchors``, stored in the
  catalog), so a later re-fit that finds the absorbed request again as a new cluster (a "birth"
  with a fresh id) is folded back in, and its rows go to the merged intent in the final
  nearest-anchor assignment.
- split: the intent's rows are divided into the parts; each part gets a fresh id, is pinned (so
  a re-fit cannot join the parts again) and takes its name from ``names``. The old id ends
  (a "split" event). A split entry whose intent no longer exists does nothing, so the file can
  keep it.
- pin: the intent exists after every re-fit: if the re-fit found no cluster for it (a death,
  or a merge into a neighbour), it is put back at its previous centroid and takes the rows
  nearest to it; a re-fit's split of it is undone. A pinned intent with no rows left in the
  window stays in the catalog with size 0.

Decisions are applied in the order rename, merge, pin, split, and every one is recorded in the
run's events (``detail`` starts with "reviewer") and in ``params["overrides"]``. An entry naming
an id the catalog does not hold is reported there, not an error: ids of the reviewer's file can
have ended since.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from evalflow.lib.common.settings import text_setting

OVERRIDES_ENV = "EVALFLOW_INTENT_OVERRIDES"
OVERRIDES_FILE = "intent_overrides.toml"
SECTIONS = ("rename", "merge", "split", "pin")
SPLIT_ROUNDS = 20


class IntentOverridesError(ValueError):
    """The overrides file cannot be read as a reviewer meant it."""


@dataclass(frozen=True)
class Merge:
    intents: tuple[str, ...]
    name: str | None = None


@dataclass(frozen=True)
class Split:
    intent: str
    parts: int
    examples: tuple[tuple[str, ...], ...] | None = None
    names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Overrides:
    renames: dict[str, str] = field(default_factory=dict)
    merges: tuple[Merge, ...] = ()
    splits: tuple[Split, ...] = ()
    pins: frozenset[str] = frozenset()
    source: str = ""  # the file's text, for the window fingerprint

    @property
    def empty(self) -> bool:
        return not (self.renames or self.merges or self.splits or self.pins)

    def digest(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()


def overrides_path(data_dir: Path) -> Path:
    override = text_setting(OVERRIDES_ENV)
    return Path(override).expanduser() if override else Path(data_dir) / OVERRIDES_FILE


def load_overrides(data_dir: Path) -> Overrides:
    """The decisions in the overrides file (none when the default file is absent)."""
    path = overrides_path(data_dir)
    if not path.exists():
        if text_setting(OVERRIDES_ENV):
            raise IntentOverridesError(f"{OVERRIDES_ENV} names {path}, which does not exist")
        return Overrides()
    return read_overrides_file(path)


def read_overrides_file(path: Path) -> Overrides:
    """The decisions in one overrides file (`evalflow cluster --overrides`, or the data folder's)."""
    if not path.is_file():
        raise IntentOverridesError(f"{path} is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise IntentOverridesError(f"{path}: not UTF-8 text: {error}") from None
    try:
        return parse_overrides(text)
    except IntentOverridesError as error:
        raise IntentOverridesError(f"{path}: {error}") from None


def _text(entry: Mapping, key: str, where: str, required: bool = True) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise IntentOverridesError(f"{where}: {key} must be a non-empty string, got {value!r}")
    return value.strip()


def _entries(data: Mapping, section: str, allowed: set[str]) -> list[tuple[str, Mapping]]:
    entries = data.get(section) or []
    if not isinstance(entries, list):
        raise IntentOverridesError(f"{section} must be an array of tables ([[{section}]])")
    out = []
    for i, entry in enumerate(entries):
        where = f"{section}[{i}]"
        if not isinstance(entry, Mapping):
            raise IntentOverridesError(f"{where}: expected a table")
        unknown = sorted(set(entry) - allowed)
        if unknown:
            raise IntentOverridesError(f"{where}: unknown field(s) {', '.join(unknown)} "
                                       f"(expected {', '.join(sorted(allowed))})")
        out.append((where, entry))
    return out


def parse_overrides(text: str) -> Overrides:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise IntentOverridesError(f"not valid TOML: {error}") from None
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise IntentOverridesError(f"unknown section(s) {', '.join(unknown)} (expected "
                                   f"{', '.join(f'[[{s}]]' for s in SECTIONS)})")
    renames: dict[str, str] = {}
    for where, entry in _entries(data, "rename", {"intent", "name"}):
        intent = _text(entry, "intent", where)
        if intent in renames:
            raise IntentOverridesError(f"{where}: {intent} is renamed twice")
        renames[intent] = _text(entry, "name", where)
    merges = []
    merged: set[str] = set()
    for where, entry in _entries(data, "merge", {"intents", "name"}):
        intents = entry.get("intents")
        if not isinstance(intents, list) or len(intents) < 2 or not all(isinstance(i, str) and i.strip()
                                                                        for i in intents):
            raise IntentOverridesError(f"{where}: intents must list two or more ids, got {intents!r}")
        intents = tuple(i.strip() for i in intents)
        if len(set(intents)) != len(intents) or merged & set(intents):
            raise IntentOverridesError(f"{where}: an id appears twice among the merges")
        merged |= set(intents)
        merges.append(Merge(intents, _text(entry, "name", where, required=False)))
    splits = []
    for where, entry in _entries(data, "split", {"intent", "parts", "examples", "names"}):
        intent = _text(entry, "intent", where)
        examples = entry.get("examples")
        parts = entry.get("parts")
        if examples is not None:
            if not isinstance(examples, list) or len(examples) < 2 or not all(
                    isinstance(p, list) and p and all(isinstance(e, str) and e.strip() for e in p)
                    for p in examples):
                raise IntentOverridesError(f"{where}: examples must be two or more lists of texts, "
                                           f"got {examples!r}")
            if parts is not None and parts != len(examples):
                raise IntentOverridesError(f"{where}: parts = {parts} but {len(examples)} lists of examples")
            parts = len(examples)
            examples = tuple(tuple(e.strip() for e in p) for p in examples)
        if isinstance(parts, bool) or not isinstance(parts, int) or parts < 2:
            raise IntentOverridesError(f"{where}: parts must be an integer of 2 or more (or give examples), "
                                       f"got {parts!r}")
        names = entry.get("names")
        if names is not None:
            if not isinstance(names, list) or len(names) != parts or not all(isinstance(n, str) and n.strip()
                                                                             for n in names):
                raise IntentOverridesError(f"{where}: names must give one non-empty name per part ({parts})")
            names = tuple(n.strip() for n in names)
        if any(s.intent == intent for s in splits):
            raise IntentOverridesError(f"{where}: {intent} is split twice")
        splits.append(Split(intent, parts, examples, names))
    pins = set()
    for where, entry in _entries(data, "pin", {"intent"}):
        pins.add(_text(entry, "intent", where))
    clash = {s.intent for s in splits} & (merged | pins)
    if clash:
        raise IntentOverridesError(f"{', '.join(sorted(clash))}: split and also merged or pinned; "
                                   "choose one decision per intent")
    return Overrides(renames, tuple(merges), tuple(splits), frozenset(pins), text)


# --------------------------------------------------------------------------------------- applying

@dataclass
class Decisions:
    """Per cluster of this run, what reviewers decided (carried in the catalog from run to run)."""
    reviewed_name: list[str | None]
    pinned: list[bool]
    anchors: list[list[np.ndarray]]   # extra centroids that belong to this intent (merges)
    decision: list[str | None]         # what was decided, in words


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def spherical_parts(x: np.ndarray, w: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Rows of ``x`` (unit vectors, weights ``w``) to the nearest of the parts started at
    ``seeds``, centroids following their members until nothing moves. A part never empties:
    it keeps the row nearest its seed."""
    centres = np.asarray(seeds, dtype=np.float64)
    labels = None
    keep = (x @ centres.T).argmax(axis=0)  # per part, its closest row
    for _ in range(SPLIT_ROUNDS):
        new = (x @ centres.T).argmax(axis=1)
        new[keep] = np.arange(len(centres))
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        sums = np.zeros_like(centres)
        np.add.at(sums, labels, x * w[:, None])
        centres = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return labels


def kmeanspp_seeds(x: np.ndarray, w: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means++ seeds (cosine distance, row weights) from a seeded generator."""
    rng = np.random.default_rng(seed)
    p = w / w.sum()
    chosen = [int(rng.choice(len(x), p=p))]
    for _ in range(1, k):
        d = np.clip(1.0 - (x @ x[chosen].T).max(axis=1), 0.0, None) * w
        chosen.append(int(rng.choice(len(x), p=d / d.sum())) if d.sum() > 0 else int(np.argmax(d)))
    return x[chosen]


@dataclass
class _Cluster:
    intent_id: str
    inherited: list[str]
    reviewed_name: str | None = None
    pinned: bool = False
    anchors: list[np.ndarray] = field(default_factory=list)
    decision: str | None = None
    revived_centroid: np.ndarray | None = None  # a pinned intent put back with no rows yet
    alive: bool = True


@dataclass
class Applied:
    labels: np.ndarray        # distinct rows -> cluster 0..k-1
    ids: list[str]
    inherited: list[list[str]]
    centroids: np.ndarray     # k x d unit vectors (this run's, or the previous one for a revived pin)
    decisions: Decisions
    events: list              # IntentEvent: the reviewer's decisions as applied this run
    report: dict[str, Any]


def _add_decision(c: _Cluster, text: str) -> None:
    c.decision = text if not c.decision or text in c.decision else f"{c.decision}; {text}"


def apply_overrides(vectors: np.ndarray, counts: np.ndarray, texts: list[str], labels: np.ndarray,
                    ids: list[str], inherited: list[list[str]], previous: list | None,
                    overrides: Overrides | None, *, threshold: float, seed: int, next_number: int,
                    refit_splits: dict[str, list[str]] | None = None) -> Applied:
    """Reviewer decisions (``overrides``, plus what earlier runs stored in ``previous``) on this
    run's clusters: ``labels`` (distinct rows -> 0..k-1) with their matched ``ids``. See the module
    docstring for what each decision does. ``refit_splits``: previous id -> the new ids a re-fit
    split it into (from the id matching); ``next_number``: the first free id number."""
    from evalflow.lib.intents.models import IntentEvent
    from evalflow.lib.intents.stability import format_id

    overrides = overrides or Overrides()
    x = np.asarray(vectors, dtype=np.float64)
    w = np.asarray(counts, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64).copy()
    prev = {e.intent_id: e for e in (previous or [])}
    clusters = []
    for c, intent_id in enumerate(ids):
        e = prev.get(intent_id)
        clusters.append(_Cluster(intent_id, list(inherited[c]),
                                 reviewed_name=getattr(e, "reviewed_name", None) if e else None,
                                 pinned=bool(getattr(e, "pinned", False)) if e else False,
                                 anchors=[_unit(a) for a in (getattr(e, "anchors", None) or [])] if e else [],
                                 decision=getattr(e, "decision", None) if e else None))
    events: list = []
    report: dict[str, Any] = {"applied": [], "not_found": []}
    number = next_number

    def index_of(intent_id: str) -> int | None:
        return next((i for i, c in enumerate(clusters) if c.alive and c.intent_id == intent_id), None)

    def fold(src: int, dst: int) -> None:
        labels[labels == src] = dst
        clusters[dst].inherited += [i for i in clusters[src].inherited if i not in clusters[dst].inherited]
        clusters[src].alive = False

    def centroid(c: int) -> np.ndarray | None:
        rows = labels == c
        if not rows.any():
            return clusters[c].revived_centroid
        return _unit((x[rows] * w[rows, None]).sum(axis=0))

    # 1. merges
    for m in overrides.merges:
        target, absorbed = m.intents[0], m.intents[1:]
        present = [i for i in (index_of(iid) for iid in m.intents) if i is not None]
        if not present:
            report["not_found"].append(f"merge {', '.join(m.intents)}: none of these intents exists")
            continue
        keep = index_of(target)
        if keep is None:
            keep = present[0]
            clusters[keep].intent_id = target
        folded = []
        for i in present:
            if i != keep:
                folded.append(clusters[i].intent_id)
                clusters[keep].anchors += clusters[i].anchors
                fold(i, keep)
        k_cluster = clusters[keep]
        for iid in absorbed:
            if iid in prev and not any(np.allclose(a, _unit(prev[iid].centroid)) for a in k_cluster.anchors):
                k_cluster.anchors.append(_unit(prev[iid].centroid))
        if m.name:
            k_cluster.reviewed_name = m.name
        _add_decision(k_cluster, f"merged with {', '.join(absorbed)} by a reviewer")
        if folded:
            events.append(IntentEvent("merge", [target, *folded], [target],
                                      f"reviewer merge (intent_overrides): {', '.join(folded)} joined {target}"))
            report["applied"].append(f"merge {', '.join(m.intents)}")

    # 2. a cluster the previous catalog did not know (a birth, or a re-fit's split part) that is an
    # absorbed request of a merged intent is folded back into it
    for i, c in enumerate(clusters):
        if not c.alive or c.intent_id in prev or c.pinned:
            continue
        cen = centroid(i)
        if cen is None:
            continue
        best, best_sim = None, threshold
        for j, other in enumerate(clusters):
            if j == i or not other.alive or not other.anchors:
                continue
            sim = max(float(a @ cen) for a in other.anchors)
            if sim >= best_sim:
                best, best_sim = j, sim
        if best is not None:
            events.append(IntentEvent("merge", [clusters[best].intent_id], [clusters[best].intent_id],
                                      f"reviewer merge kept (intent_overrides): a new cluster at {best_sim:.3f} "
                                      f"to a request merged into {clusters[best].intent_id} joined it",
                                      round(best_sim, 4)))
            fold(i, best)

    # 3. pins: the file's, and the parts of reviewer splits (pinned for good)
    pinned = set(overrides.pins) | {iid for iid, e in prev.items() if getattr(e, "pinned", False)
                                    and (getattr(e, "decision", None) or "").startswith("split from")}
    for iid in sorted(pinned):
        i = index_of(iid)
        if i is None:
            if iid not in prev:
                report["not_found"].append(f"pin {iid}: no such intent")
                continue
            for c in clusters:  # a re-fit merged it into another cluster: that one no longer carries it
                if iid in c.inherited:
                    c.inherited.remove(iid)
            e = prev[iid]
            clusters.append(_Cluster(iid, [iid], reviewed_name=getattr(e, "reviewed_name", None), pinned=True,
                                     anchors=[_unit(a) for a in (getattr(e, "anchors", None) or [])],
                                     decision=getattr(e, "decision", None), revived_centroid=_unit(e.centroid)))
            events.append(IntentEvent("continue", [iid], [iid], "reviewer pin (intent_overrides): the re-fit found "
                                      "no cluster for it; kept at its previous centroid"))
            i = len(clusters) - 1
        for child in (refit_splits or {}).get(iid, []):
            j = index_of(child)
            if j is not None and j != i:
                fold(j, i)
                events.append(IntentEvent("merge", [iid], [iid], f"reviewer pin (intent_overrides): the re-fit's "
                                          f"split of {iid} undone"))
        clusters[i].pinned = True
        if iid in overrides.pins:
            _add_decision(clusters[i], "pinned by a reviewer")
        report["applied"].append(f"pin {iid}")

    # 4. splits
    for s in overrides.splits:
        i = index_of(s.intent)
        if i is None:
            report["not_found"].append(f"split {s.intent}: no such intent (already split, or ended)")
            continue
        rows = np.flatnonzero(labels == i)
        if len(rows) < s.parts:
            report["not_found"].append(f"split {s.intent}: {len(rows)} distinct texts, fewer than {s.parts} parts")
            continue
        xr, wr = x[rows], w[rows]
        if s.examples:
            seeds, missing = [], []
            for part in s.examples:
                needles = [e.lower() for e in part]
                hit = [r for r, row in enumerate(rows) if any(n in texts[row].lower() for n in needles)]
                if not hit:
                    missing.append(part[0])
                    continue
                seeds.append(_unit((xr[hit] * wr[hit, None]).sum(axis=0)))
            if missing:
                report["not_found"].append(f"split {s.intent}: no text of it contains {', '.join(map(repr, missing))}")
                continue
            seeds = np.stack(seeds)
        else:
            seeds = kmeanspp_seeds(xr, wr, s.parts, seed)
        part_of = spherical_parts(xr, wr, seeds)
        new_ids = []
        for p in range(s.parts):
            new_id = format_id(number)
            number += 1
            new_ids.append(new_id)
            clusters.append(_Cluster(new_id, [], reviewed_name=s.names[p] if s.names else None, pinned=True,
                                     decision=f"split from {s.intent} by a reviewer"))
            labels[rows[part_of == p]] = len(clusters) - 1
        clusters[i].alive = False
        events.append(IntentEvent("split", [s.intent], new_ids, f"reviewer split (intent_overrides): {s.intent} "
                                  f"into {', '.join(new_ids)}"))
        report["applied"].append(f"split {s.intent} -> {', '.join(new_ids)}")

    # 5. renames
    for iid, name in overrides.renames.items():
        i = index_of(iid)
        if i is None:
            report["not_found"].append(f"rename {iid}: no such intent")
            continue
        clusters[i].reviewed_name = name
        _add_decision(clusters[i], "renamed by a reviewer")
        report["applied"].append(f"rename {iid}")

    alive = [i for i, c in enumerate(clusters) if c.alive]
    remap = np.full(len(clusters), -1, dtype=np.int64)
    remap[alive] = np.arange(len(alive))
    cents = np.stack([centroid(i) for i in alive]) if alive else np.empty((0, x.shape[1]))
    labels = remap[labels]
    kept = [clusters[i] for i in alive]
    decisions = Decisions([c.reviewed_name for c in kept], [c.pinned for c in kept],
                          [c.anchors for c in kept], [c.decision for c in kept])
    return Applied(labels, [c.intent_id for c in kept], [c.inherited for c in kept], cents, decisions, events,
                   report)
