"""The same tasks as CSV, for teams that annotate in a spreadsheet instead of Label Studio.

One row per task, in task order. Input columns first (the chat history rendered as
"role: content" lines), then one empty column per answer the annotator gives, named like the
Label Studio control tags so both routes read back the same way.

A cell that starts with =, +, -, @, tab or carriage return is prefixed with a single quote:
spreadsheet programs would otherwise run it as a formula (CSV injection), and the texts come
from production users.
"""

from __future__ import annotations

import csv
import io
from typing import Sequence

from evalflow.lib.annotation.tasks import render_history_text

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    text = render_history_text(value) if isinstance(value, list) else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def tasks_to_csv(tasks: Sequence[dict], input_fields: Sequence[str],
                 answer_fields: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow([*input_fields, *answer_fields])
    for task in tasks:
        data = task["data"]
        writer.writerow([*(_cell(data[field]) for field in input_fields),
                         *("" for _ in answer_fields)])
    return buffer.getvalue()
