"""Thresholds and caps of the contamination check (`ContaminationConfig`), and the registered
corpora (`load_corpora_config`), read from one TOML file.

The file is `<data_dir>/contamination.toml`, or the file EVALFLOW_CONTAMINATION_CONFIG names.
Neither there: no registered corpora and the default thresholds. Format (docs/contamination.md):

    [thresholds]                 # optional; any field of ContaminationConfig
    embedding_threshold = 0.9

    [[corpus]]
    name = "sft-2026-09"         # letters, digits, . _ -
    kind = "fine_tuning"         # training | fine_tuning | few_shot | judge_prompt | public_benchmark
    path = "corpora/sft.jsonl"   # JSONL (.jsonl, .ndjson, optionally .gz), CSV or Parquet;
                                 # relative to the TOML file's folder
    fields = ["prompt"]          # optional: the text fields (default: `text`, else every string field)
    id_field = "id"              # optional: the document id (default: id, doc_id or task_id, else the row)
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from evalflow.lib.common.settings import text_setting

CONFIG_ENV = "EVALFLOW_CONTAMINATION_CONFIG"
CONFIG_FILE = "contamination.toml"
# Kinds a user registers; `trace_prompts` (system prompts and few-shot turns seen in traces) and
# `dataset` (another split of the eval set) are built by the pipeline itself.
REGISTERED_KINDS = ("training", "fine_tuning", "few_shot", "judge_prompt", "public_benchmark")
KINDS = (*REGISTERED_KINDS, "trace_prompts", "dataset")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ContaminationConfigError(ValueError):
    """The configuration file (or a corpus spec) is wrong; the message names the file and the field."""


@dataclass(frozen=True)
class Corpus:
    """A text collection to check cases against: a file (`path`, read with `fields`) or documents
    given in memory (`documents`: (doc_id, text) pairs or {"doc_id"|"id", "text"} dicts; read once)."""

    name: str
    kind: str
    path: Path | None = None
    fields: tuple[str, ...] = ()
    documents: Iterable | None = field(default=None, compare=False, repr=False)
    id_field: str | None = None

    def __post_init__(self):
        if not _NAME.match(self.name or ""):
            raise ContaminationConfigError(f"corpus name {self.name!r}: use letters, digits, '.', '_' or '-' "
                                           "(at most 64, starting with a letter or digit)")
        if self.kind not in KINDS:
            raise ContaminationConfigError(f"corpus {self.name}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if (self.path is None) == (self.documents is None):
            raise ContaminationConfigError(f"corpus {self.name}: give a path or documents (one of them)")
        object.__setattr__(self, "fields", tuple(self.fields))
        if self.path is not None:
            object.__setattr__(self, "path", Path(self.path))


@dataclass(frozen=True)
class ContaminationConfig:
    """Every threshold and cap. Defaults were chosen on the development split of the measurement
    (docs/contamination.md) and checked on its held-out split."""

    # 13-gram overlap: shared distinct n-grams over the smaller side's count (the case's, or the
    # document's when the document is the smaller, counted as at least `ngram_min_doc_windows`).
    ngram_n: int = 13
    ngram_threshold: float = 0.2
    ngram_min_tokens: int = 8          # shorter cases use their whole length as n; below this, no n-gram check
    ngram_min_doc_windows: int = 8
    # Substring probes: `substring_probes` random substrings of `substring_length` characters of the
    # stripped case (its whole stripped text when shorter, if at least `substring_min_length`).
    substring_length: int = 50
    substring_probes: int = 3
    substring_min_length: int = 30
    substring_min_found: int = 1       # probes that must be found in one document
    seed: int = 0
    # MinHash LSH (datasketch) over each segment's set of words without stop words.
    num_perm: int = 128
    minhash_threshold: float = 0.65    # estimated Jaccard for a near-duplicate
    lsh_threshold: float = 0.4         # the LSH index's threshold: candidates for the embedder
    minhash_min_tokens: int = 5        # sets smaller than this are not compared
    # Embedding paraphrase similarity (the pipeline's embedder), cosine.
    embedding_threshold: float = 0.86
    embed_candidates_per_case: int = 5     # per case and corpus: its best LSH candidates...
    embed_candidate_min_jaccard: float = 0.2  # ...whose estimated Jaccard is at least this
    embed_full_max_segments: int = 20_000  # a corpus with at most this many segments is embedded whole
    max_segment_tokens: int = 256          # segments (text.segments): the embedder reads 256 tokens
    # The report: matches kept per case (best first); every method's best score is kept anyway.
    max_matches_per_case: int = 20
    batch_documents: int = 2_000

    def __post_init__(self):
        for name in ("ngram_threshold", "minhash_threshold", "lsh_threshold", "embed_candidate_min_jaccard"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ContaminationConfigError(f"{name} must be in (0, 1], got {value!r}")
        if not -1.0 <= self.embedding_threshold <= 1.0:
            raise ContaminationConfigError(f"embedding_threshold must be in [-1, 1], got {self.embedding_threshold!r}")
        positive = ("ngram_n", "ngram_min_tokens", "substring_length", "substring_probes", "substring_min_length",
                    "substring_min_found", "num_perm", "minhash_min_tokens", "max_segment_tokens",
                    "max_matches_per_case", "batch_documents")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ContaminationConfigError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if self.substring_min_length < 16 or self.substring_length < self.substring_min_length:
            raise ContaminationConfigError("substring_min_length must be at least 16 and at most substring_length")
        if self.substring_min_found > self.substring_probes:
            raise ContaminationConfigError("substring_min_found cannot exceed substring_probes")
        if self.ngram_min_tokens > self.ngram_n:
            raise ContaminationConfigError("ngram_min_tokens cannot exceed ngram_n")
        # datasketch refuses fewer than 2 permutations, and numpy seeds (MinHash uses seed + 1)
        # must fit in 32 bits: say so here, not as a ValueError from inside the index.
        if self.num_perm < 2:
            raise ContaminationConfigError(f"num_perm must be at least 2, got {self.num_perm!r}")
        if not 0 <= self.seed < 2**32 - 1:
            raise ContaminationConfigError(f"seed must be in [0, {2**32 - 2}], got {self.seed!r}")
        for name in ("embed_candidates_per_case", "embed_full_max_segments", "ngram_min_doc_windows"):
            if int(getattr(self, name)) < 0:
                raise ContaminationConfigError(f"{name} must be 0 or more, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "ContaminationConfig":
        return dataclasses.replace(self, **changes)


def config_path(data_dir: Path) -> Path:
    override = text_setting(CONFIG_ENV)
    return Path(override).expanduser() if override else Path(data_dir) / CONFIG_FILE


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ContaminationConfigError(f"{path}: not valid TOML: {error}") from None


def _load(data_dir: Path) -> tuple[Path, dict]:
    path = config_path(data_dir)
    if not path.exists():
        if text_setting(CONFIG_ENV):
            raise ContaminationConfigError(f"{CONFIG_ENV} names {path}, which does not exist")
        return path, {}
    if not path.is_file():
        raise ContaminationConfigError(f"{path} is not a file")
    data = _read(path)
    unknown = sorted(set(data) - {"thresholds", "corpus"})
    if unknown:
        raise ContaminationConfigError(f"{path}: unknown section(s) {', '.join(unknown)} (expected [thresholds], "
                                       "[[corpus]])")
    return path, data


def config_from_dict(values: Mapping[str, Any], where: str = "thresholds") -> ContaminationConfig:
    known = {f.name: f for f in dataclasses.fields(ContaminationConfig)}
    changes = {}
    for name, value in values.items():
        if name not in known:
            raise ContaminationConfigError(f"{where}.{name}: not a setting (known: {', '.join(sorted(known))})")
        default = getattr(ContaminationConfig(), name)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(default):
            raise ContaminationConfigError(f"{where}.{name}: expected {type(default).__name__}, got {value!r}")
        changes[name] = value
    return ContaminationConfig(**changes)


def load_contamination_config(data_dir: Path) -> ContaminationConfig:
    """The thresholds: defaults, overridden by the file's [thresholds] table."""
    path, data = _load(data_dir)
    table = data.get("thresholds") or {}
    if not isinstance(table, Mapping):
        raise ContaminationConfigError(f"{path}: [thresholds] must be a table")
    try:
        return config_from_dict(table)
    except ContaminationConfigError as error:
        raise ContaminationConfigError(f"{path}: {error}") from None


