"""The trace walker and the pseudonyms: every field, keys included, consistent under one key.

Most tests drive the walker with a small regex detector so each case states exactly which
spans are PII; the real Presidio-based detector is tested in test_pii_detect and end to end in
test_redaction_pipeline. The issue-11 tests at the end run the walker with the real detector.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from evalflow.lib.redact.detection import Detection
from evalflow.lib.redact.pseudonym import (
    MissingKeyError,
    Pseudonymizer,
    load_key,
    normalize_value,
    parse_operators,
)
from evalflow.lib.redact.traces import TraceRedactor, report_field

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
NAMES = re.compile(r"(?i)\b(jane doe|omar haddad)\b")


def regex_detect(texts, contexts=None):
    results = []
    for text in texts:
        found = [Detection("EMAIL_ADDRESS", m.start(), m.end(), 1.0) for m in EMAIL.finditer(text)]
        found += [Detection("PERSON", m.start(), m.end(), 0.9) for m in NAMES.finditer(text)]
        results.append(sorted(found, key=lambda d: d.start))
    return results


def trace(**extra):
    base = {
        "trace_id": "t1", "user_id": "u-1", "session_id": "s-1",
        "messages": [{"role": "system", "content": "Be kind."},
                     {"role": "user", "content": "I am Jane Doe, mail jane@example.com"}],
        "user_query": "I am Jane Doe, mail jane@example.com",
        "output": "Hello JANE DOE",
        "retrieved_context": [{"doc_id": "kb-1", "text": "Contact omar haddad", "score": 0.5}],
        "tool_calls": [{"name": "lookup", "arguments": {"email": "jane@example.com"},
                        "result": [{"holder": "Jane Doe", "card": 4111111111111111},
                                   {"holder": "nobody"}]}],
        "error_type": "Lookup failed for omar@corp.io",
        "feedback": {"thumbs": "down", "score": 0.0, "comment": "ask Omar Haddad"},
        "metadata": {"jane@example.com": "customer", "note": ["x", {"deep": "omar haddad"}]},
    }
    base.update(extra)
    return base


@pytest.fixture
def redactor():
    return TraceRedactor(regex_detect, Pseudonymizer(key=b"test-key"))


def as_text(value) -> str:
    return json.dumps(value)


def test_every_field_is_redacted_including_tool_calls_and_dict_keys(redactor):
    (out,) = redactor.redact([trace()]).traces
    dumped = as_text(out)
    for secret in ("jane@example.com", "Jane Doe", "JANE DOE", "omar haddad", "Omar Haddad", "omar@corp.io"):
        assert secret not in dumped, secret
    assert out["messages"][0]["content"] == "Be kind."  # nothing to redact stays the same
    assert out["tool_calls"][0]["result"][1] == {"holder": "nobody"}
    assert out["tool_calls"][0]["result"][0]["card"] == 4111111111111111  # not PII to this detector
    assert list(out["metadata"])[0].startswith("<EMAIL_ADDRESS_")  # a key, redacted
    assert out["metadata"]["note"][1]["deep"].startswith("<PERSON_")
    assert out["user_id"].startswith("user_") and out["user_id"] != "u-1"
    assert out["session_id"].startswith("session_")


def test_same_value_same_placeholder_across_fields_and_spellings(redactor):
    (out,) = redactor.redact([trace()]).traces
    person = re.search(r"<PERSON_[0-9a-f]{8}>", out["user_query"]).group(0)
    assert out["output"] == f"Hello {person}"  # JANE DOE and Jane Doe are one person
    assert person in out["tool_calls"][0]["result"][0]["holder"]
    email = re.search(r"<EMAIL_ADDRESS_[0-9a-f]{8}>", out["user_query"]).group(0)
    assert out["tool_calls"][0]["arguments"]["email"] == email


def test_pseudonyms_are_the_same_in_another_process():
    here = Pseudonymizer(key=b"shared-key").placeholder("PERSON", "Jane Doe")
    code = ("from evalflow.lib.redact.pseudonym import Pseudonymizer;"
            "print(Pseudonymizer(key=b'shared-key').placeholder('PERSON', 'jane  doe'))")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert here == there


def test_a_different_key_gives_different_pseudonyms():
    a = Pseudonymizer(key=b"key-a")
    b = Pseudonymizer(key=b"key-b")
    assert a.placeholder("PERSON", "Jane Doe") != b.placeholder("PERSON", "Jane Doe")
    assert a.identifier("user", "u-1") != b.identifier("user", "u-1")


def test_operators_are_configurable_per_entity_type():
    pseudo = Pseudonymizer(key=b"k", operators=parse_operators("PERSON=replace, EMAIL_ADDRESS=mask"))
    assert pseudo.placeholder("PERSON", "Jane") == "<PERSON>"
    assert pseudo.placeholder("EMAIL_ADDRESS", "a@b.io") == "******"
    assert pseudo.placeholder("PHONE_NUMBER", "+1 555 0100").startswith("<PHONE_NUMBER_")
    with pytest.raises(ValueError, match="EVALFLOW_PII_OPERATORS"):
        parse_operators("PERSON=hash")


def test_phone_and_card_spellings_normalise_together():
    assert normalize_value("PHONE_NUMBER", "+1 (555) 010-0000") == normalize_value("PHONE_NUMBER", "+1-555-010-0000")
    assert (normalize_value("CREDIT_CARD", "4111 1111 1111 1111")
            == normalize_value("CREDIT_CARD", "4111-1111-1111-1111"))


def test_the_input_traces_are_not_modified(redactor):
    original = trace()
    snapshot = json.dumps(original, sort_keys=True)
    redactor.redact([original])
    assert json.dumps(original, sort_keys=True) == snapshot


def test_a_record_whose_redaction_fails_is_quarantined_not_passed_through():
    def fragile(texts, contexts=None):
        if any("explode" in t for t in texts):
            raise RuntimeError("detector crashed on this text: explode")
        return regex_detect(texts)

    redactor = TraceRedactor(fragile, Pseudonymizer(key=b"k"))
    good, bad = trace(trace_id="good"), trace(trace_id="bad", output="please explode, Jane Doe")
    result = redactor.redact([good, bad])
    assert result.traces[1] is None
    assert "Jane Doe" not in as_text(result.traces[0])
    (failure,) = result.failures
    assert failure.reason == "detector_failed" and failure.detail == "RuntimeError"
    assert "explode" not in json.dumps(failure.__dict__)  # the text never reaches the reason


def test_counts_are_per_field_and_type_never_values(redactor):
    result = redactor.redact([trace()])
    counts = dict(result.entity_counts)
    assert counts[("user_query", "PERSON")] == 1
    assert counts[("tool_calls[].result", "PERSON")] == 1
    assert counts[("metadata", "EMAIL_ADDRESS")] == 1  # the key; the key itself is not a field name
    assert all("@" not in field for field, _ in counts)


def test_report_field_drops_indices_and_keys():
    assert report_field("messages[3].content") == "messages[].content"
    assert report_field("metadata.jane@example.com") == "metadata"
    assert report_field("tool_calls[0].result[2].holder") == "tool_calls[].result"


def test_key_comes_from_env_or_a_created_owner_only_file(tmp_path, monkeypatch):
    monkeypatch.delenv("EVALFLOW_PSEUDONYM_KEY", raising=False)
    with pytest.raises(MissingKeyError, match="EVALFLOW_PSEUDONYM_KEY"):
        load_key(tmp_path)
    key, source = load_key(tmp_path, create=True)
    assert source == "created" and len(key) == 64
    assert (tmp_path / ".pseudonym_key").stat().st_mode & 0o077 == 0
    assert load_key(tmp_path) == (key, "file")
    monkeypatch.setenv("EVALFLOW_PSEUDONYM_KEY", "from-env")
    assert load_key(tmp_path) == (b"from-env", "env")


def test_slots_list_values_before_keys_with_their_paths():
    from evalflow.lib.redact.traces import trace_slots

    t = {"trace_id": "t", "user_query": "q", "output": None,
         "tool_calls": [{"name": "lookup", "arguments": {"ids": ["a", 12345678, 5, True]},
                         "result": {"holder": "Jane Doe"}}],
         "metadata": {"k": {"deep": "v"}, 7: "int key"}}
    slots = trace_slots(t, 3)
    assert [(s.trace_index, s.path, s.text) for s in slots] == [
        (3, "user_query", "q"),
        (3, "tool_calls[0].name", "lookup"),
        (3, "tool_calls[0].arguments.ids[0]", "a"),
        (3, "tool_calls[0].arguments.ids[1]", "12345678"),
        (3, "tool_calls[0].arguments{key}", "ids"),
        (3, "tool_calls[0].result.holder", "Jane Doe"),
        (3, "tool_calls[0].result{key}", "holder"),
        (3, "tool_calls[0]{key}", "name"),
        (3, "tool_calls[0]{key}", "arguments"),
        (3, "tool_calls[0]{key}", "result"),
        (3, "metadata.k.deep", "v"),
        (3, "metadata.k{key}", "deep"),
        (3, "metadata", "int key"),
        (3, "metadata{key}", "k"),
    ]
    slots[3].write("12345678")  # a long number found to hold nothing stays a number
    slots[5].write("<PERSON>")
    slots[11].write("<KEY>")
    assert t["tool_calls"][0]["arguments"]["ids"][1] == 12345678
    assert t["tool_calls"][0]["result"] == {"holder": "<PERSON>"}
    assert t["metadata"]["k"] == {"<KEY>": "v"}


def test_a_cyclic_trace_is_quarantined_and_others_still_redacted(redactor):
    loop: dict = {"comment": "Jane Doe"}
    loop["self"] = loop
    result = redactor.redact([trace(feedback=loop), trace(trace_id="t2")])
    assert result.traces[0] is None and result.failures[0].reason == "unwalkable"
    assert "Jane Doe" not in as_text(result.traces[1])


def test_leaves_of_other_types_are_copied_not_shared():
    import datetime

    class Note:
        def __init__(self, text):
            self.text = text

    redactor = TraceRedactor(regex_detect, Pseudonymizer(key=b"k"))
    when = datetime.datetime(2026, 10, 1, tzinfo=datetime.timezone.utc)
    original = trace(metadata={"at": when, "pair": ("x", "Jane Doe"), "note": Note("Jane Doe"),
                               "nested": [[{"who": "Jane Doe"}]]})
    (out,) = redactor.redact([original]).traces
    assert out["metadata"]["at"] == when
    assert out["metadata"]["pair"] == ("x", "Jane Doe")  # tuples are not walked, as before
    assert out["metadata"]["note"] is not original["metadata"]["note"]
    assert out["metadata"]["nested"][0][0]["who"].startswith("<PERSON_")
    assert original["metadata"]["nested"][0][0]["who"] == "Jane Doe"


# ------------------------------------------------------------------ structural names (keys, tool names)


def test_slots_mark_keys_and_tool_names_as_structural():
    from evalflow.lib.redact.traces import trace_slots

    t = {"tool_calls": [{"name": "lookup", "arguments": {"q": "x"}, "result": None}],
         "messages": [{"role": "tool", "name": "lookup", "content": "ok"},
                      {"role": "user", "name": "Jane Doe", "content": "hi",
                       "tool_calls": [{"function": {"name": "refund", "arguments": "{}"}}]}],
         "metadata": {"notes": "Jane Doe"}}
    structural = {(s.path, s.text) for s in trace_slots(t, 0) if s.structural}
    assert ("tool_calls[0].name", "lookup") in structural
    assert ("messages[0].name", "lookup") in structural  # a tool message's name is the tool's
    assert ("messages[1].tool_calls[0].function.name", "refund") in structural
    assert ("metadata{key}", "notes") in structural
    assert ("messages[1].name", "Jane Doe") not in structural  # a participant's name is not
    assert ("metadata.notes", "Jane Doe") not in structural


def test_a_detector_without_structural_support_never_names_a_key_or_tool_a_person():
    """regex_detect takes any "Jane Doe" for a person; as a key or a tool name that is dropped,
    while an email used as a key still goes."""
    redactor = TraceRedactor(regex_detect, Pseudonymizer(key=b"k"))
    t = trace(tool_calls=[{"name": "jane doe", "arguments": {}, "result": None}],
              metadata={"Jane Doe": "vip", "jane@corp.internal": "key", "who": "Jane Doe"})
    (out,) = redactor.redact([t]).traces
    assert out["tool_calls"][0]["name"] == "jane doe"
    keys = list(out["metadata"])
    assert keys[0] == "Jane Doe" and keys[1].startswith("<EMAIL_ADDRESS_")
    assert out["metadata"]["who"].startswith("<PERSON_")


# ------------------------------------------------------------------ the real detector (issue 11)


@pytest.fixture(scope="module")
def real_redactor():
    from evalflow.lib.redact.config import DetectorConfig
    from evalflow.lib.redact.engine import PiiDetector

    return TraceRedactor(PiiDetector(DetectorConfig()).detect_batch, Pseudonymizer(key=b"issue-11"))


LEAKY = {
    "EMAIL_ADDRESS": "quill.ambrose@payroll.corp.internal",
    "URL_CREDENTIALS": "svc_reporting:Hunter2pw",
    "USERNAME": "tmarchetti",
    "IP_ADDRESS": "fe80::1ff:fe23:4567:890a",
}


def leaky_trace() -> dict:
    email, cred, user, ip = (LEAKY[k] for k in ("EMAIL_ADDRESS", "URL_CREDENTIALS", "USERNAME", "IP_ADDRESS"))
    url = f"postgres://{cred}@db.local:5432/claims"
    path = f"/home/{user}/exports/claims.csv"
    line = f"mail {email}, db {url}, file {path}, from {ip}"
    return {
        "trace_id": "t-leaky", "user_id": "u", "session_id": "s",
        "messages": [{"role": "system", "content": "You help HR staff."},
                     {"role": "user", "content": f"Earlier: {line}"},
                     {"role": "assistant", "content": "Noted."},
                     {"role": "user", "content": line}],
        "user_query": line,
        "output": f"I wrote to {email}.",
        "retrieved_context": [{"doc_id": "kb-1", "text": f"Payroll desk: {email}; share {path}", "score": 0.4}],
        "tool_calls": [{"name": "lookup", "arguments": {"email": email, "dsn": url, "src": ip},
                        "result": {"owner": email, "home": path, "peers": [ip]}}],
        "error_type": f"ConnectionError: {url} refused from {ip}",
        "feedback": {"thumbs": "down", "score": 0.0, "comment": f"reply to {email}"},
        "metadata": {"notes": f"contact {email}", "customer": {"notes": path},
                     "client_ip": ip, email: "an address as a key"},
    }


def test_every_leaked_shape_is_pseudonymised_in_every_field(real_redactor):
    (out,) = real_redactor.redact([leaky_trace()]).traces
    dumped = json.dumps(out)
    for entity, value in LEAKY.items():
        assert value not in dumped, entity
        assert f"<{entity}_" in dumped, entity
    assert "corp.internal" not in dumped and "ambrose" not in dumped and "Hunter2pw" not in dumped
    # only the secret part goes: the rest of the URL and path stays readable
    assert re.fullmatch(r"postgres://<URL_CREDENTIALS_[0-9a-f]{8}>@db\.local:5432/claims",
                        out["tool_calls"][0]["arguments"]["dsn"])
    assert re.fullmatch(r"/home/<USERNAME_[0-9a-f]{8}>/exports/claims\.csv", out["tool_calls"][0]["result"]["home"])
    for field_name in ("messages", "user_query", "output", "retrieved_context", "tool_calls", "error_type",
                       "feedback", "metadata"):
        assert re.search(r"<[A-Z_]+_[0-9a-f]{8}>", json.dumps(out[field_name])), field_name  # redacted here


def test_the_leak_check_scan_sees_every_shape_before_and_nothing_after(real_redactor):
    from evalflow.cli.sample_file import leak_counts

    before = leak_counts([leaky_trace()])
    assert set(LEAKY) <= set(before)
    (out,) = real_redactor.redact([leaky_trace()]).traces
    assert leak_counts([out]) == {}


def test_structural_names_stay_and_an_address_as_a_key_goes(real_redactor):
    (out,) = real_redactor.redact([leaky_trace()]).traces
    assert out["tool_calls"][0]["name"] == "lookup"
    keys = list(out["metadata"])
    assert keys[:3] == ["notes", "customer", "client_ip"]
    assert list(out["metadata"]["customer"]) == ["notes"]
    assert keys[3].startswith("<EMAIL_ADDRESS_")
    assert list(out["tool_calls"][0]["arguments"]) == ["email", "dsn", "src"]


def test_canary_internal_addresses_in_a_user_turn_and_a_tool_argument_leave_no_trace(real_redactor):
    canaries = ["jane.doe@corp.internal", "bob@payroll.local", "ann@example.test", "x@mail.example",
                "first.last+tag@sub.dept.corp"]
    t = {"trace_id": "canary", "user_id": "u", "session_id": "s",
         "messages": [{"role": "user", "content": "Please loop in " + ", ".join(canaries) + "."}],
         "user_query": "Please loop in " + " and ".join(canaries),
         "tool_calls": [{"name": "send_mail", "arguments": {"to": canaries, "cc": canaries[0]}, "result": "sent"}],
         "metadata": {}}
    result = real_redactor.redact([t])
    dumped = json.dumps(result.traces[0])
    for canary in canaries:
        assert canary not in dumped
        local, _, domain = canary.partition("@")
        assert f"{local}@" not in dumped and f"@{domain}" not in dumped
    assert result.entity_counts[("tool_calls[].arguments", "EMAIL_ADDRESS")] == len(canaries) + 1
    assert result.traces[0]["tool_calls"][0]["name"] == "send_mail"
