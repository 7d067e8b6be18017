"""From a parsed export to label rows and quarantine rows: join, validate, pseudonymise, redact.

Every answer in a file ends in exactly one place: a label (the current one for its annotator,
item and field), a quarantine row with a reason, or the audit table (an earlier submission a
later one replaced; see `resolve`). Rules:

- Join: `data.item_id` names the task; the batch manifests (`manifest_index`) map it to its
  batch, position, origin and trace or gold case. An id in no manifest is `unknown_item`.
- Pass: from the field names (a dimension of the item's batch or `critique` is pass 2;
  expected_behavior, gold_answer, risk_level are pass 1); a name neither is `unknown_field`.
- Values: a dimension is Pass or Fail, risk_level low/medium/high (matched without regard to
  case or surrounding spaces, so a spreadsheet's "pass" counts); anything else, or two options
  for a single-choice field, is `value_not_allowed`. Every field of the pass is required: an
  empty or missing one is `required_empty`, decided per field (the annotation's other answers
  are still imported). An expert review (the disagreement queue) asks for the disputed
  dimensions only: an expert's unanswered dimension is not quarantined; the critique, the
  record of why the majority was overridden, is required of experts too.
- Whole annotations: cancelled (`cancelled`, even with results), without `item_id`
  (`missing_item_id`), or without an annotator (`missing_annotator`: a hand-filled CSV
  without the name) quarantine each of their answers.
- Privacy: annotators are stored as pseudonyms (`pseudonymize`, the trace pipeline's keyed
  HMAC: the same person gets the same pseudonym in every file); free text (gold answers,
  expected behaviour, critiques) goes through `redact_texts` before it reaches a table, and a
  text the redaction stage cannot process is quarantined (`redaction_failed`), never stored
  raw. Quarantine details name fields and ids, never values.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

from evalflow.lib.annotation.batch import MANIFEST, BatchManifest
from evalflow.lib.annotation.labelstudio import CRITIQUE, PASS1_CONTROLS, RISK_LEVELS, VERDICTS
from evalflow.lib.judge.cases import case_id_for_trace
from evalflow.lib.labels.formats import (
    Annotation,
    ExportError,
    ParsedExport,
    Result,
    parse_export,
    safe_token,
)

RISK_LEVEL = "risk_level"
TEXT_FIELDS = ("expected_behavior", "gold_answer", CRITIQUE)
ROLE_ANNOTATOR, ROLE_EXPERT = "annotator", "expert"
REASONS = ("unknown_item", "missing_item_id", "missing_annotator", "value_not_allowed", "required_empty",
           "cancelled", "not_an_export", "unreadable", "unknown_field", "redaction_failed")
ABSENT = "no answer given"  # the detail of a required field an annotation does not answer at all
_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")

Pseudonymize = Callable[[str], str]
RedactTexts = Callable[[list[str]], list[str]]


class ManifestItem(NamedTuple):
    batch_id: str
    item: dict  # the manifest's item entry: position, item_id, origin, trace_id | case_id, ...
    dimensions: tuple[str, ...]  # the batch's scoring dimensions


def manifest_index(annotation_dir: str | Path) -> dict[str, ManifestItem]:
    """item_id -> ManifestItem over every batch folder under `annotation_dir` (hidden staging
    folders of an interrupted batch write are not batches)."""
    index: dict[str, ManifestItem] = {}
    root = Path(annotation_dir)
    if not root.is_dir():
        return index
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not (folder / MANIFEST).is_file():
            continue
        manifest = BatchManifest.load(folder)
        dims = tuple(manifest.data.get("dimensions") or ())
        for item in manifest.data.get("items") or []:
            known = index.get(item["item_id"])
            if known is not None and known.batch_id != manifest.batch_id:
                # item ids hash the batch id in, so this is a copied or edited manifest
                raise ValueError(f"item {item['item_id']} is in batches {known.batch_id} and {manifest.batch_id}")
            index[item["item_id"]] = ManifestItem(manifest.batch_id, item, dims)
    return index


# Files a browser or a spreadsheet program is still writing, or keeps as a lock beside an open one.
_PARTIAL_SUFFIXES = (".part", ".crdownload", ".download", ".tmp", ".partial")


def incoming_files(folder: str | Path) -> list[Path]:
    """The files waiting in a drop folder, oldest first (then by name): the order they are
    imported in, which breaks ties between submissions at the same time. Hidden files, lock
    files (~$...) and downloads still in progress are left for later."""
    root = Path(folder)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_file() and not p.name.startswith((".", "~$"))
             and not p.name.lower().endswith(_PARTIAL_SUFFIXES)]
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name))


def normalise_identity(raw: Any) -> str:
    """One spelling per person before hashing: "Ann@Example.com " and "ann@example.com" match."""
    return " ".join(str(raw).split()).casefold()


def annotator_pseudonymizer(pseudonymizer) -> Pseudonymize:
    """`pseudonymize` for the importer from a evalflow.lib.redact.pseudonym.Pseudonymizer."""
    return lambda identity: pseudonymizer.identifier("annotator", identity)


def label_id(batch_id: str, item_id: str, annotator: str, field_name: str, role: str = ROLE_ANNOTATOR) -> str:
    # An expert's label lives beside the same person's own annotation of the item instead of
    # replacing it (agreement keeps their first rating; the expert one overrides the majority).
    parts = [batch_id, item_id, annotator, field_name] + ([role] if role == ROLE_EXPERT else [])
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def safe_name(name: Any) -> str | None:
    """A field (control or column) name fit for a table: kept when it looks like an identifier,
    else a note (a spreadsheet column header can be anything)."""
    if name is None:
        return None
    return str(name) if _SAFE_NAME.match(str(name)) else "(not an identifier)"


@dataclass
class PreparedFile:
    """What one file would add, before it meets the labels already stored."""

    format: str | None
    labels: list[dict] = field(default_factory=list)  # candidate label rows, in file order
    quarantine: list[dict] = field(default_factory=list)
    unlabelled: int = 0  # tasks or rows without any annotation
    error: ExportError | None = None  # the whole file is not labels


def _field_pass(field_name: str, dimensions: Sequence[str]) -> int | None:
    if field_name in PASS1_CONTROLS:
        return 1
    if field_name == CRITIQUE or field_name in dimensions:
        return 2
    return None


def _required(passes: set[int], dimensions: Sequence[str]) -> list[str]:
    out: list[str] = []
    if 1 in passes:
        out += PASS1_CONTROLS
    if 2 in passes:
        out += [*dimensions, CRITIQUE]
    return out


def check_value(field_name: str, result: Result) -> tuple[str | None, str | None, str | None]:
    """(value, reason, detail): the stored value, or why it is quarantined."""
    if field_name in TEXT_FIELDS:
        text = "\n".join(result.values).strip()
        return (text, None, None) if text else (None, "required_empty", f"{field_name} is empty")
    allowed = RISK_LEVELS if field_name == RISK_LEVEL else VERDICTS
    values = [v.strip() for v in result.values if v.strip()]
    if not values:
        return None, "required_empty", f"{field_name} is empty"
    if len({v.casefold() for v in values}) > 1:
        return None, "value_not_allowed", f"{len(values)} options chosen for the single-choice field {field_name}"
    by_fold = {choice.casefold(): choice for choice in allowed}
    chosen = by_fold.get(values[0].casefold())
    if chosen is None:
        return None, "value_not_allowed", f"{field_name} must be one of {', '.join(allowed)}"
    return chosen, None, None


class _FileBuilder:
    def __init__(self, parsed: ParsedExport, manifests: dict[str, ManifestItem], pseudonymize: Pseudonymize):
        self.parsed = parsed
        self.manifests = manifests
        self.pseudonymize = pseudonymize
        self.out = PreparedFile(parsed.format, unlabelled=parsed.unlabelled)
        self._pseudonyms: dict[str, str] = {}

    def _annotator(self, raw: str | None) -> str | None:
        if raw is None:
            return None
        key = normalise_identity(raw)
        if key not in self._pseudonyms:
            self._pseudonyms[key] = self.pseudonymize(key)
        return self._pseudonyms[key]

    def _quarantine(self, annotation: Annotation, entry: ManifestItem | None, annotator: str | None,
                    field_name: str | None, reason: str, detail: str) -> None:
        self.out.quarantine.append({
            "locator": annotation.locator,
            "batch_id": entry.batch_id if entry else None,
            "item_id": safe_token(annotation.item_id) if annotation.item_id else None,
            "annotator": annotator,
            "field": safe_name(field_name),
            "reason": reason,
            "detail": detail,
        })

    def _whole(self, annotation: Annotation, entry, annotator, reason: str, detail: str) -> None:
        # Each answer of the annotation is quarantined; one row when it holds none.
        answered = [r for r in annotation.results if r.values or not annotation.flat]
        for result in answered or [None]:
            self._quarantine(annotation, entry, annotator, result.field if result else None, reason, detail)

    def add(self, annotation: Annotation, order: int) -> None:
        annotator = self._annotator(annotation.annotator)
        entry = self.manifests.get(annotation.item_id) if annotation.item_id else None
        if annotation.cancelled:
            return self._whole(annotation, entry, annotator, "cancelled", "the annotator cancelled (skipped) the task")
        if annotation.item_id is None:
            return self._whole(annotation, entry, annotator, "missing_item_id", "the task data has no item_id")
        if entry is None:
            return self._whole(annotation, entry, annotator, "unknown_item",
                               f"item {safe_token(annotation.item_id)} is in no batch manifest")
        if annotator is None:
            return self._whole(annotation, entry, annotator, "missing_annotator",
                               "no annotator (add an annotator column with who labelled each row)")
        dims = entry.dimensions
        passes = {p for r in annotation.results if (p := _field_pass(r.field, dims)) is not None}
        if not passes and annotation.pass_hint:
            passes = {annotation.pass_hint}
        answered = set()
        for result in annotation.results:
            pass_ = _field_pass(result.field, dims)
            if pass_ is None:
                if result.values or not annotation.flat:  # an empty extra column says nothing
                    self._quarantine(annotation, entry, annotator, result.field, "unknown_field",
                                     f"{safe_name(result.field)} is not a control of batch {entry.batch_id}'s "
                                     f"configuration (dimensions: {', '.join(dims)})")
                continue
            if annotation.expert and result.field != CRITIQUE and not result.values:
                continue  # an expert answers the disputed dimensions only
            answered.add(result.field)
            value, reason, detail = check_value(result.field, result)
            if reason:
                self._quarantine(annotation, entry, annotator, result.field, reason, detail)
                continue
            self.out.labels.append(self._label(annotation, entry, annotator, result.field, pass_, value, order))
        # An expert answers the disputed dimensions only, and says why in the critique.
        required = ([CRITIQUE] if 2 in passes else []) if annotation.expert else _required(passes, dims)
        for missing in required:
            if missing not in answered:
                self._quarantine(annotation, entry, annotator, missing, "required_empty", ABSENT)

    def _label(self, annotation: Annotation, entry: ManifestItem, annotator: str, field_name: str, pass_: int,
               value: str, order: int) -> dict:
        item = entry.item
        role = ROLE_EXPERT if annotation.expert else ROLE_ANNOTATOR
        trace_id = item.get("trace_id")
        case_id = item.get("case_id") or (case_id_for_trace(trace_id) if trace_id else None)
        return {
            "label_id": label_id(entry.batch_id, item["item_id"], annotator, field_name, role),
            "batch_id": entry.batch_id,
            "item_id": item["item_id"],
            "origin": item.get("origin"),
            "trace_id": trace_id,
            "case_id": case_id,
            "position": item.get("position"),
            "pass": pass_,
            "role": role,
            "annotator": annotator,
            "field": field_name,
            "value": value,
            "annotated_at": annotation.annotated_at,
            "lead_time_s": annotation.lead_time_s,
            "source_format": self.parsed.format,
            "ground_truth": annotation.ground_truth,
            "feedback_only": False,
            "locator": annotation.locator,  # for a quarantine row if redaction fails; not stored
            "order": order,
        }


def _redact_each(redact_texts: RedactTexts, texts: list[str]) -> list[str | None]:
    """Redacted texts, None where the redaction stage failed (the batch call is retried one text
    at a time, so one bad text costs only itself)."""
    if not texts:
        return []
    try:
        out = redact_texts(texts)
        if len(out) == len(texts):
            return list(out)
    except Exception:  # noqa: BLE001 - any failure of the stage: isolate the text that causes it
        pass
    isolated: list[str | None] = []
    for text in texts:
        try:
            isolated.append(redact_texts([text])[0])
        except Exception:  # noqa: BLE001
            isolated.append(None)
    return isolated


def _apply_redaction(prepared: PreparedFile, redact_texts: RedactTexts) -> None:
    text_rows = [row for row in prepared.labels if row["field"] in TEXT_FIELDS]
    redacted = _redact_each(redact_texts, [row["value"] for row in text_rows])
    failed = set()
    for row, text in zip(text_rows, redacted):
        if text is None:
            failed.add(id(row))
            prepared.quarantine.append({
                "locator": row["locator"], "batch_id": row["batch_id"], "item_id": row["item_id"],
                "annotator": row["annotator"], "field": row["field"], "reason": "redaction_failed",
                "detail": "the redaction stage failed on this text; it is not stored"})
        else:
            row["value"] = text
    if failed:
        prepared.labels = [row for row in prepared.labels if id(row) not in failed]


def prepare_labels(raw: bytes, manifests: dict[str, ManifestItem], pseudonymize: Pseudonymize,
                   redact_texts: RedactTexts) -> PreparedFile:
    """One file's candidate labels and quarantine rows (pure: nothing is written)."""
    try:
        parsed = parse_export(raw)
    except ExportError as exc:
        return PreparedFile(None, quarantine=[{
            "locator": "file", "batch_id": None, "item_id": None, "annotator": None, "field": None,
            "reason": exc.reason, "detail": str(exc)}], error=exc)
    builder = _FileBuilder(parsed, manifests, pseudonymize)
    for order, annotation in enumerate(parsed.annotations):
        builder.add(annotation, order)
    _apply_redaction(builder.out, redact_texts)
    return builder.out


