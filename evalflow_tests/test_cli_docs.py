"""The command documents itself: every command has a description and an example, and
docs/cli.md is exactly what the parser prints."""

from __future__ import annotations

import argparse

from evalflow.cli import COMMANDS, build_parser
from evalflow.cli.docs import PAGE, generated_block, render


def test_the_reference_in_docs_cli_md_is_what_the_parser_prints():
    assert generated_block(PAGE.read_text()) == render(), "docs/cli.md is stale: run `python -m evalflow.cli.docs`"


def test_every_command_and_option_is_described_with_an_example():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) == set(COMMANDS)
    for name, sub in subparsers.choices.items():
        short, description, examples = COMMANDS[name]
        assert short and len(description) > 40 and examples, name
        assert all(example.startswith("evalflow ") and f" {name}" in example for example in examples), name
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"evalflow {name}: {action.option_strings or action.dest} has no help"


def test_the_demo_simulates_the_days_before_today_and_simulate_a_fixed_range():
    from datetime import datetime, timedelta, timezone

    from evalflow.cli import _simulation_options

    today = datetime.now(timezone.utc).date()
    demo = _simulation_options(build_parser().parse_args(["demo", "--days", "5"]))
    assert demo["start_date"] == today - timedelta(days=5)  # its last day is yesterday
    fixed = _simulation_options(build_parser().parse_args(["simulate"]))
    assert fixed["start_date"].isoformat() == "2026-10-01"  # byte-identical files any day
