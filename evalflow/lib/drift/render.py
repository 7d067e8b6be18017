"""The week's drift report for people: one self-contained HTML file and a markdown summary.

The HTML opens offline: styles inline, charts drawn by matplotlib as inline SVG (no GUI backend:
Figure objects render straight to SVG; text stays text, so it is small and searchable), no
script at all, nothing fetched. It holds, top to bottom: the alerts; every signal with its value,
threshold and one-line detail; the intent mix against each baseline (which intents moved, with
their share before and now); the golden queries' retrieval overlap; and each signal's trend over
the weeks of `drift_history` with its threshold and the weeks it breached.

The markdown summary is what a person reads in a minute: the week, its coverage, the alerts, a
table of every signal, and the intents that moved most.
"""

from __future__ import annotations

import html
import io
from datetime import date, timedelta
from typing import Any, Iterable

import polars as pl

from evalflow.lib.common.report import markdown_cell, markdown_table
from evalflow.lib.drift.report import ERROR, GOLDEN, NONE, PREVIOUS, WARN, SignalResult, WeekReport, pct

_ORDER = ("traffic", "intent_mix", "embedding", "system_prompt", "tool_schema", "prompt_template", "retrieval",
          "kb_changed_docs", "kb_new_docs", "staleness", "version_age", "safety_share", "safety_coverage",
          "safety_pass_rate", "score_inflation", "stall")
_SHARES = {"system_prompt", "tool_schema", "prompt_template", "kb_new_docs", "staleness", "safety_share",
           "safety_coverage", "safety_pass_rate", "stall"}
_COUNTS = {"traffic", "kb_changed_docs", "version_age"}
_VS_TEXT = {GOLDEN: "golden", PREVIOUS: "previous week", NONE: "—"}
_COLOURS = {ERROR: "#c0392b", WARN: "#d68910", None: "#2e7d32"}
_RC = {"svg.fonttype": "none", "svg.hashsalt": "evalflow-drift", "font.size": 8.5, "axes.titlesize": 9,
       "axes.spines.top": False, "axes.spines.right": False}


def _order_key(signal: str, baseline: str) -> tuple:
    base = signal.removesuffix("_nightly")
    return (_ORDER.index(base) if base in _ORDER else len(_ORDER), signal, (GOLDEN, PREVIOUS, NONE).index(baseline)
            if baseline in (GOLDEN, PREVIOUS, NONE) else 3)


def format_value(signal: str, value: float | None) -> str:
    if value is None:
        return "—"
    if signal == "score_inflation":
        return f"{100 * value:+.1f} pts"
    if signal in _SHARES:
        return pct(value, 2 if value < 0.1 else 1)
    if signal in _COUNTS:
        return f"{value:,.0f}"
    if signal == "retrieval":
        return f"{value:.2f}"
    if signal == "embedding":
        return f"{value:.2f} sd"
    return f"{value:.4f}"


def _status(severity: str | None) -> str:
    return severity or "ok"


