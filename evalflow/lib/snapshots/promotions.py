"""Golden set promotions: the only way the golden set changes.

A promotion adds cases, relabels cases, retires cases and changes rubrics, with a message and an
author. It comes from a Dagster job's config (`promotion_from_dict`) or from a TOML file in
`<data>/promotions/` that a reviewer reads like a pull request (`load_promotion`):

```toml
# data/promotions/2026-01-12-refunds.toml
message = "Cover refund escalations; two accuracy labels were wrong"
author = "reviewer_a"

add = ["case-0123456789abcdef", "case-fedcba9876543210"]

# a plain id, or a table with a reason
retire = [{case_id = "case-00aa11bb22cc33dd", reason = "the product was discontinued"}]

[[relabel]]
case_id = "case-1111222233334444"
dimension = "accuracy"          # accuracy | relevance | groundedness | safety | policy
verdict = "Fail"                # Pass | Fail
reason = "quoted the 2024 refund window"

[[rubric_changes]]
dimension = "groundedness"
text = '''
Pass when every factual claim is supported by the retrieved documents.
'''
```

TOML because the standard library reads it (`tomllib`), it takes comments and multi-line text,
and a diff of it reads like a review. Unknown keys are errors (a typo never passes silently).

Applying a promotion to the latest golden version (`apply_promotion`) gives the next version's
cases, its rubrics and a changelog that keeps apart new coverage (added cases, by intent),
relabels (old and new label side by side: a relabel can move scores while the model did not
change), retirements and rubric changes.

Rubrics: the set keeps a current rubric per dimension (`{version, text}`, version = sha256 of
the text). A rubric change is an explicit event in the changelog; it does not touch any case:
cases keep the rubric they were labelled under. A case relabelled on a dimension gets an
`expert` label whose detail names the promotion, the reason, the previous verdict and the
`rubric_version` it was judged under (the set's current rubric for that dimension, else the
case's own).

Splits: every case's split is `is_holdout(case_id)`, checked for each case and against every
earlier version of the set (`SplitChanged`): a case never changes side.
"""

from __future__ import annotations

import copy
import hashlib
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from evalflow.lib.snapshots.content import check_case, check_splits_unchanged
from evalflow.lib.snapshots.refs import GOLDEN, DatasetRef, next_golden

DIMENSIONS = ("accuracy", "relevance", "groundedness", "safety", "policy")
VERDICTS = ("Pass", "Fail")
KEYS = ("message", "author", "add", "relabel", "retire", "rubric_changes", "checks")


class PromotionError(ValueError):
    """A promotion that cannot be applied; `.problems` names each bad entry."""

    def __init__(self, problems: Sequence[str], where: str = "promotion"):
        self.problems = list(problems)
        self.where = where
        super().__init__(f"{where}: " + "; ".join(self.problems))


@dataclass(frozen=True)
class Relabel:
    case_id: str
    dimension: str
    verdict: str
    reason: str


@dataclass(frozen=True)
class Retirement:
    case_id: str
    reason: str = ""


@dataclass(frozen=True)
class RubricChange:
    dimension: str
    text: str


@dataclass(frozen=True)
class CheckEntry:
    """A deterministic check to set on a case of the set (docs/eval-cases.md: regex, must_contain,
    must_not_contain, exact_match, numeric_tolerance, json_schema); one with the same name on the
    case is replaced."""
    case_id: str
    check: Mapping[str, Any]


@dataclass(frozen=True)
class Promotion:
    message: str
    author: str
    add: tuple[str, ...] = ()
    relabel: tuple[Relabel, ...] = ()
    retire: tuple[Retirement, ...] = ()
    rubric_changes: tuple[RubricChange, ...] = ()
    checks: tuple[CheckEntry, ...] = ()
    source: str = "config"  # the file name, or "config" (a job's config)
    source_sha256: str | None = None  # sha256 of the file's bytes

    def as_dict(self) -> dict[str, Any]:
        return {"message": self.message, "author": self.author, "add": list(self.add),
                "relabel": [vars(r) for r in self.relabel], "retire": [vars(r) for r in self.retire],
                "rubric_changes": [vars(r) for r in self.rubric_changes],
                "checks": [{"case_id": c.case_id, **c.check} for c in self.checks]}


@dataclass(frozen=True)
class GoldenState:
    """The latest golden version, as a promotion starts from it."""

    version: str
    cases: Sequence[Mapping[str, Any]]
    rubrics: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class PromotionResult:
    ref: DatasetRef
    parent: str | None
    cases: list[dict[str, Any]]
    rubrics: dict[str, dict[str, str]]
    changelog: dict[str, Any]
    sampling_plan: dict[str, Any]

    @property
    def changelog_text(self) -> str:
        return changelog_text(self.changelog)


