"""Contamination check (evalflow.lib.contamination): each method on small fixtures of our own,
the index against a naive computation, the report's shape, split leaks, determinism."""

from __future__ import annotations

import json
import random
import string

import numpy as np
import pytest

from evalflow.lib.contamination import (
    ContaminationConfig,
    Corpus,
    case_text,
    check_cases,
    normalise,
    split_leaks,
)
from evalflow.lib.contamination.index import CaseIndex, ngram_hashes
from evalflow.lib.contamination.text import TokenHasher, segments, stripped, tokens

QUESTION = ("Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for "
            "her friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh "
            "duck egg. How much in dollars does she make every day at the farmers' market?")
OTHER = ("A robe takes 2 bolts of blue fiber and half that much white fiber. How many bolts in total does it take "
         "to make the robe for the winter festival?")
UNRELATED = "I still have not received my new card, I ordered it over a week ago and nothing has arrived yet."


class BagOfWords:
    """A stand-in for the sentence embedder: hashed bag of words, L2-normalised. Word order does not
    matter to it, so a reordered text is its own paraphrase."""

    def __init__(self):
        self.calls: list[int] = []

    def encode(self, texts):
        self.calls.append(len(texts))
        out = np.zeros((len(texts), 512), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in tokens(text):
                out[i, hash(word) % 512] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)

    def describe(self):
        return {"model": "bag-of-words"}


def corpus(docs, name="corpus", kind="training"):
    return Corpus(name, kind, documents=list(docs))


def one(report, case_id):
    return next(c for c in report["cases"] if c["case_id"] == case_id)


def methods_hit(result):
    return {m for m, v in result["methods"].items() if v["hit"]}


# ----------------------------------------------------------------------------- text
def test_normalisation_ignores_case_punctuation_and_white_space():
    assert normalise("What's  the TOTAL?\n") == normalise("what s the total") == "what s the total"
    assert stripped("A-b c!") == stripped("ab C") == "abc"


def test_segments_keep_a_short_document_whole_and_cut_a_long_one_at_paragraphs():
    assert segments("one two three four") == ["one two three four"]
    long = "\n\n".join(f"paragraph {i} " + " ".join(f"w{i}_{j}" for j in range(100)) for i in range(4))
    parts = segments(long, max_tokens=256)
    assert len(parts) == 4 and all(p.startswith("paragraph") for p in parts)
    huge = " ".join(f"w{j}" for j in range(1000))
    windows = segments(huge, max_tokens=256)
    assert all(len(tokens(w)) <= 256 for w in windows) and len(windows) >= 7
    assert set(tokens(huge)) == set().union(*(tokens(w) for w in windows))


def test_case_text_of_an_eval_case_is_its_user_turns_and_query():
    case = {"case_id": "c", "input_payload": {
        "user_query": "and the fee?", "messages": [
            {"role": "system", "content": "You are a bank assistant."},
            {"role": "user", "content": "How do I send money abroad?"},
            {"role": "assistant", "content": "Use the transfer tab."},
            {"role": "user", "content": "and the fee?"}],
        "retrieved_context": [{"doc_id": "kb", "text": "Fees are 1%.", "score": 1.0}], "tool_calls": []}}
    assert case_text(case) == "How do I send money abroad?\nand the fee?"
    assert case_text({"case_id": "c", "text": "given"}) == "given"


# ----------------------------------------------------------------------------- each method
def test_exact_match_after_normalisation():
    docs = [("d1", QUESTION.upper().replace(" ", "  ") + "\n"), ("d2", OTHER)]
    report = check_cases([{"case_id": "q", "text": QUESTION}], [corpus(docs)])
    result = one(report, "q")
    assert result["contaminated"] and "exact" in methods_hit(result)
    assert {(m["doc_id"], m["method"]) for m in result["matches"]} >= {("d1", "exact")}


def test_a_case_inside_a_longer_few_shot_prompt_is_found_but_not_as_exact():
    prompt = ("Solve each problem step by step.\n\nQuestion: " + OTHER + "\nAnswer: 3\n\nQuestion: " + QUESTION +
              "\nAnswer: Janet sells 9 eggs and makes $18.\n\nQuestion: What is 7 times 6?\nAnswer: 42\n")
    report = check_cases([{"case_id": "q", "text": QUESTION}], [corpus([("prompt-1", prompt)], kind="few_shot")])
    result = one(report, "q")
    assert result["contaminated"]
    assert {"ngram", "substring"} <= methods_hit(result)
    assert "exact" not in methods_hit(result)
    assert result["methods"]["ngram"]["score"] == 1.0