# ----------------------------------------------------------------------------- markdown
def render_markdown(report: WeekReport) -> str:
    """The summary a person reads in a minute (markdown; every cell escaped)."""
    f = report.figures
    end = report.week_start + timedelta(days=6)
    lines = [f"# Drift report, week {report.week_start.isoformat()} to {end.isoformat()}", ""]
    days = f.get("days_with_data", 0)
    coverage = f"{days} of 7 days with data" + (" (partial week)" if days < 7 else "")
    golden = (f"compared with {f['golden']} and the week before" if f.get("golden")
              else f"compared with the week before only; {f['golden_note']}" if f.get("golden_note")
              else "no golden version yet")
    lines.append(f"{coverage} · {f.get('traces', 0):,} traces · {golden}")
    lines.append("")
    breaches = sorted(report.breaches(), key=lambda s: (s.severity != ERROR, _order_key(s.signal, s.baseline)))
    if breaches:
        errors = sum(1 for s in breaches if s.severity == ERROR)
        lines.append(f"**{len(breaches)} alert(s)** ({errors} ERROR, {len(breaches) - errors} WARN):")
        lines.append("")
        for s in breaches:
            lines.append(f"- **{s.severity}** {s.signal} vs {_VS_TEXT.get(s.baseline, s.baseline)}: "
                         f"{markdown_cell(s.detail, 400)}")
    else:
        lines.append("**No alerts**: every signal is within its threshold.")
    lines.append("")
    rows = [(s.signal, _VS_TEXT.get(s.baseline, s.baseline), format_value(s.signal, s.value),
             format_value(s.signal, s.threshold), _status(s.severity))
            for s in sorted(report.signals, key=lambda s: _order_key(s.signal, s.baseline))]
    lines.append(markdown_table(("signal", "vs", "value", "threshold", "status"), rows))
    for s in report.signals:
        if s.signal == "intent_mix" and s.data.get("intents"):
            moved = [r for r in s.data["intents"][:5] if r["js_contribution"] > 0]
            if moved:
                lines.append("")
                lines.append(f"Intents that moved most vs {_VS_TEXT[s.baseline]}: " + "; ".join(
                    markdown_cell(f"{r.get('name') or r['intent_id']} {pct(r['baseline_share'])} → "
                                  f"{pct(r['week_share'])}", 80) for r in moved))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- charts