def rubric_version(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------ parsing


def _text(value: Any, where: str, problems: list[str], required: bool = True) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if value is None and not required:
        return ""
    problems.append(f"{where}: expected {'a non-empty ' if required else 'a '}string, got {value!r}")
    return ""


def _table(value: Any, where: str, keys: tuple[str, ...], problems: list[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        problems.append(f"{where}: expected a table with {', '.join(keys)}, got {value!r}")
        return {}
    unknown = sorted(set(value) - set(keys))
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(keys)})")
    return value


def _list(value: Any, where: str, problems: list[str]) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"{where}: expected a list, got {value!r}")
        return []
    return value


def promotion_from_dict(data: Mapping[str, Any], source: str = "config",
                        source_sha256: str | None = None) -> Promotion:
    """A Promotion from a job's config or a parsed file; PromotionError lists every problem of
    shape (the entries are checked against the set by `validate_promotion`)."""
    problems: list[str] = []
    if not isinstance(data, Mapping):
        raise PromotionError([f"expected a table, got {type(data).__name__}"], source)
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(KEYS)})")
    message = _text(data.get("message"), "message", problems)
    author = _text(data.get("author"), "author", problems)
    add = tuple(_text(v, f"add[{i}]", problems) for i, v in enumerate(_list(data.get("add"), "add", problems)))
    relabel = []
    for i, entry in enumerate(_list(data.get("relabel"), "relabel", problems)):
        entry = _table(entry, f"relabel[{i}]", ("case_id", "dimension", "verdict", "reason"), problems)
        if entry:
            relabel.append(Relabel(_text(entry.get("case_id"), f"relabel[{i}].case_id", problems),
                                   _text(entry.get("dimension"), f"relabel[{i}].dimension", problems),
                                   entry.get("verdict") if isinstance(entry.get("verdict"), str)
                                   else repr(entry.get("verdict")),
                                   _text(entry.get("reason"), f"relabel[{i}].reason", problems)))
    retire = []
    for i, entry in enumerate(_list(data.get("retire"), "retire", problems)):
        if isinstance(entry, str):
            retire.append(Retirement(_text(entry, f"retire[{i}]", problems)))
        else:
            entry = _table(entry, f"retire[{i}]", ("case_id", "reason"), problems)
            if entry:
                retire.append(Retirement(_text(entry.get("case_id"), f"retire[{i}].case_id", problems),
                                         _text(entry.get("reason"), f"retire[{i}].reason", problems, False)))
    rubric_changes = []
    for i, entry in enumerate(_list(data.get("rubric_changes"), "rubric_changes", problems)):
        entry = _table(entry, f"rubric_changes[{i}]", ("dimension", "text"), problems)
        if entry:
            rubric_changes.append(RubricChange(
                _text(entry.get("dimension"), f"rubric_changes[{i}].dimension", problems),
                _text(entry.get("text"), f"rubric_changes[{i}].text", problems)))
    checks = []
    for i, entry in enumerate(_list(data.get("checks"), "checks", problems)):
        if not isinstance(entry, Mapping):
            problems.append(f"checks[{i}]: expected a table, got {type(entry).__name__}")
            continue
        case_id = _text(entry.get("case_id"), f"checks[{i}].case_id", problems)
        checks.append(CheckEntry(case_id, {k: v for k, v in entry.items() if k != "case_id"}))
    if problems:
        raise PromotionError(problems, source)
    return Promotion(message=message, author=author, add=add, relabel=tuple(relabel), retire=tuple(retire),
                     rubric_changes=tuple(rubric_changes), checks=tuple(checks), source=source,
                     source_sha256=source_sha256)


def load_promotion(path: Path) -> Promotion:
    """Parse a promotion file (TOML, see the module docstring)."""
    raw = Path(path).read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise PromotionError([f"not valid TOML: {error}"], Path(path).name) from None
    return promotion_from_dict(data, source=Path(path).name, source_sha256=hashlib.sha256(raw).hexdigest())