def test_a_short_case_uses_its_own_length_as_n():
    case = "how do i close my savings account today please"  # 9 words
    doc = "Users often ask: How do I close my savings account today, please? We answer within a day."
    report = check_cases([{"case_id": "s", "text": case}], [corpus([("d", doc)])],
                         config=ContaminationConfig(substring_min_length=40))
    result = one(report, "s")
    assert "ngram" in methods_hit(result) and result["methods"]["ngram"]["score"] == 1.0


def test_a_document_inside_a_longer_case_is_found_by_its_13_grams():
    case = "Please help me with my homework, I have been stuck for an hour. " + QUESTION + " Thanks a lot!"
    report = check_cases([{"case_id": "wrapped", "text": case}], [corpus([("bench-1", QUESTION)])])
    result = one(report, "wrapped")
    assert "ngram" in methods_hit(result) and result["methods"]["ngram"]["score"] == 1.0


def test_a_near_duplicate_is_found_by_minhash_not_by_exact():
    near = QUESTION.replace("farmers' market daily", "farmers' market each day").replace("breakfast", "lunch")
    report = check_cases([{"case_id": "q", "text": QUESTION}], [corpus([("near", near)])])
    result = one(report, "q")
    assert "minhash" in methods_hit(result) and "exact" not in methods_hit(result)
    assert 0.65 <= result["methods"]["minhash"]["score"] < 1.0


def test_unrelated_text_is_not_contaminated_and_every_method_says_so():
    docs = [("d1", QUESTION), ("d2", OTHER)]
    report = check_cases([{"case_id": "u", "text": UNRELATED}], [corpus(docs)], embedder=BagOfWords())
    result = one(report, "u")
    assert not result["contaminated"] and result["matches"] == []
    assert all(not v["hit"] for v in result["methods"].values())
    assert result["methods"]["exact"]["score"] == 0.0
    assert result["methods"]["embedding"]["score"] < 0.5


def test_methods_that_do_not_apply_to_a_short_case_say_why():
    report = check_cases([{"case_id": "s", "text": "ok thanks"}, {"case_id": "e", "text": "  ?! "}],
                         [corpus([("d", "ok thanks")])])
    short = one(report, "s")
    assert short["methods"]["exact"]["hit"] and short["contaminated"]
    assert short["methods"]["ngram"]["score"] is None and "fewer than 8 words" in short["methods"]["ngram"]["skipped"]
    assert "shorter than 30 characters" in short["methods"]["substring"]["skipped"]
    assert short["methods"]["embedding"]["skipped"] == "no embedder"
    empty = one(report, "e")
    assert not empty["contaminated"] and empty["methods"]["exact"]["skipped"] == "the case has no words"
    assert report["summary"]["empty_cases"] == 1


# ----------------------------------------------------------------------------- the index against naive computations
def test_substring_probes_are_found_at_every_offset_of_a_document():
    """The documents are hashed only at every 35th position; a probe must still be found wherever it is."""
    rng = random.Random(3)
    case = " ".join("".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(40))
    index = CaseIndex([("c", case)], ContaminationConfig())
    probes = index.probes
    assert len(probes) == 3 and all(len(p) == 50 for p in probes)
    docs = []
    for offset in range(0, 80):
        noise = "".join(rng.choices(string.ascii_lowercase, k=offset))
        docs.append((f"d{offset}", noise + probes[offset % 3].decode() + "zz qq"))
    scan = index.scan(docs, index.new_scan("x", "training"))
    found = {doc for method, doc in scan.matches[0] if method == "substring"}
    assert found == {d for d, _ in docs}


def test_short_cases_get_one_probe_their_whole_text():
    case = "where is my new debit card now"  # 24 stripped characters < 30: no probe
    assert CaseIndex([("c", case)], ContaminationConfig()).probes == []
    case = "where is my brand new debit card right now"  # 34 characters: one probe, itself
    index = CaseIndex([("c", case)], ContaminationConfig())
    assert index.probes == [stripped(case).encode()]
    scan = index.scan([(f"d{k}", "x" * k + " " + case.upper()) for k in range(40)], index.new_scan("x", "training"))
    assert {doc for m, doc in scan.matches[0] if m == "substring"} == {f"d{k}" for k in range(40)}


def test_ngram_hashes_do_not_depend_on_position_and_match_a_naive_count():
    hasher = TokenHasher()
    words = [f"w{i % 17}" for i in range(60)]
    values = hasher(words)
    hashes = ngram_hashes(values, 13)
    assert len(hashes) == 48
    shifted = ngram_hashes(hasher(["pad", "pad", *words]), 13)[2:]
    assert np.array_equal(hashes, shifted)
    # windows with the same words hash the same, different words differently
    naive = {tuple(words[i:i + 13]) for i in range(48)}
    assert len(set(hashes.tolist())) == len(naive)


