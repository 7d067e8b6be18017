"""Check that tasks import into a Label Studio project with a given labelling configuration.

`validate_tasks` returns the problems found (an empty list means importable). It checks what
makes an import fail or a task render blank, for the tags this project uses:
- the configuration parses as XML, its root is <View>, and every tag is a known one;
- `name`s are unique; every control tag has a `toName` naming an existing object tag;
- Choices has a `choice` mode Label Studio knows and at least one Choice, values unique;
  `required` is "true" or "false";
- every `$variable` an object tag reads exists in each task's `data`, with a type the tag
  accepts: Text / HyperText / Header a string; Paragraphs a non-empty list of dicts whose
  nameKey and textKey (default "author" / "text") hold strings.
The configuration is our own, generated text, so the standard library parser is enough
(defusedxml is not installed; nothing untrusted is parsed here).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Iterable

OBJECT_TAGS = {"Text", "HyperText", "Paragraphs"}
CONTROL_TAGS = {"TextArea", "Choices", "Rating", "Number", "Labels"}
LAYOUT_TAGS = {"View", "Header", "Style", "Choice", "Label", "Filter"}
CHOICE_MODES = {"single", "single-radio", "multiple"}
_STRING_TAGS = {"Text", "HyperText", "Header"}


def _config_problems(root: ET.Element) -> tuple[list[str], dict[str, ET.Element]]:
    problems: list[str] = []
    if root.tag != "View":
        problems.append(f"root tag is <{root.tag}>, expected <View>")
    names: dict[str, ET.Element] = {}
    for el in root.iter():
        if el.tag not in OBJECT_TAGS | CONTROL_TAGS | LAYOUT_TAGS:
            problems.append(f"unknown tag <{el.tag}>")
        name = el.get("name")
        if name is not None:
            if name in names:
                problems.append(f"duplicate name {name!r}")
            names[name] = el
        elif el.tag in OBJECT_TAGS | CONTROL_TAGS:
            problems.append(f"<{el.tag}> has no name")
        required = el.get("required")
        if required is not None and required not in ("true", "false"):
            problems.append(f"<{el.tag} name={name!r}> required={required!r}, expected true/false")
    objects = {n: el for n, el in names.items() if el.tag in OBJECT_TAGS}
    for el in root.iter():
        if el.tag not in CONTROL_TAGS:
            continue
        name = el.get("name")
        targets = [t for t in (el.get("toName") or "").split(",") if t]
        if not targets:
            problems.append(f"control {name!r} has no toName")
        for target in targets:
            if target not in objects:
                problems.append(f"control {name!r} points at {target!r}, which is no object tag")
        if el.tag == "Choices":
            mode = el.get("choice", "single")
            if mode not in CHOICE_MODES:
                problems.append(f"Choices {name!r} has choice={mode!r}")
            values = [c.get("value") for c in el.iter("Choice")]
            if not values:
                problems.append(f"Choices {name!r} has no Choice")
            if any(not v for v in values):
                problems.append(f"Choices {name!r} has a Choice without value")
            if len(set(values)) != len(values):
                problems.append(f"Choices {name!r} has duplicate Choice values")
    return problems, objects


def _variables(root: ET.Element) -> list[tuple[ET.Element, str]]:
    return [
        (el, el.get("value")[1:])
        for el in root.iter()
        if (el.get("value") or "").startswith("$") and el.tag in OBJECT_TAGS | _STRING_TAGS
    ]


def _value_problem(el: ET.Element, value: object) -> str | None:
    if el.tag in _STRING_TAGS:
        return None if isinstance(value, str) else f"needs a string, got {type(value).__name__}"
    if el.tag == "Paragraphs":
        name_key, text_key = el.get("nameKey", "author"), el.get("textKey", "text")
        if not isinstance(value, list) or not value:
            return "needs a non-empty list of dicts"
        for item in value:
            if not isinstance(item, dict):
                return f"needs dict items, got {type(item).__name__}"
            if not isinstance(item.get(name_key), str) or not isinstance(item.get(text_key), str):
                return f"every item needs string {name_key!r} and {text_key!r}"
    return None


def validate_tasks(config_xml: str, tasks: Iterable[dict]) -> list[str]:
    try:
        root = ET.fromstring(config_xml)
    except ET.ParseError as exc:
        return [f"configuration is not valid XML: {exc}"]
    problems, _objects = _config_problems(root)
    variables = _variables(root)
    for index, task in enumerate(tasks):
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict):
            problems.append(f"task {index}: no 'data' object")
            continue
        for el, key in variables:
            if key not in data:
                problems.append(f"task {index}: missing field {key!r} read by <{el.tag}>")
                continue
            problem = _value_problem(el, data[key])
            if problem:
                problems.append(f"task {index}: field {key!r} of <{el.tag}> {problem}")
    return problems
