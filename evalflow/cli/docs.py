"""The generated part of docs/cli.md: `python -m evalflow.cli.docs` rewrites it in place.

docs/cli.md holds hand-written prose and, between the BEGIN/END markers, the reference printed
by the parser itself. evalflow_tests/test_cli_docs.py regenerates the reference and fails when it
differs from the file (a new command or option without its page).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

BEGIN = "<!-- BEGIN GENERATED: python -m evalflow.cli.docs -->"
END = "<!-- END GENERATED -->"
PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def render() -> str:
    """The reference: `evalflow --help` and each command's `--help`."""
    from evalflow.cli import COMMANDS, build_parser

    # argparse wraps help to the terminal's width: fix it so the page is the same everywhere.
    os.environ["COLUMNS"] = "100"
    parser = build_parser()
    parts = ["```text", parser.format_help().rstrip(), "```"]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        short = COMMANDS[name][0]
        parts += ["", f"### `evalflow {name}`", "", short[0].upper() + short[1:] + ".", "",
                  "```text", sub.format_help().rstrip(), "```"]
        # A command with subcommands (`evalflow judge calibrate`): each gets its own block.
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child_name, child in action.choices.items():
                    parts += ["", f"#### `evalflow {name} {child_name}`", "", "```text",
                              child.format_help().rstrip(), "```"]
    return "\n".join(parts)


def generated_block(page: str) -> str:
    return page.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")


def rewrite(path: Path = PAGE) -> None:
    page = path.read_text()
    head, _, rest = page.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{BEGIN}\n{render()}\n{END}{tail}")


if __name__ == "__main__":
    rewrite(Path(sys.argv[1]) if len(sys.argv) > 1 else PAGE)