def _figure(width: float, height: float):
    """A Figure without pyplot: it renders straight to SVG, so no backend is chosen or imported
    (never a GUI one in a worker)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.find("<svg"):]


def _intent_chart(signal: SignalResult, top: int = 12) -> str | None:
    rows = [r for r in signal.data.get("intents") or [] if r["js_contribution"] > 0][:top]
    if not rows:
        return None
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig = _figure(7.5, 0.32 * len(rows) + 1.0)
        ax = fig.subplots()
        labels = [str(r.get("name") or r["intent_id"])[:40] for r in rows][::-1]
        ys = range(len(rows))
        before = [100 * r["baseline_share"] for r in rows][::-1]
        now = [100 * r["week_share"] for r in rows][::-1]
        ax.barh([y + 0.2 for y in ys], before, height=0.38, color="#9aa5b1", label=_VS_TEXT[signal.baseline])
        ax.barh([y - 0.2 for y in ys], now, height=0.38, color="#1f6feb", label="this week")
        ax.set_yticks(list(ys), labels)
        ax.set_xlabel("share of traffic (%)")
        ax.set_title(f"Intents that moved most vs {_VS_TEXT[signal.baseline]} (by JS contribution)")
        ax.legend(loc="lower right", frameon=False)
        return _svg(fig)


def _overlap_chart(signal: SignalResult) -> str | None:
    per_case = signal.data.get("per_case") or {}
    values = [v["overlap"] for v in per_case.values() if v.get("overlap") is not None]
    if not values:
        return None
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig = _figure(5.0, 2.4)
        ax = fig.subplots()
        k = int(signal.data.get("k") or 5)
        bins = [i / k - 0.5 / k for i in range(k + 2)]
        ax.hist(values, bins=bins, color="#1f6feb", edgecolor="white")
        if signal.threshold is not None:
            ax.axvline(signal.threshold, color=_COLOURS[WARN], linestyle="--", linewidth=1, label="warn below (mean)")
        ax.axvline(signal.value, color="#111111", linewidth=1.2, label=f"mean {signal.value:.2f}")
        ax.set_xlabel(f"overlap@{k} of a golden query's top-{k} ({_VS_TEXT[signal.baseline]} vs now)")
        ax.set_ylabel("golden cases")
        ax.legend(frameon=False, loc="upper left")
        return _svg(fig)


def trend_frame(report: WeekReport, history: pl.DataFrame) -> pl.DataFrame:
    """drift_history rows of other weeks plus this report's rows (this week's replace any stored)."""
    columns = ["week_start", "signal", "baseline", "value", "threshold", "severity"]
    mine = pl.DataFrame([{c: r[c] for c in columns} for r in report.history_rows()],
                        schema={"week_start": pl.Date, "signal": pl.String, "baseline": pl.String,
                                "value": pl.Float64, "threshold": pl.Float64, "severity": pl.String})
    if history is None or history.is_empty():
        return mine
    others = history.select(columns).cast(mine.schema).filter(pl.col("week_start") != report.week_start)
    return pl.concat([others, mine]).sort("week_start", "signal", "baseline")


def _trend_chart(frame: pl.DataFrame) -> str | None:
    pairs = sorted({(s, b) for s, b, v in frame.select("signal", "baseline", "value").iter_rows() if v is not None},
                   key=lambda p: _order_key(*p))
    if not pairs:
        return None
    import matplotlib

    cols = 3
    nrows = (len(pairs) + cols - 1) // cols
    weeks = sorted(set(frame.get_column("week_start").to_list()))
    position = {w: i for i, w in enumerate(weeks)}
    step = max(1, len(weeks) // 6)
    with matplotlib.rc_context(_RC):
        fig = _figure(10.5, 2.0 * nrows + 0.3)
        axes = fig.subplots(nrows, cols, squeeze=False)
        for ax in axes.flat[len(pairs):]:
            ax.set_visible(False)
        for ax, (signal, baseline) in zip(axes.flat, pairs):
            rows = frame.filter((pl.col("signal") == signal) & (pl.col("baseline") == baseline)).sort("week_start")
            xs = [position[w] for w in rows.get_column("week_start").to_list()]
            values = rows.get_column("value").to_list()
            thresholds = rows.get_column("threshold").to_list()
            severities = rows.get_column("severity").to_list()
            points = [(x, v) for x, v in zip(xs, values) if v is not None]
            ax.plot([x for x, _ in points], [v for _, v in points], color="#1f6feb", linewidth=1.2, marker="o",
                    markersize=3)
            limits = [(x, t) for x, t in zip(xs, thresholds) if t is not None]
            if limits:
                ax.step([x for x, _ in limits], [t for _, t in limits], where="mid", color="#888888",
                        linestyle="--", linewidth=0.9)
            for x, v, sev in zip(xs, values, severities):
                if sev is not None and v is not None:
                    ax.plot([x], [v], marker="o", markersize=6, color=_COLOURS[sev], linestyle="none")
            vs = "" if baseline == NONE else f" vs {_VS_TEXT.get(baseline, baseline)}"
            ax.set_title(f"{signal}{vs}", loc="left")
            ticks = list(range(0, len(weeks), step))
            ax.set_xticks(ticks, [weeks[i].strftime("%m-%d") for i in ticks])
            ax.set_xlim(-0.5, max(len(weeks) - 0.5, 0.5))
        fig.suptitle("Each signal by week (dashed: threshold; orange/red: WARN/ERROR)", x=0.01, ha="left", y=1.0)
        fig.tight_layout()
        return _svg(fig)


# ----------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#1b1f24;
line-height:1.4;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d8dee4;padding-bottom:4px}
.sub{color:#57606a;margin:0 0 16px}table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}th{background:#f6f8fa}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.sev{display:inline-block;min-width:44px;text-align:center;border-radius:10px;padding:0 8px;color:#fff;font-size:12px}
.ERROR{background:#c0392b}.WARN{background:#d68910}.ok{background:#2e7d32}
ul.alerts{padding-left:18px}ul.alerts li{margin:4px 0}.chart svg{max-width:100%;height:auto}
.note{color:#57606a;font-size:12px}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _badge(severity: str | None) -> str:
    status = _status(severity)
    return f'<span class="sev {status}">{_e(status)}</span>'


def _section(title: str, body: Iterable[str]) -> str:
    return f"<h2>{_e(title)}</h2>\n" + "\n".join(body)


def render_html(report: WeekReport, history: pl.DataFrame, *, title: str) -> str:
    """The week's report as one self-contained HTML page (module doc). `history` is drift_history
    (store.read_history); this report's rows are added to it for the trend charts."""
    f = report.figures
    end = report.week_start + timedelta(days=6)
    days = f.get("days_with_data", 0)
    sub = (f"Week {report.week_start.isoformat()} to {end.isoformat()} (UTC) · {days} of 7 days with data"
           + (" (partial week)" if days < 7 else "") + f" · {f.get('traces', 0):,} traces · "
           + (f"golden version {f['golden']}" if f.get("golden")
              else f"week before only: {f['golden_note']}" if f.get("golden_note") else "no golden version yet")
           + (f" · computed {report.computed_at:%Y-%m-%d %H:%M} UTC" if report.computed_at else ""))
    parts = [f"<h1>{_e(title)}</h1>", f'<p class="sub">{_e(sub)}</p>']
    breaches = sorted(report.breaches(), key=lambda s: (s.severity != ERROR, _order_key(s.signal, s.baseline)))
    if breaches:
        items = [f"<li>{_badge(s.severity)} <b>{_e(s.signal)}</b> vs {_e(_VS_TEXT.get(s.baseline, s.baseline))}: "
                 f"{_e(s.detail)}</li>" for s in breaches]
        parts.append(_section(f"Alerts ({len(breaches)})", ['<ul class="alerts">', *items, "</ul>"]))
    else:
        parts.append(_section("Alerts", ["<p>No alerts: every signal is within its threshold.</p>"]))
    rows = ["<table><tr><th>signal</th><th>vs</th><th>value</th><th>threshold</th><th>status</th><th>detail</th></tr>"]
    for s in sorted(report.signals, key=lambda s: _order_key(s.signal, s.baseline)):
        rows.append(f"<tr><td>{_e(s.signal)}</td><td>{_e(_VS_TEXT.get(s.baseline, s.baseline))}</td>"
                    f'<td class="num">{_e(format_value(s.signal, s.value))}</td>'
                    f'<td class="num">{_e(format_value(s.signal, s.threshold))}</td><td>{_badge(s.severity)}</td>'
                    f"<td>{_e(s.detail)}</td></tr>")
    rows.append("</table>")
    parts.append(_section("Signals", rows))
    charts = []
    for s in sorted(report.signals, key=lambda s: _order_key(s.signal, s.baseline)):
        if s.signal == "intent_mix":
            svg = _intent_chart(s)
            if svg:
                charts.append(f'<div class="chart">{svg}</div>')
    if charts:
        parts.append(_section("Intent mix", [
            '<p class="note">The golden comparison uses the production mix the golden version was drawn from '
            "(recorded in its manifest), not the stratified sample's own mix. The threshold allows for the week's "
            "size: it is the larger of a floor and the JS that sampling noise alone reaches at this many traces."
            "</p>", *charts]))
    retrieval = [s for s in report.signals if s.signal == "retrieval" and s.value is not None]
    overlap = [c for c in (_overlap_chart(s) for s in retrieval) if c]
    if overlap:
        parts.append(_section("Retrieval", [
            '<p class="note">Each golden case\'s query retrieved again with BM25 over the documents seen in this '
            "week's retrieved context, compared with the top-k recorded when the golden version was published.</p>",
            *[f'<div class="chart">{svg}</div>' for svg in overlap]]))
    trend = _trend_chart(trend_frame(report, history))
    if trend:
        parts.append(_section("Trends", [f'<div class="chart">{trend}</div>']))
    parts.append('<p class="note">What each signal measures and how its threshold was chosen: docs/drift.md in the '
                 "evalflow repository. Details hold ids, hashes, shares and intent names, never trace text.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n" + "\n".join(parts)
            + "\n</body></html>\n")


def week_title(week_start: date) -> str:
    return f"evalflow drift report: week of {week_start.isoformat()}"
