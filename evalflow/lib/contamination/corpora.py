"""Reading a corpus: its documents as (doc_id, text) pairs, streamed (a million-line file is never
held in memory).

Files: JSONL (`.jsonl`, `.ndjson`, `.json` with one object per line; gzip when the name ends in
`.gz`), CSV (header row; `.csv`, `.csv.gz`), Parquet (`.parquet`, read in row batches). A
document's text is its `fields` joined by new lines; without fields, its `text` field, else
every string field of the record. Its id is the `id_field`, else `id`, `doc_id` or `task_id`
when present, else the row number (1-based; the line number for JSONL). A line that is not a
JSON object, and a record with no text, are counted (`CorpusStats.skipped`), never fatal.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import orjson

from evalflow.lib.contamination.config import ContaminationConfigError, Corpus
from evalflow.lib.contamination.text import joined_fields

ID_FIELDS = ("id", "doc_id", "task_id")
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}


@dataclass
class CorpusStats:
    documents: int = 0
    skipped: int = 0


def corpus_format(path: Path) -> tuple[str, bool]:
    """(format, gzipped) from the file name."""
    name = path.name.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    for suffix, kind in FORMATS.items():
        if name.endswith(suffix) and not (kind == "parquet" and gz):
            return kind, gz
    raise ContaminationConfigError(f"{path}: not a corpus format evalflow reads (JSONL, CSV or Parquet by its "
                                   "extension: .jsonl, .ndjson, .json, .csv, optionally .gz; .parquet)")


def _text_of(record: Mapping[str, Any], fields: tuple[str, ...]) -> str:
    if fields:
        return joined_fields(record, fields)
    if isinstance(record.get("text"), str):
        return record["text"]
    return "\n".join(v for v in record.values() if isinstance(v, str))


def _id_of(record: Mapping[str, Any], id_field: str | None, row: int) -> str:
    if id_field is not None:
        value = record.get(id_field)
        return str(row) if value is None else str(value)
    for name in ID_FIELDS:
        value = record.get(name)
        if value is not None and value != "":
            return str(value)
    return str(row)


def _open_text(path: Path, gz: bool):
    if gz:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline="")
    return path.open("r", encoding="utf-8", errors="replace", newline="")


def _records(path: Path, fields: tuple[str, ...], id_field: str | None) -> Iterator[tuple[int, Any]]:
    kind, gz = corpus_format(path)
    if kind == "jsonl":
        with _open_text(path, gz) as handle:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield line_no, orjson.loads(line)
                except orjson.JSONDecodeError:
                    yield line_no, None
    elif kind == "csv":
        with _open_text(path, gz) as handle:
            reader = csv.DictReader(handle)
            for row_no, row in enumerate(reader, start=1):
                yield row_no, row
    else:
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(path)
        except Exception as error:  # pyarrow raises several types for a file that is not Parquet
            raise ContaminationConfigError(f"{path}: not a readable Parquet file: {error}") from None
        names = set(parquet.schema_arrow.names)
        wanted = [n for n in (*fields, *([id_field] if id_field else []), *ID_FIELDS, "text") if n in names]
        columns = list(dict.fromkeys(wanted)) if fields else None
        row_no = 0
        for batch in parquet.iter_batches(batch_size=10_000, columns=columns):
            for record in batch.to_pylist():
                row_no += 1
                yield row_no, record


def iter_documents(corpus: Corpus, stats: CorpusStats | None = None) -> Iterator[tuple[str, str]]:
    """(doc_id, text) for every document of the corpus, in file order."""
    stats = stats if stats is not None else CorpusStats()
    if corpus.documents is not None:
        for row, item in enumerate(corpus.documents, start=1):
            if isinstance(item, Mapping):
                doc_id, text = _id_of(item, corpus.id_field, row), _text_of(item, corpus.fields)
            else:
                doc_id, text = item
            if not isinstance(text, str) or not text.strip():
                stats.skipped += 1
                continue
            stats.documents += 1
            yield str(doc_id), text
        return
    if not corpus.path.is_file():
        raise ContaminationConfigError(f"corpus {corpus.name}: no such file: {corpus.path}")
    for row, record in _records(corpus.path, corpus.fields, corpus.id_field):
        if not isinstance(record, Mapping):
            stats.skipped += 1
            continue
        text = _text_of(record, corpus.fields)
        if not text.strip():
            stats.skipped += 1
            continue
        stats.documents += 1
        yield _id_of(record, corpus.id_field, row), text


def parse_corpus_spec(spec: str, kind: str = "training") -> Corpus:
    """`NAME=PATH[:FIELD[,FIELD...]]` (the CLI's --corpus). PATH may itself hold ':' when the
    whole of it names an existing file."""
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        raise ContaminationConfigError(f"expected NAME=PATH[:FIELD], got {spec!r}")
    path, fields = Path(rest), ()
    if not path.exists() and ":" in rest:
        head, _, tail = rest.rpartition(":")
        if head and tail and "/" not in tail:
            path, fields = Path(head), tuple(f.strip() for f in tail.split(",") if f.strip())
    return Corpus(name.strip(), kind, path, fields)


def trace_prompt_documents(traces: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, str]]:
    """The system prompts and few-shot examples seen in traces, as documents of a `trace_prompts`
    corpus. Per trace (dicts with trace_id and messages, a list or its JSON text): every system or
    developer message, and every message whose `name` starts with "example" (OpenAI's convention
    for few-shot turns, `example_user` / `example_assistant`). The conversation's own history is
    not taken: it is the cases' source, not a prompt. Each distinct text once; its id is the first
    trace it was seen in, with the message's index."""
    seen: set[str] = set()
    for trace in traces:
        messages = trace.get("messages")
        if isinstance(messages, (str, bytes)):
            try:
                messages = orjson.loads(messages)
            except orjson.JSONDecodeError:
                continue
        if not isinstance(messages, list):
            continue
        for i, message in enumerate(messages):
            if not isinstance(message, Mapping) or not isinstance(message.get("content"), str):
                continue
            name = message.get("name")
            example = isinstance(name, str) and name.lower().startswith("example")
            if message.get("role") not in ("system", "developer") and not example:
                continue
            text = message["content"]
            if not text.strip() or text in seen:
                continue
            seen.add(text)
            yield f"{trace.get('trace_id')}#{i}", text