# ---------------------------------------------------------------------------- latest wins
@dataclass
class Resolution:
    upserts: list[dict]  # label rows to write (each replaces the row with its label_id)
    audit: list[dict]
    labels: int = 0  # this file's answers that are now the current label
    unchanged: int = 0  # answers identical to a label already stored (a cumulative re-export)
    superseded: int = 0  # answers of this file that a later submission replaced


def _newer(candidate: dict, current: dict) -> bool:
    a, b = candidate["annotated_at"], current["annotated_at"]
    if a is not None and b is not None and a != b:
        return a > b
    return True  # same time, or a time missing: the later file, or the later place in the file, wins


def _same(candidate: dict, current: dict) -> bool:
    return candidate["value"] == current["value"] and candidate["annotated_at"] == current["annotated_at"]


def _audit_row(old: dict, new: dict, now: datetime) -> dict:
    return {"label_id": new["label_id"], "batch_id": new["batch_id"], "item_id": new["item_id"],
            "annotator": new["annotator"], "field": new["field"],
            "old_value": old["value"], "old_annotated_at": old["annotated_at"], "old_file_sha256": old["file_sha256"],
            "new_value": new["value"], "new_annotated_at": new["annotated_at"], "new_file_sha256": new["file_sha256"],
            "recorded_at": now}


