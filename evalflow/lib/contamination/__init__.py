"""Contamination: are eval cases in training data, fine-tuning sets, few-shot examples, judge
prompts or public benchmarks, and do the eval set's own splits leak into each other?

    from evalflow.lib.contamination import check_cases, split_leaks, load_corpora_config
    report = check_cases([{"case_id": "c1", "text": "..."}], load_corpora_config(data_dir), embedder=embedder)

Five methods per case (exact after normalisation, 13-gram overlap, three random 50-character
substrings, MinHash LSH near-duplicates, embedding paraphrase similarity), all through an index
of the cases that each corpus streams through once (index.py). docs/contamination.md.
"""

from evalflow.lib.contamination.check import check_cases, method_descriptions, split_leaks
from evalflow.lib.contamination.config import (
    CONFIG_ENV,
    KINDS,
    REGISTERED_KINDS,
    ContaminationConfig,
    ContaminationConfigError,
    Corpus,
    config_path,
    load_contamination_config,
    load_corpora_config,
)
from evalflow.lib.contamination.corpora import iter_documents, parse_corpus_spec, trace_prompt_documents
from evalflow.lib.contamination.index import METHODS
from evalflow.lib.contamination.text import case_text, normalise

__all__ = [
    "CONFIG_ENV", "KINDS", "METHODS", "REGISTERED_KINDS", "ContaminationConfig", "ContaminationConfigError",
    "Corpus", "case_text", "check_cases", "config_path", "iter_documents", "load_contamination_config",
    "load_corpora_config", "method_descriptions", "normalise", "parse_corpus_spec", "split_leaks",
    "trace_prompt_documents",
]