def _toml_string(text: str) -> str:
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_string(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ValueError(f"cannot write {type(value).__name__} in a promotion file")


def promotion_to_toml(promotion: Promotion) -> str:
    """The file a reviewer reads (what `load_promotion` parses back to the same Promotion)."""
    lines = [f"message = {_toml_string(promotion.message)}", f"author = {_toml_string(promotion.author)}", ""]
    added = "".join(f"\n  {_toml_string(c)}," for c in promotion.add)
    lines.append("add = [" + added + ("\n]" if promotion.add else "]"))
    lines.append("retire = [" + "".join(
        f"\n  {{case_id = {_toml_string(r.case_id)}, reason = {_toml_string(r.reason)}}},"
        for r in promotion.retire) + ("\n]" if promotion.retire else "]"))
    for r in promotion.relabel:
        lines += ["", "[[relabel]]", f"case_id = {_toml_string(r.case_id)}", f"dimension = {_toml_string(r.dimension)}",
                  f"verdict = {_toml_string(r.verdict)}", f"reason = {_toml_string(r.reason)}"]
    for r in promotion.rubric_changes:
        lines += ["", "[[rubric_changes]]", f"dimension = {_toml_string(r.dimension)}",
                  f"text = {_toml_string(r.text)}"]
    for c in promotion.checks:
        lines += ["", "[[checks]]", f"case_id = {_toml_string(c.case_id)}",
                  *(f"{_toml_string(str(k))} = {_toml_value(v)}" for k, v in c.check.items())]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ validation


def validate_promotion(promotion: Promotion, latest: GoldenState | None,
                       available: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every problem of `promotion` against the latest golden version (None: there is none yet)
    and the available eval cases ({case_id: case}); empty when it can be applied."""
    problems: list[str] = []
    where = f"golden@{latest.version}" if latest else "the golden set (no version yet)"
    current = {c["case_id"] for c in latest.cases} if latest else set()
    if not (promotion.add or promotion.relabel or promotion.retire or promotion.rubric_changes or promotion.checks):
        problems.append("nothing to do: no add, relabel, retire, rubric_changes or checks entry")
    seen: dict[str, str] = {}
    for i, case_id in enumerate(promotion.add):
        if case_id in seen:
            problems.append(f"add[{i}]: case {case_id} is listed twice (also {seen[case_id]})")
        elif case_id not in available:
            problems.append(f"add[{i}]: unknown case id {case_id!r} (not among the {len(available)} eval cases)")
        elif case_id in current:
            problems.append(f"add[{i}]: case {case_id} is already in {where}")
        seen.setdefault(case_id, f"add[{i}]")
    retired: dict[str, str] = {}
    for i, entry in enumerate(promotion.retire):
        if entry.case_id in retired:
            problems.append(f"retire[{i}]: case {entry.case_id} is listed twice (also {retired[entry.case_id]})")
        elif entry.case_id in promotion.add:
            problems.append(f"retire[{i}]: case {entry.case_id} is both added and retired")
        elif entry.case_id not in current:
            problems.append(f"retire[{i}]: case {entry.case_id!r} is not in {where}, so it cannot be retired")
        retired.setdefault(entry.case_id, f"retire[{i}]")
    after = (current | set(promotion.add)) - set(retired)
    relabelled: dict[tuple[str, str], str] = {}
    for i, entry in enumerate(promotion.relabel):
        name = f"relabel[{i}] ({entry.case_id} {entry.dimension})"
        if entry.case_id in retired:
            problems.append(f"{name}: the case is retired in this promotion")
        elif entry.case_id not in after:
            known = "an eval case, but not in the set: add it too" if entry.case_id in available else "unknown case id"
            problems.append(f"{name}: {known} ({entry.case_id!r} is not in {where})")
        if entry.dimension not in DIMENSIONS:
            problems.append(f"{name}: unknown dimension {entry.dimension!r} (one of {', '.join(DIMENSIONS)})")
        if entry.verdict not in VERDICTS:
            problems.append(f"{name}: verdict {entry.verdict!r} is not Pass or Fail")
        key = (entry.case_id, entry.dimension)
        if key in relabelled:
            problems.append(f"{name}: relabelled twice (also {relabelled[key]})")
        relabelled.setdefault(key, f"relabel[{i}]")
    rubrics = dict(latest.rubrics) if latest else {}
    changed: set[str] = set()
    for i, entry in enumerate(promotion.rubric_changes):
        name = f"rubric_changes[{i}] ({entry.dimension})"
        if entry.dimension not in DIMENSIONS:
            problems.append(f"{name}: unknown dimension {entry.dimension!r} (one of {', '.join(DIMENSIONS)})")
        if entry.dimension in changed:
            problems.append(f"{name}: the dimension's rubric changes twice in one promotion")
        changed.add(entry.dimension)
        old = rubrics.get(entry.dimension)
        if old and old.get("text") == entry.text:
            problems.append(f"{name}: the text is the current rubric already (version {old['version'][:12]})")
    from evalflow.lib.eval_cases.checks import definition_errors

    named: dict[tuple[str, str], str] = {}
    for i, entry in enumerate(promotion.checks):
        name = f"checks[{i}] ({entry.case_id} {entry.check.get('name')})"
        if entry.case_id not in after:
            problems.append(f"{name}: {entry.case_id!r} is not in the set after this promotion")
        problems += [f"{name}: {problem}" for problem in definition_errors(entry.check)]
        key = (entry.case_id, str(entry.check.get("name")))
        if key in named:
            problems.append(f"{name}: set twice (also {named[key]})")
        named.setdefault(key, f"checks[{i}]")
    return problems


# ------------------------------------------------------------------ applying


def _label_summary(label: Any) -> dict[str, Any] | None:
    if not isinstance(label, Mapping):
        return None
    return {"verdict": label.get("verdict"), "source": label.get("source")}


def apply_promotion(promotion: Promotion, latest: GoldenState | None, available: Mapping[str, Mapping[str, Any]],
                    history: Mapping[str, tuple[str, str]] | None = None) -> PromotionResult:
    """The next golden version: `latest`'s cases (frozen: carried as they are) minus the retired,
    plus the added (copied from `available`, `version_added` set to the new version unless
    `history` says the case held an earlier version of the set), with the relabels applied.

    `history` is {case_id: (first version that held it, split it had)} over every earlier
    version of the golden set (store.case_history). Raises PromotionError (validation) or
    SplitChanged (a case whose split differs from is_holdout(case_id) or from an earlier version)."""
    problems = validate_promotion(promotion, latest, available)
    if problems:
        raise PromotionError(problems, promotion.source)
    history = history or {}
    version = next_golden(latest.version if latest else None)
    ref = DatasetRef(GOLDEN, version)
    parent = f"golden@{latest.version}" if latest else None
    retired = {r.case_id: r for r in promotion.retire}
    previous = {c["case_id"]: c for c in latest.cases} if latest else {}
    cases: dict[str, dict[str, Any]] = {cid: copy.deepcopy(dict(c)) for cid, c in previous.items()
                                        if cid not in retired}
    added = []
    for case_id in promotion.add:
        case = copy.deepcopy(dict(available[case_id]))
        check_case(case)
        first = history.get(case_id)
        case["version_added"] = first[0] if first else str(ref)
        cases[case_id] = case
        added.append(case)

    # rubrics
    rubrics: dict[str, dict[str, str]] = {d: dict(r) for d, r in (latest.rubrics if latest else {}).items()}
    rubric_log = []
    for change in promotion.rubric_changes:
        old = rubrics.get(change.dimension)
        rubrics[change.dimension] = {"version": rubric_version(change.text), "text": change.text, "since": str(ref)}
        rubric_log.append({"dimension": change.dimension, "old_version": old["version"] if old else None,
                           "new_version": rubrics[change.dimension]["version"], "text": change.text,
                           "old_text": old["text"] if old else None})

    relabel_log = []
    for entry in promotion.relabel:
        case = cases[entry.case_id]
        labels = dict(case.get("labels") or {})
        old = labels.get(entry.dimension)
        set_rubric = rubrics.get(entry.dimension)
        own = case.get("rubric") if isinstance(case.get("rubric"), Mapping) else {}
        judged_under = set_rubric["version"] if set_rubric else own.get("version")
        labels[entry.dimension] = {"verdict": entry.verdict, "source": "expert",
                                   "detail": {"method": "promotion", "reason": entry.reason, "promoted_in": str(ref),
                                              "previous_verdict": old.get("verdict") if isinstance(old, Mapping)
                                              else None, "rubric_version": judged_under}}
        case["labels"] = labels
        relabel_log.append({"case_id": entry.case_id, "dimension": entry.dimension, "old": _label_summary(old),
                            "new": {"verdict": entry.verdict, "source": "expert"}, "reason": entry.reason,
                            "rubric_version": judged_under, "split": case["split"]})

    check_log = []
    for entry in promotion.checks:
        case = cases[entry.case_id]
        kept = [c for c in case.get("checks") or [] if c.get("name") != entry.check.get("name")]
        check_log.append({"case_id": entry.case_id, "name": entry.check.get("name"), "kind": entry.check.get("kind"),
                          "replaced": len(kept) != len(case.get("checks") or [])})
        case["checks"] = [*kept, dict(entry.check)]
    if promotion.checks:
        from evalflow.lib.eval_cases.schema import validate_case

        wrong = [f"checks ({case_id}): {problem}" for case_id in sorted({e.case_id for e in promotion.checks})
                 for problem in validate_case(cases[case_id]) if problem.startswith("checks")]
        if wrong:
            raise PromotionError(wrong, promotion.source)

    ordered = [cases[cid] for cid in sorted(cases)]
    for case in ordered:
        check_case(case)
    check_splits_unchanged({cid: split for cid, (_, split) in history.items()}, ordered, "an earlier golden version")
    if latest:
        check_splits_unchanged({c["case_id"]: c.get("split") for c in latest.cases}, ordered, parent)

    coverage: dict[tuple, list] = defaultdict(list)
    for case in added:
        coverage[(str(case.get("intent_id")), str(case.get("intent_name")))].append(
            {"case_id": case["case_id"], "split": case["split"], "slice_tags": sorted(case.get("slice_tags") or []),
             "source_date": case.get("source_date")})
    changelog = {
        "ref": str(ref), "parent": parent, "message": promotion.message, "author": promotion.author,
        "new_coverage": [{"intent_id": i, "intent_name": n, "cases": sorted(v, key=lambda c: c["case_id"])}
                         for (i, n), v in sorted(coverage.items())],
        "relabels": sorted(relabel_log, key=lambda r: (r["case_id"], r["dimension"])),
        "retirements": [{"case_id": r.case_id, "reason": r.reason, "split": previous[r.case_id].get("split"),
                         "intent_id": previous[r.case_id].get("intent_id")}
                        for r in sorted(promotion.retire, key=lambda r: r.case_id)],
        "rubric_changes": sorted(rubric_log, key=lambda r: r["dimension"]),
        "checks": sorted(check_log, key=lambda c: (c["case_id"], str(c["name"]))),
        "totals": {"before": len(previous), "added": len(added), "relabelled": len(relabel_log),
                   "retired": len(retired), "after": len(ordered),
                   "holdout_after": sum(1 for c in ordered if c["split"] == "holdout")},
    }
    plan = {"kind": "promotion", "source": promotion.source, "source_sha256": promotion.source_sha256,
            "promotion": promotion.as_dict()}
    return PromotionResult(ref=ref, parent=parent, cases=ordered, rubrics=rubrics, changelog=changelog,
                           sampling_plan=plan)


def _short(version: str | None) -> str:
    return version[:12] if version else "none"


def changelog_text(changelog: Mapping[str, Any]) -> str:
    """The changelog as text: the commit message of the version's lake snapshot."""
    t = changelog["totals"]
    head = f"{changelog['ref']}" + (f" (from {changelog['parent']})" if changelog.get("parent") else " (first version)")
    lines = [f"{head} by {changelog['author']}: {changelog['message']}", ""]
    coverage = changelog["new_coverage"]
    lines.append(f"New coverage: {t['added']} case(s) in {len(coverage)} intent(s)" if coverage
                 else "New coverage: none")
    for group in coverage:
        cases = ", ".join(f"{c['case_id']} [{c['split']}]" for c in group["cases"])
        lines.append(f"  {group['intent_name']} ({group['intent_id']}): {cases}")
    relabels = changelog["relabels"]
    lines.append(f"Relabels: {len(relabels)} (scores can move on these while the model did not change)"
                 if relabels else "Relabels: none")
    for r in relabels:
        old = f"{r['old']['verdict']} ({r['old']['source']})" if r["old"] else "no label"
        lines.append(f"  {r['case_id']} {r['dimension']}: {old} -> {r['new']['verdict']} ({r['new']['source']}): "
                     f"{r['reason']}")
    retirements = changelog["retirements"]
    lines.append(f"Retirements: {len(retirements)}" if retirements else "Retirements: none")
    for r in retirements:
        lines.append(f"  {r['case_id']} [{r['split']}]" + (f": {r['reason']}" if r["reason"] else ""))
    rubrics = changelog["rubric_changes"]
    lines.append(f"Rubric changes: {len(rubrics)} (cases keep the rubric they were labelled under unless relabelled)"
                 if rubrics else "Rubric changes: none")
    for r in rubrics:
        lines.append(f"  {r['dimension']}: {_short(r['old_version'])} -> {_short(r['new_version'])}")
    checks = changelog.get("checks") or []
    lines.append(f"Checks set: {len(checks)}" if checks else "Checks set: none")
    for c in checks:
        lines.append(f"  {c['case_id']} {c['name']} ({c['kind']})" + (" replacing the one of that name"
                                                                       if c["replaced"] else ""))
    lines.append(f"Totals: {t['before']} -> {t['after']} cases ({t['holdout_after']} holdout)")
    return "\n".join(lines)
