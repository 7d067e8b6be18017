"""Contamination: are eval cases in training data, fine-tuning sets, few-shot examples, judge
prompts or public benchmarks, and do the eval set's own splits leak into each other?

    from evalflow.lib.contamination import check_cases, split_leaks, load_corpora_config
    report = check_cases([{"case_id": "c1", "text": "..."}], load_corpora_config(data_dir), embedder=embedder)

Five methods per case (exact after normalisation, 13-gram overlap, three random 50-character
substrings, MinHash LSH near-duplicates, embedding paraphrase similarity), all through an index
of the cases that each corpus streams through once (index.py). docs/contamination.md.
"""

from importlib import import_module

# Where each public name lives. Loaded on first use (PEP 562), so that the code location, which
# imports the store for its DDL, does not load numpy and the index with it.
_HOMES = {
    "check_cases": "check", "method_descriptions": "check", "split_leaks": "check",
    "CONFIG_ENV": "config", "KINDS": "config", "REGISTERED_KINDS": "config", "ContaminationConfig": "config",
    "ContaminationConfigError": "config", "Corpus": "config", "config_path": "config",
    "load_contamination_config": "config", "load_corpora_config": "config",
    "iter_documents": "corpora", "parse_corpus_spec": "corpora", "trace_prompt_documents": "corpora",
    "METHODS": "index", "case_text": "text", "normalise": "text",
}


def __getattr__(name: str):
    if name in _HOMES:
        value = getattr(import_module(f"evalflow.lib.contamination.{_HOMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'evalflow.lib.contamination' has no attribute {name!r}")


__all__ = [
    "CONFIG_ENV", "KINDS", "METHODS", "REGISTERED_KINDS", "ContaminationConfig", "ContaminationConfigError",
    "Corpus", "case_text", "check_cases", "config_path", "iter_documents", "load_contamination_config",
    "load_corpora_config", "method_descriptions", "normalise", "parse_corpus_spec", "split_leaks",
    "trace_prompt_documents",
]
