"""spaCy for the detector: the model loaded with only what NER needs, and NER's matrix
products through numpy's BLAS on one thread. Presidio's view of this pipeline (its NlpEngine
and NlpArtifacts) is in presidio_internals.py."""

from __future__ import annotations

from pathlib import Path


def model_dir(model_name: str) -> Path | None:
    """The folder holding the model's config.cfg, or None if it cannot be found."""
    import spacy.util

    try:
        base = spacy.util.get_package_path(model_name) if spacy.util.is_package(model_name) else Path(model_name)
    except Exception:  # noqa: BLE001 - a model we cannot locate simply gets no lexicon
        return None
    if (base / "config.cfg").exists():
        return base
    for child in sorted(base.glob("*/config.cfg")):
        return child.parent
    return None


def load_spacy(model_name: str):
    """spaCy with only what NER needs: `ner`, plus the tok2vec it listens to if it shares one.
    Returns (nlp, the model's folder or None)."""
    import spacy
    import spacy.util

    folder = model_dir(model_name)
    exclude: list[str] = []
    if folder is not None:
        config = spacy.util.load_config(folder / "config.cfg", interpolate=False)
        pipeline = list(config["nlp"]["pipeline"])
        keep = {"ner"}
        ner_tok2vec = config["components"].get("ner", {}).get("model", {}).get("tok2vec", {})
        if "Listener" in str(ner_tok2vec.get("@architectures", "")):
            keep.add(str(ner_tok2vec.get("upstream", "tok2vec")) if ner_tok2vec.get("upstream") not in
                     (None, "*") else "tok2vec")
        exclude = [name for name in pipeline if name not in keep]
    nlp = spacy.load(model_name, exclude=exclude)
    return nlp, folder


def numpy_gemm_for_ner(nlp):
    """Point the NER model's layers at thinc's NumpyOps without blis (numpy's BLAS does the
    matrix products) and return a callable giving a context that holds that BLAS to one thread
    (several threads fight over two cores and lose). None, and nothing changed, if threadpoolctl
    or the NER component is missing."""
    try:
        from thinc.api import NumpyOps
        from threadpoolctl import threadpool_limits

        ner = nlp.get_pipe("ner")
    except Exception:  # noqa: BLE001 - an optional speed-up: keep spaCy's defaults
        return None
    ops = NumpyOps(use_blis=False)
    for node in ner.model.walk():
        node.ops = ops
    return lambda: threadpool_limits(limits=1, user_api="blas")
