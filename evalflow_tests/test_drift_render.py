"""The drift report for people: an HTML page that opens offline (inline SVG, no script, nothing
fetched) with each signal's trend across weeks, and a markdown summary."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from evalflow.lib.drift.render import format_value, render_html, render_markdown, trend_frame
from evalflow.lib.drift.report import SignalResult, WeekReport

MONDAY = date(2026, 10, 26)


def week(start: date, js: float, severity: str | None, detail: str = "JS moved") -> WeekReport:
    return WeekReport(start, [
        SignalResult("traffic", "none", 7000, None, None, "7 of 7 days", {"days_with_data": 7}),
        SignalResult("intent_mix", "golden", js, 0.01, severity, detail, {"intents": [
            {"intent_id": "i-1", "name": "card / lost", "week_share": 0.3, "baseline_share": 0.1, "delta": 0.2,
             "js_contribution": js * 0.8, "kl_contribution": 0.1},
            {"intent_id": "i-2", "name": None, "week_share": 0.7, "baseline_share": 0.9, "delta": -0.2,
             "js_contribution": js * 0.2, "kl_contribution": -0.05}]}),
        SignalResult("retrieval", "golden", 0.8, 0.7, None, "mean overlap", {"k": 5, "per_case": {
            "case-1": {"overlap": 1.0}, "case-2": {"overlap": 0.6}}}),
    ], {"days_with_data": 7, "traces": 7000, "golden": "golden@v2"})


def past_history() -> pl.DataFrame:
    rows = []
    for i, value in enumerate((0.004, 0.006, 0.005)):
        start = MONDAY - timedelta(days=7 * (3 - i))
        rows += [dict(week_start=start, signal="intent_mix", baseline="golden", value=value, threshold=0.01,
                      severity=None),
                 dict(week_start=start, signal="traffic", baseline="none", value=6900.0 + i, threshold=None,
                      severity=None)]
    return pl.DataFrame(rows)


def test_the_html_report_is_self_contained_and_escapes_text():
    page = render_html(week(MONDAY, 0.05, "WARN", detail="moved: <PERSON_ab12> & co"), past_history(),
                       title="Drift <week>")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page.lower() and "<link" not in page.lower() and "<img" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", page)
    assert "url(http" not in page and "@import" not in page
    assert "&lt;PERSON_ab12&gt; &amp; co" in page and "<PERSON_ab12>" not in page
    assert "<title>Drift &lt;week&gt;</title>" in page
    assert page.count("<svg") == 3  # the intent chart, the retrieval overlaps, the trends


def test_the_trend_covers_every_week_of_the_history_and_this_one():
    report = week(MONDAY, 0.05, "WARN")
    frame = trend_frame(report, past_history())
    weeks = frame.filter(pl.col("signal") == "intent_mix").get_column("week_start").to_list()
    assert weeks == [MONDAY - timedelta(days=7 * k) for k in (3, 2, 1, 0)]
    page = render_html(report, past_history(), title="t")
    trend = page[page.index("<h2>Trends</h2>"):]
    for start in weeks:
        assert start.strftime("%m-%d") in trend
    assert "intent_mix vs golden" in trend and "traffic" in trend
    # a stored row of this very week is replaced by the report's own
    stale = pl.concat([past_history(), pl.DataFrame([dict(week_start=MONDAY, signal="intent_mix", baseline="golden",
                                                          value=0.5, threshold=0.01, severity="ERROR")])],
                      how="vertical_relaxed")
    values = trend_frame(report, stale).filter(pl.col("week_start") == MONDAY).get_column("value").to_list()
    assert sorted(values) == [0.05, 0.8, 7000.0]


def test_the_html_renders_without_history_or_charts():
    quiet = WeekReport(MONDAY, [SignalResult("traffic", "none", 10, None, None, "1 of 7 days", {})],
                       {"days_with_data": 1, "traces": 10, "golden": None})
    page = render_html(quiet, pl.DataFrame(), title="t")
    assert "No alerts" in page and "partial week" in page and "no golden version yet" in page


def test_the_markdown_summary_leads_with_the_alerts():
    text = render_markdown(week(MONDAY, 0.05, "WARN", detail="JS 0.05 | moved <i-1>"))
    lines = text.splitlines()
    assert lines[0] == "# Drift report, week 2026-10-26 to 2026-11-01"
    assert "7 of 7 days with data · 7,000 traces · compared with golden@v2 and the week before" in text
    assert "**1 alert(s)** (0 ERROR, 1 WARN):" in text
    assert "- **WARN** intent_mix vs golden: JS 0.05 \\| moved &lt;i-1&gt;" in text
    assert "| intent_mix | golden | 0.0500 | 0.0100 | WARN |" in text
    assert "card / lost 10.0% → 30.0%" in text
    assert "**No alerts**" in render_markdown(week(MONDAY, 0.002, None))


@pytest.mark.parametrize("signal, value, text", [
    ("intent_mix", 0.01234, "0.0123"), ("system_prompt", 0.5, "50.0%"), ("kb_new_docs", 0.012, "1.20%"),
    ("traffic", 7012, "7,012"), ("score_inflation", 0.2, "+20.0 pts"), ("retrieval", 0.456, "0.46"),
    ("embedding", 5.123, "5.12 sd"), ("stall", None, "—"),
])
def test_values_are_formatted_by_signal(signal, value, text):
    assert format_value(signal, value) == text


def test_charts_are_drawn_without_pyplot_or_a_gui_backend():
    """A worker process draws the charts through Figure objects alone: pyplot (which picks a
    backend, possibly a GUI one) is never imported."""
    import subprocess
    import sys

    code = ("import sys; from datetime import date; "
            "from test_drift_render import week, past_history; from evalflow.lib.drift.render import render_html; "
            "page = render_html(week(date(2026, 10, 26), 0.05, 'WARN'), past_history(), title='t'); "
            "assert page.count('<svg') == 3; assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=str(Path(__file__).parent))
    assert done.returncode == 0, done.stderr