def resolve(candidates: list[dict], existing: dict[str, dict], file_sha256: str, now: datetime) -> Resolution:
    """Meet one file's candidate labels with the stored ones (`existing`, by label_id): per
    annotator, item and field the latest `annotated_at` wins (ties and missing times: the later
    file, then the later place in the file); each submission that loses goes to the audit,
    beside the one that replaced it. Resubmitting the very same answer (value and time) is not
    a new submission."""
    current: dict[str, dict] = dict(existing)
    audit: list[dict] = []
    mine: list[tuple[dict, dict]] = []  # (this file's row, the row it counts as: itself or its twin)
    for candidate in candidates:
        row = {k: v for k, v in candidate.items() if k not in ("locator", "order")}
        row.update(file_sha256=file_sha256, imported_at=now)
        lid = row["label_id"]
        held = current.get(lid)
        if held is None:
            current[lid] = row
            mine.append((row, row))
        elif _same(row, held):
            mine.append((row, held))
        elif _newer(row, held):
            audit.append(_audit_row(held, row, now))
            current[lid] = row
            mine.append((row, row))
        else:
            audit.append(_audit_row(row, held, now))
            mine.append((row, None))
    resolution = Resolution(upserts=[], audit=audit)
    written = set()
    for row, counts_as in mine:
        lid = row["label_id"]
        if counts_as is not None and current[lid] is counts_as:
            if counts_as is row:
                resolution.labels += 1
                if lid not in written:
                    resolution.upserts.append(row)
                    written.add(lid)
            else:
                resolution.unchanged += 1
        else:
            resolution.superseded += 1
    return resolution


