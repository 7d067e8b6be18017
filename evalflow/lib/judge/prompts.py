"""Prompt templates: one per dimension, variants side by side, versioned by the sha256 of their text.

The defaults ship in the package (evalflow/lib/judge/prompts/); the pipeline reads a folder the
user edits (EVALFLOW_JUDGE_PROMPTS_DIR, default <data>/judge/prompts/), seeded from the
defaults by `ensure_prompts_dir`. A file `<dimension>.md` is the dimension's template (variant
"default"); `<dimension>.<variant>.md` files are its variants. Each dimension's default template
holds its Pass/Fail rules, so the rules are versioned with the prompt; the case's own rubric
fills the {rubric} placeholder.

Placeholders are replaced in one pass by name (never str.format), so a template can show a JSON
example with plain braces, and a case's text that happens to contain "{output}" stays as it is.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from evalflow.lib.judge.cases import rubric_for

DEFAULTS_DIR = Path(__file__).with_name("prompts")
DEFAULT_VARIANT = "default"
PAIRWISE = "pairwise"
PLACEHOLDERS = ("case_id", "dimension", "rubric", "input", "output", "expected_behavior")
PAIRWISE_PLACEHOLDERS = ("pair_id", "dimension", "rubric", "input", "first", "second")
# The lines a template must keep: the simulated judge (and a log reader) finds the case by them.
REQUIRED_LINES = ("Case id: {case_id}", "Dimension: {dimension}")
PAIRWISE_REQUIRED_LINES = ("Pair id: {pair_id}", "Dimension: {dimension}")
NO_RUBRIC = "(none for this case: the rules above apply)"
NOTHING = "(none given)"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_VARIANT = re.compile(r"^[A-Za-z0-9_-]+$")


class PromptError(ValueError):
    """A template that cannot be used (missing, a required line absent, a bad file name)."""


@dataclass(frozen=True)
class PromptTemplate:
    dimension: str
    variant: str
    text: str
    path: Path | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def pairwise(self) -> bool:
        return self.dimension == PAIRWISE


def check_template(text: str, where: str, pairwise: bool = False) -> None:
    lines = {line.strip() for line in text.splitlines()}
    for required in PAIRWISE_REQUIRED_LINES if pairwise else REQUIRED_LINES:
        if required not in lines:
            raise PromptError(f"{where}: the template must contain the line {required!r}")
    answer = ("{first}", "{second}") if pairwise else ("{output}",)
    for placeholder in answer:
        if placeholder not in text:
            raise PromptError(f"{where}: the template never shows the answer ({placeholder} is missing)")


def template_from_file(path: Path, dimension: str, variant: str | None = None) -> PromptTemplate:
    """A template file for a dimension. Its variant: the given one, else from the file name
    (`<dimension>.md` -> "default", `<dimension>.<variant>.md` -> variant, anything else -> its stem)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PromptError(f"no such prompt file: {path}") from None
    except UnicodeDecodeError:
        raise PromptError(f"{path}: a prompt file must be UTF-8 text") from None
    if variant is None:
        variant = variant_from_name(path.name, dimension)
    if not _VARIANT.match(variant):
        raise PromptError(f"{path}: a variant name is letters, digits, '-' and '_', got {variant!r}")
    check_template(text, str(path), pairwise=dimension == PAIRWISE)
    return PromptTemplate(dimension=dimension, variant=variant, text=text, path=path)


def variant_from_name(name: str, dimension: str) -> str:
    if name == f"{dimension}.md":
        return DEFAULT_VARIANT
    if name.startswith(f"{dimension}.") and name.endswith(".md"):
        return name[len(dimension) + 1:-3]
    return Path(name).stem.replace(".", "_")


def load_templates(folder: Path, dimension: str) -> list[PromptTemplate]:
    """A dimension's template and its variants in `folder`, the default first, then by variant."""
    if not _NAME.match(dimension):
        raise PromptError(f"a dimension name is lower-case letters, digits and '_', got {dimension!r}")
    paths = [p for p in (folder / f"{dimension}.md", *sorted(folder.glob(f"{dimension}.*.md"))) if p.is_file()]
    if not paths:
        raise PromptError(f"no prompt template for dimension {dimension!r} in {folder} "
                          f"(expected {dimension}.md, or {dimension}.<variant>.md)")
    return [template_from_file(p, dimension) for p in paths]


def default_dimensions() -> list[str]:
    """The dimensions the package ships a template for."""
    return sorted(p.stem for p in DEFAULTS_DIR.glob("*.md") if "." not in p.stem and p.stem != PAIRWISE)


def ensure_prompts_dir(folder: Path) -> Path:
    """The user's prompt folder, created from the package defaults when absent.

    Never overwrites: a default file is copied only for a dimension that has no template at
    all there (a new dimension in a newer version, or a folder made empty), so a user's edits,
    and a variant they kept while deleting the default, stay as they are."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for source in sorted(DEFAULTS_DIR.iterdir()):
        if not source.is_file():
            continue
        name = source.stem.split(".")[0]
        if source.suffix == ".md" and (any(folder.glob(f"{name}.*.md")) or (folder / source.name).exists()):
            continue
        if source.suffix != ".md" and (folder / source.name).exists():
            continue
        shutil.copyfile(source, folder / source.name)
    return folder


def _as_text(value: Any, empty: str = NOTHING) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return empty
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return "\n".join(f"- {v}" for v in value)
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def fill(text: str, values: Mapping[str, str], names: Sequence[str]) -> str:
    """Each {name} of `names` replaced by its value, in one pass (inserted text is never re-read)."""
    pattern = re.compile(r"\{(" + "|".join(map(re.escape, names)) + r")\}")
    return pattern.sub(lambda m: values[m.group(1)], text)


def render(template: PromptTemplate, case: Mapping[str, Any], dimension: str | None = None) -> str:
    """The prompt for one case on one dimension (the template's own dimension by default)."""
    dimension = dimension or template.dimension
    values = {
        "case_id": str(case["case_id"]),
        "dimension": dimension,
        "rubric": rubric_for(case, dimension) or NO_RUBRIC,
        "input": _as_text(case.get("input")),
        "output": _as_text(case.get("output"), empty="(no answer)"),
        "expected_behavior": _as_text(case.get("expected_behavior")),
    }
    return fill(template.text, values, PLACEHOLDERS)


def render_pairwise(template: PromptTemplate, pair: Mapping[str, Any], first: str, second: str,
                    dimension: str) -> str:
    values = {
        "pair_id": str(pair["pair_id"]),
        "dimension": dimension,
        "rubric": rubric_for(pair, dimension) or NO_RUBRIC,
        "input": _as_text(pair.get("input")),
        "first": _as_text(first, empty="(no answer)"),
        "second": _as_text(second, empty="(no answer)"),
    }
    return fill(template.text, values, PAIRWISE_PLACEHOLDERS)


def default_template(dimension: str) -> PromptTemplate:
    """The packaged template of a dimension (or of "pairwise")."""
    return template_from_file(DEFAULTS_DIR / f"{dimension}.md", dimension)