def load_corpora_config(data_dir: Path) -> list[Corpus]:
    """The registered corpora ([[corpus]] tables), paths resolved against the file's folder.
    A corpus whose file is missing or not a format we read is an error here, not minutes into a check."""
    from evalflow.lib.contamination.corpora import corpus_format  # corpora imports this module

    path, data = _load(data_dir)
    entries = data.get("corpus") or []
    if not isinstance(entries, list):
        raise ContaminationConfigError(f"{path}: corpus must be an array of tables ([[corpus]])")
    corpora, names = [], set()
    for i, entry in enumerate(entries):
        where = f"{path}: corpus[{i}]"
        if not isinstance(entry, Mapping):
            raise ContaminationConfigError(f"{where}: expected a table")
        unknown = sorted(set(entry) - {"name", "kind", "path", "fields", "id_field"})
        if unknown:
            raise ContaminationConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
        for required in ("name", "kind", "path"):
            if not isinstance(entry.get(required), str) or not entry[required].strip():
                raise ContaminationConfigError(f"{where}.{required}: required text")
        if entry["kind"] not in REGISTERED_KINDS:
            raise ContaminationConfigError(f"{where}.kind: {entry['kind']!r} is not one of "
                                           f"{', '.join(REGISTERED_KINDS)}")
        fields = entry.get("fields", [])
        if isinstance(fields, str):
            fields = [fields]
        if not isinstance(fields, list) or not all(isinstance(f, str) and f for f in fields):
            raise ContaminationConfigError(f"{where}.fields: a list of field names")
        id_field = entry.get("id_field")
        if id_field is not None and (not isinstance(id_field, str) or not id_field):
            raise ContaminationConfigError(f"{where}.id_field: a field name")
        file = Path(entry["path"]).expanduser()
        if not file.is_absolute():
            file = path.parent / file
        if not file.is_file():
            raise ContaminationConfigError(f"{where}.path: no such file: {file}")
        try:
            corpus_format(file)
        except ContaminationConfigError as error:
            raise ContaminationConfigError(f"{where}.path: {error}") from None
        if entry["name"] in names:
            raise ContaminationConfigError(f"{where}.name: {entry['name']!r} is registered twice")
        names.add(entry["name"])
        try:
            corpora.append(Corpus(entry["name"], entry["kind"], file, tuple(fields), id_field=id_field))
        except ContaminationConfigError as error:
            raise ContaminationConfigError(f"{where}: {error}") from None
    return corpora