# ---------------------------------------------------------------------------- the real parts
_DETECTORS: dict = {}


def pseudonymizer_from_settings(settings):
    """The trace pipeline's Pseudonymizer (EVALFLOW_PSEUDONYM_KEY or <data>/.pseudonym_key, created
    on first use as the redaction stage does; EVALFLOW_PII_OPERATORS)."""
    from evalflow.lib.common.settings import text_setting
    from evalflow.lib.redact.pseudonym import OPERATORS_ENV, Pseudonymizer, load_key, parse_operators

    key, _source = load_key(settings.data_dir, create=True)
    return Pseudonymizer(key=key, operators=parse_operators(text_setting(OPERATORS_ENV)))


def redactor_from_settings(settings, pseudonymizer=None) -> RedactTexts:
    """`redact_texts` backed by the redaction stage: the tuned detector (configured by the same
    redaction settings (docs/configuration.md), loaded once per process) and the same typed placeholders as traces,
    so a name in a critique becomes the <PERSON_...> it is in the trace it judges."""
    from evalflow.lib.redact.config import detector_config_from_env
    from evalflow.lib.redact.engine import PiiDetector
    from evalflow.lib.redact.traces import apply_detections

    pseudonymizer = pseudonymizer or pseudonymizer_from_settings(settings)
    config = detector_config_from_env()
    if config not in _DETECTORS:  # spaCy and the recognizers take seconds to load
        _DETECTORS[config] = PiiDetector(config)
    detector = _DETECTORS[config]

    def redact_texts(texts: list[str]) -> list[str]:
        found = detector.detect_batch(texts)
        return [apply_detections(text, detections, pseudonymizer) for text, detections in zip(texts, found)]

    return redact_texts


def import_parts(settings) -> tuple[Pseudonymize, RedactTexts]:
    """(pseudonymize, redact_texts) for `store.import_label_files`, from the settings."""
    pseudonymizer = pseudonymizer_from_settings(settings)
    return annotator_pseudonymizer(pseudonymizer), redactor_from_settings(settings, pseudonymizer)