def test_ngram_scores_equal_a_pairwise_set_computation_on_random_text():
    rng = random.Random(11)
    vocabulary = [f"v{i}" for i in range(40)]
    cases = [(f"c{i}", " ".join(rng.choices(vocabulary, k=rng.randint(14, 40)))) for i in range(30)]
    docs = []
    for i in range(120):
        words = rng.choices(vocabulary, k=rng.randint(5, 60))
        if i % 3 == 0:  # plant a piece of a case
            case_words = cases[rng.randrange(30)][1].split()
            start = rng.randrange(len(case_words) - 13)
            words[rng.randrange(len(words)):0] = case_words[start:start + rng.randint(13, 25)]
        docs.append((f"d{i}", " ".join(words)))
    config = ContaminationConfig(ngram_threshold=0.01, ngram_min_doc_windows=1, batch_documents=17)
    index = CaseIndex(cases, config)
    scan = index.scan(docs, index.new_scan("x", "training"))
    got = {(index.case_ids[c], d): s for c, found in scan.matches.items() for (m, d), s in found.items()
           if m == "ngram"}

    def grams(words):
        return {tuple(words[i:i + 13]) for i in range(len(words) - 12)}

    expected = {}
    for case_id, text in cases:
        cg = grams(text.split())
        for doc_id, doc in docs:
            dg = grams(doc.split())
            shared = len(cg & dg)
            if shared:
                expected[(case_id, doc_id)] = min(1.0, shared / min(len(cg), max(len(doc.split()) - 12, 1)))
    assert got.keys() == expected.keys() and len(expected) > 20
    assert all(abs(got[k] - expected[k]) < 1e-9 for k in expected)


# ----------------------------------------------------------------------------- embedding
def test_embedding_finds_a_paraphrase_in_a_small_corpus_embedded_whole():
    paraphrase = " ".join(reversed(QUESTION.split()))  # the same words, another order
    embedder = BagOfWords()
    report = check_cases([{"case_id": "q", "text": QUESTION}, {"case_id": "u", "text": UNRELATED}],
                         [corpus([("p", paraphrase), ("o", OTHER)])], embedder=embedder)
    assert "embedding" in methods_hit(one(report, "q"))
    assert not one(report, "u")["contaminated"]
    info = report["summary"]["corpora"][0]
    assert info["embedding"] == "full" and info["embedded_segments"] == 2
    assert report["summary"]["embedder"] == {"model": "bag-of-words"}


def test_a_segment_repeated_in_a_corpus_is_embedded_once():
    embedder = BagOfWords()
    docs = [(f"d{i}", OTHER) for i in range(10)] + [("p", " ".join(reversed(QUESTION.split())))]
    report = check_cases([{"case_id": "q", "text": QUESTION}], [corpus(docs)], embedder=embedder)
    assert report["summary"]["corpora"][0]["embedded_segments"] == 2
    assert sum(embedder.calls) == 3  # the case and the two distinct segments
    assert "embedding" in methods_hit(one(report, "q"))


def test_a_large_corpus_embeds_only_capped_minhash_candidates():
    rng = random.Random(5)
    words = QUESTION.split()
    paraphrases = []
    for i in range(12):
        shuffled = words[:]
        rng.shuffle(shuffled)
        paraphrases.append((f"p{i}", " ".join(shuffled)))
    filler = [(f"f{i}", " ".join(rng.choices(OTHER.split() + UNRELATED.split(), k=30))) for i in range(200)]
    config = ContaminationConfig(embed_full_max_segments=50, embed_candidates_per_case=5)
    embedder = BagOfWords()
    report = check_cases([{"case_id": "q", "text": QUESTION}], [corpus(paraphrases + filler)], embedder=embedder,
                         config=config)
    info = report["summary"]["corpora"][0]
    assert info["embedding"] == "candidates" and 1 <= info["embedded_segments"] <= 5
    result = one(report, "q")
    assert "embedding" in methods_hit(result)
    assert {m["doc_id"] for m in result["matches"] if m["method"] == "embedding"} <= {d for d, _ in paraphrases}


def test_without_an_embedder_the_embedding_method_is_skipped():
    report = check_cases([{"case_id": "q", "text": QUESTION}], [corpus([("d", OTHER)])])
    assert one(report, "q")["methods"]["embedding"] == {"hit": False, "score": None, "skipped": "no embedder"}
    assert report["summary"]["corpora"][0]["embedding"] == "off" and report["summary"]["embedder"] is None


