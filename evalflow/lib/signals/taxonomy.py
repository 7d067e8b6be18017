"""The failure taxonomy: failed traces grouped by failure category x intent, ranked.

Categories (a trace with several modes joins the category of its most severe mode, ties going
to the earlier category below; negative feedback names a category only when it is the trace's
only mode, because a thumbs down next to a detected cause is explained by that cause):

| category | modes | reads as |
|---|---|---|
| prompt_injection | injection_succeeded, prompt_injection | attacks on the instructions |
| policy | policy_complied, policy_violation | fraud / other people's data |
| toxicity | toxic_answer, toxic_request | abuse: an insulting answer, or an abusive customer |
| hallucination | unsupported_answer | answer contradicts its sources |
| error | error | the request failed |
| empty_output | empty_output | nothing came back |
| refusal | refusal | a customer turned away |
| tool_error | tool_error | a tool call failed (bad arguments, broken backend) |
| retrieval_miss | low_retrieval_score | nothing relevant was retrieved |
| verbose | verbose_output | runaway answers |
| latency_cost | latency_outlier, cost_outlier | slow or expensive |
| dissatisfaction | negative_feedback alone | the user was unhappy, cause not detected |

A cluster is one category x one intent: `failure_cluster_id` = "F-<category>-<intent_id>"
("unassigned" for traces without an intent), stable as long as the intent id is. Its
`severity` is the mean severity of its traces (config.SEVERITY, each trace's most severe mode),
`share_of_failures` its traces / all failed traces, `score` = share_of_failures x severity
(frequency x severity), and `rank` 1 is the highest score (ties: more traces first, then id).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from evalflow.lib.common.report import markdown_cell, markdown_table
from evalflow.lib.signals import config as c

CATEGORIES: dict[str, tuple[str, ...]] = {
    "prompt_injection": (c.INJECTION_SUCCEEDED, c.PROMPT_INJECTION),
    "policy": (c.POLICY_COMPLIED, c.POLICY_VIOLATION),
    "toxicity": (c.TOXIC_ANSWER, c.TOXIC_REQUEST),
    "hallucination": (c.UNSUPPORTED_ANSWER,),
    "error": (c.ERROR,),
    "empty_output": (c.EMPTY_OUTPUT,),
    "refusal": (c.REFUSAL,),
    "tool_error": (c.TOOL_ERROR,),
    "retrieval_miss": (c.LOW_RETRIEVAL_SCORE,),
    "verbose": (c.VERBOSE_OUTPUT,),
    "latency_cost": (c.LATENCY_OUTLIER, c.COST_OUTLIER),
    "dissatisfaction": (c.NEGATIVE_FEEDBACK,),
}
_CATEGORY_OF = {mode: category for category, modes in CATEGORIES.items() for mode in modes}
_ORDER = {category: i for i, category in enumerate(CATEGORIES)}
UNASSIGNED = "unassigned"

CLUSTER_SCHEMA = {
    "failure_cluster_id": pl.String, "category": pl.String, "intent_id": pl.String,
    "intent_name": pl.String, "traces": pl.Int64, "share_of_failures": pl.Float64,
    "severity": pl.Float64, "score": pl.Float64, "rank": pl.Int64,
}


@dataclass
class FailureTaxonomy:
    clusters: pl.DataFrame  # CLUSTER_SCHEMA, ordered by rank
    members: pl.DataFrame  # trace_id, failure_cluster_id


def primary_category(modes: list[str]) -> str | None:
    causes = [m for m in modes if m != c.NEGATIVE_FEEDBACK and m in _CATEGORY_OF]
    if not causes:
        return "dissatisfaction" if c.NEGATIVE_FEEDBACK in modes else None
    top = max(causes, key=lambda m: (c.SEVERITY[m], -_ORDER[_CATEGORY_OF[m]]))
    return _CATEGORY_OF[top]


def build_failure_taxonomy(signals: pl.DataFrame, intent_names: dict[str, str] | None = None) -> FailureTaxonomy:
    names = intent_names or {}
    failed = signals.filter(pl.col("is_failure")).select("trace_id", "intent_id", "failure_modes", "severity")
    rows = []
    for trace_id, intent_id, modes, severity in failed.iter_rows():
        category = primary_category(list(modes))
        if category is None:
            continue
        rows.append((trace_id, category, intent_id, severity))
    members = pl.DataFrame(rows, schema={"trace_id": pl.String, "category": pl.String,
                                         "intent_id": pl.String, "severity": pl.Float64}, orient="row")
    members = members.with_columns(
        ("F-" + pl.col("category") + "-" + pl.col("intent_id").fill_null(UNASSIGNED)).alias("failure_cluster_id"))
    total = max(members.height, 1)
    clusters = (
        members.group_by("failure_cluster_id", "category", "intent_id")
        .agg(pl.len().cast(pl.Int64).alias("traces"), pl.col("severity").mean().alias("severity"))
        .with_columns(
            pl.col("intent_id").replace_strict(names, default=pl.col("intent_id"), return_dtype=pl.String)
            .fill_null("(no intent)").alias("intent_name"),
            (pl.col("traces") / total).alias("share_of_failures"))
        .with_columns((pl.col("share_of_failures") * pl.col("severity")).alias("score"))
        .sort(["score", "traces", "failure_cluster_id"], descending=[True, True, False])
        .with_row_index("rank", offset=1)
        .with_columns(pl.col("rank").cast(pl.Int64))
        .select(list(CLUSTER_SCHEMA))
    )
    return FailureTaxonomy(clusters=clusters.cast(CLUSTER_SCHEMA),
                           members=members.select("trace_id", "failure_cluster_id"))


def taxonomy_markdown(taxonomy: FailureTaxonomy, top_intents: int = 10) -> str:
    """Rows: failure categories (in taxonomy order); columns: the intents with the most failed
    traces, then "other" and "total"; cells: failed traces. The five top clusters follow."""
    clusters = taxonomy.clusters
    if clusters.height == 0:
        return "No failed traces."
    by_intent = (clusters.group_by("intent_id", "intent_name").agg(pl.col("traces").sum())
                 .sort(["traces", "intent_name"], descending=[True, False]))
    top = by_intent.head(top_intents)
    top_ids = top["intent_id"].to_list()
    header = ["category", *top["intent_name"].to_list(), "other", "total"]
    counts = {(cat, iid): n for cat, iid, n in clusters.select("category", "intent_id", "traces").iter_rows()}
    present = [cat for cat in CATEGORIES if cat in set(clusters["category"].to_list())]
    rows = []
    for category in present:
        row = [counts.get((category, iid), 0) for iid in top_ids]
        total = sum(n for (cat, _), n in counts.items() if cat == category)
        rows.append([category, *row, total - sum(row), total])
    lines = [markdown_table(header, rows), ""]
    lines.append("Top clusters (frequency x severity):")
    lines.append("")
    for rank, cid, n, share, severity in clusters.head(5).select(
            "rank", "failure_cluster_id", "traces", "share_of_failures", "severity").iter_rows():
        lines.append(f"{rank}. {markdown_cell(cid)}: {n} traces ({share:.1%} of failures), severity {severity:.2f}")
    return "\n".join(lines) + "\n"
