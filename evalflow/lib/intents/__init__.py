"""Intent discovery: what users ask for, as named intents with ids that stay put between runs.

    result = discover_intents(embeddings, texts, previous=last_catalog, seed=0, now=run_time)
    result.intent_ids[i], result.confidence[i], result.low_confidence[i]   # per row
    result.catalog        # CatalogEntry per intent: id, name, keywords, examples, size, share, ...
    result.events         # IntentEvent: birth / death / merge / split / continue vs. previous
    result.params         # every choice made from the data, with the reason

Method (each module's docstring has the measurements behind its choices):
distinct vectors (`reduce`) -> seeded fit sample of at most 12,000 -> UMAP 5-d
(30 neighbours, min_dist 0, cosine, random_state=seed) -> HDBSCAN candidates (excess of mass
over a min_cluster_size grid from 3, and similarity cuts of a fine condensed tree), the one
with the highest k-NN-graph modularity within a 10% noise budget (`cluster`; no intent size
assumed) -> unsampled rows to their nearest fitted neighbours -> clusters that are a value
(a merchant, a city) rather than a request dissolved (`values`) -> with a previous catalog,
re-fit artefacts undone (`stability.reconcile`) -> ids matched to the previous catalog by
centroid (`stability`) -> a reviewer's decisions (`overrides`: rename, merge, split, pin) ->
every row to the intent with the nearest anchor centroid (the previous centroid for an intent
that continues) -> c-TF-IDF names without value tokens (`naming`).

Noise policy: nearest intent with a low-confidence flag, not an "unclustered" bucket. Rows
HDBSCAN called noise get the intent whose anchor centroid (original space) is nearest; they
(except those whose nearest clustered rows, ten or half the typical intent's size if fewer,
at least three, are at least 70% members of that intent: `cluster.surrounded_noise`,
confidence 0.5),
rows far below their intent's typical similarity to its centroid (UMAP glues even unrelated
vectors to some cluster), and unsampled rows whose nearest fitted neighbours disagree or are
noise get confidence < 0.5 and ``low_confidence`` True. ``noise_share`` is the share of such
rows. Why: coverage sampling stratifies by intent, and a catch-all bucket would be one large,
incoherent stratum that hides
rare intents' borderline cases inside it; with nearest-intent assignment every trace counts
towards an intent a person can read, and a sampler that wants the odd ones out (novel requests,
drift) selects ``low_confidence`` rows explicitly. The catalog's sizes and shares count all rows
(shares sum to 1).

Text: `text.intent_text` / `text.trace_intent_text` (placeholders without their digests, the
session's first user turn as context) for examples and names; the model embeds
`text.model_text` of it (slot values, i.e. placeholders, amounts and numbers, removed).
"""

from __future__ import annotations

import numpy as np

from evalflow.lib.intents.models import CatalogEntry, IntentEvent, IntentResult
from evalflow.lib.intents.text import intent_text, model_text, normalize_placeholders, trace_intent_text

__all__ = [
    "discover_intents",
    "IntentResult",
    "CatalogEntry",
    "IntentEvent",
    "cluster_texts_for_cli",
    "intent_text",
    "model_text",
    "trace_intent_text",
    "normalize_placeholders",
    "MATCH_THRESHOLD",
]


def __getattr__(name: str):
    # The clustering stack (scikit-learn, UMAP, HDBSCAN: over a second to import) loads only
    # when discover_intents is used, not whenever a module of this package is imported: every
    # file under evalflow/defs is imported when Dagster loads the code location.
    if name in ("discover_intents", "MATCH_THRESHOLD"):
        from evalflow.lib.intents import discover

        return getattr(discover, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def cluster_texts_for_cli(ids: list, texts: list[str], embeddings: np.ndarray, *, seed: int = 0,
                          previous: list[CatalogEntry] | None = None,
                          overrides=None) -> tuple[list[dict], IntentResult]:
    """Rows for `evalflow cluster`, {"id", "intent_id", "intent_name", "confidence"} per input, and
    the whole result (its catalog is what ``--catalog`` keeps for the next run).

    Every row gets an intent (noise policy above); confidence < 0.5 marks HDBSCAN noise.
    ``previous`` and ``overrides`` as in `discover_intents`: ids kept from an earlier catalog, and
    a reviewer's decisions.
    """
    if len(ids) != len(texts):
        raise ValueError(f"ids ({len(ids)}) and texts ({len(texts)}) differ in length")
    from evalflow.lib.intents.discover import discover_intents

    result = discover_intents(np.asarray(embeddings, dtype=np.float32), list(texts), seed=seed,
                              previous=previous, overrides=overrides)
    names = {e.intent_id: e.name for e in result.catalog}
    rows = [
        {"id": row_id, "intent_id": intent_id, "intent_name": names.get(intent_id),
         "confidence": round(float(conf), 4)}
        for row_id, intent_id, conf in zip(ids, result.intent_ids, result.confidence)
    ]
    return rows, result
