"""docs/cli.md, generated from the parser: `python -m evalflow.cli.docs > docs/cli.md`.

The reference cannot drift from the command: evalflow_tests/test_cli_docs.py regenerates it and
fails when the file differs (a new command or option without its page).
"""

from __future__ import annotations

import argparse
import os
import sys


def render() -> str:
    from evalflow.cli import COMMANDS, build_parser

    # argparse wraps help to the terminal's width: fix it so the page is the same everywhere.
    os.environ["COLUMNS"] = "100"
    parser = build_parser()
    parts = [
        "# `evalflow` command reference",
        "",
        "Generated from the command's own `--help` by `python -m evalflow.cli.docs > docs/cli.md`; a test "
        "fails when this page and the command differ. Results go to stdout, progress and errors to "
        "stderr.",
        "",
        "```text",
        parser.format_help().rstrip(),
        "```",
    ]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        parts += ["", f"## `evalflow {name}`", "", COMMANDS[name][0][0].upper() + COMMANDS[name][0][1:] + ".",
                  "", "```text", sub.format_help().rstrip(), "```"]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
