"""Prompt templates: one per dimension, variants side by side, versioned by sha256, a user
folder seeded from the package defaults without overwriting edits."""

from __future__ import annotations

import hashlib

import pytest

from evalflow.lib.annotation.batch import DEFAULT_DIMENSIONS
from evalflow.lib.judge.prompts import (
    DEFAULTS_DIR,
    NO_RUBRIC,
    PromptError,
    default_dimensions,
    default_template,
    ensure_prompts_dir,
    load_templates,
    render,
    render_pairwise,
    template_from_file,
)

CASE = {"case_id": "ka-001", "input": {"user_query": "How long do I have to dispute a charge?"},
        "output": "You have {output} 60 days.", "expected_behavior": ["must state 60 days", "offer to open one"]}


def test_every_annotation_dimension_ships_a_template_with_the_required_lines():
    assert default_dimensions() == sorted(DEFAULT_DIMENSIONS)
    for dimension in DEFAULT_DIMENSIONS:
        template = default_template(dimension)
        assert "Case id: {case_id}" in template.text and "Dimension: {dimension}" in template.text
        assert "Pass:" in template.text and "Fail:" in template.text  # its default rubric
        assert template.variant == "default"
        assert template.sha256 == hashlib.sha256((DEFAULTS_DIR / f"{dimension}.md").read_bytes()).hexdigest()


def test_render_fills_the_placeholders_once():
    prompt = render(default_template("accuracy"), CASE)
    assert "Case id: ka-001\n" in prompt and "Dimension: accuracy\n" in prompt
    assert "How long do I have to dispute a charge?" in prompt
    assert "- must state 60 days\n- offer to open one" in prompt
    # text inside a case is never read as a placeholder; JSON braces in the template stay as they are
    assert "You have {output} 60 days." in prompt
    assert '{"verdict": "Pass" or "Fail"' in prompt
    assert NO_RUBRIC in prompt


def test_the_cases_rubric_goes_into_the_prompt():
    prompt = render(default_template("policy"), {**CASE, "rubric": {"policy": "Refunds need a supervisor."}})
    assert "Refunds need a supervisor." in prompt and NO_RUBRIC not in prompt


def test_variants_sit_beside_the_default_and_are_versioned_by_their_text(tmp_path):
    text = default_template("accuracy").text
    (tmp_path / "accuracy.md").write_text(text)
    (tmp_path / "accuracy.stepwise.md").write_text(text + "\nThink step by step.\n")
    (tmp_path / "relevance.md").write_text(default_template("relevance").text)
    templates = load_templates(tmp_path, "accuracy")
    assert [t.variant for t in templates] == ["default", "stepwise"]
    assert templates[0].sha256 != templates[1].sha256
    assert templates[1].sha256 == hashlib.sha256((text + "\nThink step by step.\n").encode()).hexdigest()


@pytest.mark.parametrize(("text", "message"), [
    ("Dimension: {dimension}\n{output}\n", "Case id: {case_id}"),
    ("Case id: {case_id}\n{output}\n", "Dimension: {dimension}"),
    ("Case id: {case_id}\nDimension: {dimension}\n", "never shows the answer"),
])
def test_a_template_without_what_it_needs_is_refused(tmp_path, text, message):
    path = tmp_path / "accuracy.md"
    path.write_text(text)
    with pytest.raises(PromptError, match=message.replace("{", r"\{").replace("}", r"\}")):
        template_from_file(path, "accuracy")


def test_a_dimension_without_a_template_is_an_error_naming_the_folder(tmp_path):
    with pytest.raises(PromptError, match="no prompt template for dimension 'tone'"):
        load_templates(tmp_path, "tone")


def test_the_user_folder_is_seeded_and_edits_are_never_overwritten(tmp_path):
    folder = ensure_prompts_dir(tmp_path / "prompts")
    assert sorted(p.name for p in folder.glob("*.md")) == sorted(p.name for p in DEFAULTS_DIR.glob("*.md"))
    edited = default_template("accuracy").text.replace("single dimension", "single dimension, strictly")
    (folder / "accuracy.md").write_text(edited)
    # a user who keeps only a variant of a dimension does not get the default back
    (folder / "policy.strict.md").write_text((folder / "policy.md").read_text() + "\nBe strict.\n")
    (folder / "policy.md").unlink()
    (folder / "safety.md").unlink()  # a dimension with no template at all gets the default again
    ensure_prompts_dir(folder)
    assert (folder / "accuracy.md").read_text() == edited
    assert not (folder / "policy.md").exists()
    assert (folder / "safety.md").read_text() == default_template("safety").text
    assert [t.variant for t in load_templates(folder, "policy")] == ["strict"]


def test_pairwise_template_renders_both_answers():
    template = default_template("pairwise")
    prompt = render_pairwise(template, {"pair_id": "p1", "input": "q"}, "short", "a longer answer", "accuracy")
    assert "Pair id: p1\n" in prompt and "<answer_1>\nshort\n</answer_1>" in prompt
    assert "<answer_2>\na longer answer\n</answer_2>" in prompt