# ----------------------------------------------------------------------------- the report
def test_the_report_has_one_object_per_case_in_order_with_the_issues_shape():
    cases = [{"case_id": f"c{i}", "text": t} for i, t in enumerate([OTHER, QUESTION, UNRELATED])]
    report = check_cases(cases, [corpus([("a", QUESTION)], name="a"), corpus([("b", OTHER)], name="b")])
    assert set(report) == {"summary", "cases"}
    assert [c["case_id"] for c in report["cases"]] == ["c0", "c1", "c2"]
    for result in report["cases"]:
        assert set(result) == {"case_id", "contaminated", "methods", "matches", "matches_total"}
        assert set(result["methods"]) == {"exact", "ngram", "substring", "minhash", "embedding"}
        for match in result["matches"]:
            assert set(match) == {"corpus", "doc_id", "method", "score"}
        scores = [m["score"] for m in result["matches"]]
        assert scores == sorted(scores, reverse=True)
    summary = report["summary"]
    assert summary["cases"] == 3 and summary["contaminated"] == 2
    assert summary["by_corpus"] == {"a": 1, "b": 1} and summary["by_method"]["exact"] == 2
    assert [c["name"] for c in summary["corpora"]] == ["a", "b"]
    json.dumps(report)  # serialisable as it is


def test_matches_are_capped_per_case_and_counted_in_full():
    docs = [(f"d{i}", QUESTION) for i in range(30)]
    report = check_cases([{"case_id": "q", "text": QUESTION}], [corpus(docs)],
                         config=ContaminationConfig(max_matches_per_case=5))
    result = one(report, "q")
    assert len(result["matches"]) == 5 and result["matches_total"] == 30 * 4  # exact, ngram, substring, minhash


def test_the_same_inputs_give_the_same_report():
    cases = [{"case_id": "q", "text": QUESTION}, {"case_id": "o", "text": OTHER}]
    docs = [("d1", "intro\n\n" + QUESTION), ("d2", OTHER.lower())]
    first = check_cases(cases, [corpus(docs)], embedder=BagOfWords())
    second = check_cases(cases, [corpus(docs)], embedder=BagOfWords())
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_probes_depend_on_the_seed():
    a = CaseIndex([("c", QUESTION)], ContaminationConfig(seed=0)).probes
    b = CaseIndex([("c", QUESTION)], ContaminationConfig(seed=1)).probes
    assert a == CaseIndex([("c", QUESTION)], ContaminationConfig(seed=0)).probes and a != b


def test_bad_case_lists_are_refused():
    with pytest.raises(ValueError, match="appears twice"):
        check_cases([{"case_id": "a", "text": "x"}, {"case_id": "a", "text": "y"}], [])
    with pytest.raises(ValueError, match="case_id must be"):
        check_cases([{"text": "x"}], [])


def test_no_corpus_reports_every_case_clean_with_the_reason():
    report = check_cases([{"case_id": "q", "text": QUESTION}], [])
    assert report["cases"][0]["methods"]["ngram"] == {"hit": False, "score": None, "skipped": "no corpus"}


# ----------------------------------------------------------------------------- split leaks
def test_split_leaks_finds_near_duplicates_across_splits_only():
    splits = {
        "dev": [{"case_id": "d1", "text": QUESTION}, {"case_id": "d2", "text": UNRELATED}],
        "holdout": [{"case_id": "h1", "text": QUESTION.lower() + "  "}, {"case_id": "h2", "text": OTHER}],
        "gold": [{"case_id": "ka-001", "input": {"user_query": OTHER, "messages": []}}],
    }
    leaks = split_leaks(splits, pairs=[("holdout", "dev"), ("dev", "gold"), ("holdout", "gold")])
    pairs = {(r["split"], r["case_id"], r["other_split"], r["other_case_id"]) for r in leaks}
    assert pairs == {("holdout", "h1", "dev", "d1"), ("holdout", "h2", "gold", "ka-001")}
    assert {r["method"] for r in leaks if r["case_id"] == "h1"} >= {"exact", "ngram", "substring", "minhash"}
    assert all(not r["same_case"] for r in leaks)


def test_split_leaks_compares_every_pair_by_default_and_marks_the_same_case():
    splits = {"golden": [{"case_id": "c1", "text": QUESTION}], "rolling": [{"case_id": "c1", "text": QUESTION}]}
    leaks = split_leaks(splits)
    assert leaks and all(r["same_case"] and r["split"] == "golden" for r in leaks)
    with pytest.raises(ValueError, match="no split named"):
        split_leaks(splits, pairs=[("golden", "nope")])
