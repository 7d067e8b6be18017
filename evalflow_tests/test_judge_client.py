"""The judge's chat-completions client against a real local server (the simulated judge), never a
mock: retries, Retry-After, the Bearer key (never logged), the verdict cache, usage counters."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from evalflow.lib.common.settings import SettingError
from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.judge.client import JudgeClient, JudgeRequest, JudgeRequestError, retry_after_seconds
from evalflow.lib.judge.config import ClientSettings, MissingJudgeSetting, client_settings
from evalflow.lib.judge.store import VerdictCacheStore
from evalflow.simulator.judge_server import SIMULATED_MODEL, SimulatedJudgeServer

DIMENSION = "accuracy"
CASE_IDS = [f"case-{n:03d}" for n in range(40)]
TRUTH = {c: {DIMENSION: "Pass" if n % 3 else "Fail"} for n, c in enumerate(CASE_IDS)}


def settings_for(server: SimulatedJudgeServer, **overrides) -> ClientSettings:
    values = {"base_url": server.base_url, "model": SIMULATED_MODEL, "concurrency": 4, "timeout_s": 10.0,
              "max_retries": 4, "backoff_s": 0.001, "backoff_max_s": 0.01} | overrides
    return ClientSettings(**values)


def request(case_id: str, prompt_sha: str = "p" * 64) -> JudgeRequest:
    prompt = f"Grade it.\nCase id: {case_id}\nDimension: {DIMENSION}\nAnswer: ..."
    return JudgeRequest(case_id=case_id, dimension=DIMENSION, prompt=prompt, prompt_sha256=prompt_sha,
                        case_sha256="c-" + case_id)


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_verdicts_are_what_the_server_replies_in_every_style():
    with SimulatedJudgeServer(truth=TRUTH, error_rates={DIMENSION: 0.2}, seed=3) as server:
        with JudgeClient(settings_for(server)) as client:
            results = client.judge_many([request(c) for c in CASE_IDS])
    expected = [server.expected_reply(c, DIMENSION) for c in CASE_IDS]
    assert [r.verdict for r in results] == [e.verdict for e in expected]
    assert [r.raw_reply for r in results] == [e.content for e in expected]
    assert {e.style for e in expected} == {"json", "fenced", "plain"}  # all three forms were read
    assert any(e.flipped for e in expected)  # and the flipped verdicts are reported as the judge gave them


@pytest.mark.parametrize("style", ["fenced", "plain"])
def test_a_code_fenced_reply_and_a_plain_pass_reply_are_read(style):
    with SimulatedJudgeServer(truth=TRUTH, styles=(style,)) as server:
        with JudgeClient(settings_for(server)) as client:
            results = client.judge_many([request(c) for c in CASE_IDS[:6]])
    assert [r.how for r in results] == ["fenced_json" if style == "fenced" else "last_word"] * 6
    assert [r.verdict for r in results] == [TRUTH[c][DIMENSION] for c in CASE_IDS[:6]]
    if style == "plain":
        assert all(r.raw_reply.endswith(f"My verdict: {r.verdict}.") for r in results)


def test_malformed_and_unknown_replies_are_unparseable_and_kept_raw():
    with SimulatedJudgeServer(truth=TRUTH, malformed_rate=0.5, seed=1) as server:
        with JudgeClient(settings_for(server)) as client:
            results = client.judge_many([request(c) for c in [*CASE_IDS, "case-unknown"]])
    expected = [server.expected_reply(c, DIMENSION) for c in [*CASE_IDS, "case-unknown"]]
    malformed = [e.malformed or e.style == "unknown" for e in expected]
    assert [r.verdict is None for r in results] == malformed
    assert client.stats.unparseable == sum(malformed) > 1
    assert results[-1].raw_reply == expected[-1].content


def test_transient_429_and_503_are_retried_after_the_servers_retry_after():
    sleeps = Sleeps()
    with SimulatedJudgeServer(truth=TRUTH, transient_error_rate=1.0, retry_after_s=0.25, seed=5) as server:
        with JudgeClient(settings_for(server), sleep=sleeps) as client:
            results = client.judge_many([request(c) for c in CASE_IDS[:10]])
    statuses = {}
    for r in server.requests:
        statuses.setdefault(r["case_id"], []).append(r["status"])
    assert sorted({s[0] for s in statuses.values()}) == [429, 503]  # both kinds happened
    assert all(s[0] in (429, 503) and s[1:] == [200] for s in statuses.values())
    assert [r.verdict for r in results] == [TRUTH[c][DIMENSION] for c in CASE_IDS[:10]]
    assert (client.stats.requests_sent, client.stats.retries) == (20, 10)
    assert sleeps == [0.25] * 10  # Retry-After honoured


def test_without_retry_after_the_backoff_grows_with_jitter_and_gives_up(tmp_path):
    with SimulatedJudgeServer(truth=TRUTH) as server:
        base_url = server.base_url
    # the server is gone: connection refused on every attempt
    sleeps = Sleeps()
    settings = ClientSettings(base_url=base_url, model=SIMULATED_MODEL, max_retries=3, backoff_s=0.1,
                              backoff_max_s=0.3)
    with JudgeClient(settings, sleep=sleeps) as client:
        with pytest.raises(JudgeRequestError, match=r"failed case case-000 \(accuracy\) 4 times; last: Connect"):
            client.judge_many([request("case-000")])
    assert client.stats.requests_sent == 4 and client.stats.retries == 3
    ceilings = [0.1, 0.2, 0.3]  # doubling, capped
    assert len(sleeps) == 3 and all(c / 2 <= s <= c for s, c in zip(sleeps, ceilings))


def test_a_transient_error_with_no_retries_left_fails_the_batch():
    with SimulatedJudgeServer(truth=TRUTH, transient_error_rate=1.0) as server:
        with JudgeClient(settings_for(server, max_retries=0)) as client:
            with pytest.raises(JudgeRequestError, match=r"1 times; last: HTTP (429|503)"):
                client.judge_many([request("case-000")])


def test_a_refused_request_is_not_retried():
    with SimulatedJudgeServer(truth=TRUTH) as server:
        with JudgeClient(settings_for(server, model="gpt-judge")) as client:
            with pytest.raises(JudgeRequestError, match="HTTP 404.*does not exist"):
                client.judge_many([request("case-000")])
    assert client.stats.requests_sent == 1 and server.request_count == 1


def test_the_key_is_sent_as_a_bearer_header():
    with SimulatedJudgeServer(truth=TRUTH, api_key="sk-test-right") as server:
        with JudgeClient(settings_for(server, api_key="sk-test-right")) as client:
            results = client.judge_many([request("case-001")])
        with JudgeClient(settings_for(server)) as anonymous:
            with pytest.raises(JudgeRequestError, match="HTTP 401"):
                anonymous.judge_many([request("case-001")])
    assert results[0].verdict == TRUTH["case-001"][DIMENSION]
    assert [r["status"] for r in server.requests] == [200, 401]


def test_the_key_never_appears_in_logs_or_errors(caplog):
    secret = "sk-live-DO-NOT-LEAK-7f3a9c"
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    with SimulatedJudgeServer(truth=TRUTH, api_key="sk-other") as server:
        settings = settings_for(server, api_key=secret)
        with JudgeClient(settings) as client:
            with pytest.raises(JudgeRequestError) as raised:
                client.judge_many([request("case-001")])
    # the simulated server echoes the key it was sent, as some real servers do
    assert "Incorrect API key provided: ***" in str(raised.value)
    assert secret not in str(raised.value) and secret not in repr(raised.value)
    assert secret not in caplog.text and secret not in repr(settings)
    assert caplog.records  # the check looked at real log output


def test_concurrency_is_bounded():
    with SimulatedJudgeServer(truth=TRUTH, reply_delay_s=0.2) as server:
        with JudgeClient(settings_for(server, concurrency=2)) as client:
            client.judge_many([request(c) for c in CASE_IDS[:6]])
    assert server.max_in_flight == 2


def test_the_cache_sends_nothing_twice(tmp_path: Path):
    cache = VerdictCacheStore(Warehouse(tmp_path / "cache.duckdb"), describe=False)
    with SimulatedJudgeServer(truth=TRUTH, malformed_rate=0.3, seed=2) as server:
        with JudgeClient(settings_for(server), cache=cache) as first:
            before = first.judge_many([request(c) for c in CASE_IDS])
        sent = server.request_count
        with JudgeClient(settings_for(server), cache=cache) as second:
            again = second.judge_many([request(c) for c in CASE_IDS])
        assert server.request_count == sent == len(CASE_IDS)
    assert second.stats.requests_sent == 0 and second.stats.cache_hits == len(CASE_IDS)
    assert [(r.verdict, r.raw_reply) for r in again] == [(r.verdict, r.raw_reply) for r in before]
    assert all(r.cached for r in again) and not any(r.cached for r in before)
    # unparseable replies were cached too, and are still reported
    assert second.stats.unparseable == first.stats.unparseable > 0
    assert cache.count() == len(CASE_IDS)


def test_the_cache_key_is_model_prompt_and_case(tmp_path: Path):
    cache = VerdictCacheStore(Warehouse(tmp_path / "cache.duckdb"), describe=False)
    with SimulatedJudgeServer(truth=TRUTH) as server:
        with JudgeClient(settings_for(server), cache=cache) as client:
            client.judge_many([request("case-001")])
            client.judge_many([request("case-001", prompt_sha="q" * 64)])  # another prompt version
            client.judge_many([request("case-001"), request("case-001")])  # the same twice: cached
        assert server.request_count == 2
    assert client.stats.cache_hits == 2
    assert cache.get_many("another-model", [("p" * 64, "c-case-001")]) == {}


def test_duplicate_requests_in_one_batch_are_sent_once():
    with SimulatedJudgeServer(truth=TRUTH) as server:
        with JudgeClient(settings_for(server)) as client:
            results = client.judge_many([request("case-002")] * 3)
        assert server.request_count == 1
    assert [r.verdict for r in results] == [TRUTH["case-002"][DIMENSION]] * 3


def test_token_usage_is_what_the_responses_reported():
    with SimulatedJudgeServer(truth=TRUTH, transient_error_rate=0.3) as server:
        with JudgeClient(settings_for(server)) as client:
            client.judge_many([request(c) for c in CASE_IDS])
        totals = server.usage_totals
    assert (client.stats.prompt_tokens, client.stats.completion_tokens) == (
        totals["prompt_tokens"], totals["completion_tokens"])
    assert client.stats.prompt_tokens > 0 and client.stats.requests_sent == server.request_count > len(CASE_IDS)


def test_settings_come_from_the_environment_and_are_checked(monkeypatch):
    for name in ("EVALFLOW_JUDGE_BASE_URL", "EVALFLOW_JUDGE_MODEL", "EVALFLOW_JUDGE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MissingJudgeSetting, match="EVALFLOW_JUDGE_BASE_URL is not set"):
        client_settings()
    monkeypatch.setenv("EVALFLOW_JUDGE_BASE_URL", "http://127.0.0.1:9/v1/")
    with pytest.raises(MissingJudgeSetting, match="EVALFLOW_JUDGE_MODEL is not set"):
        client_settings()
    monkeypatch.setenv("EVALFLOW_JUDGE_MODEL", "judge-1")
    monkeypatch.setenv("EVALFLOW_JUDGE_API_KEY", "sk-x")
    monkeypatch.setenv("EVALFLOW_JUDGE_CONCURRENCY", "8")
    settings = client_settings()
    assert (settings.base_url, settings.model, settings.api_key, settings.concurrency, settings.timeout_s,
            settings.max_retries) == ("http://127.0.0.1:9/v1", "judge-1", "sk-x", 8, 60.0, 4)
    monkeypatch.setenv("EVALFLOW_JUDGE_CONCURRENCY", "0")
    with pytest.raises(SettingError, match="EVALFLOW_JUDGE_CONCURRENCY must be at least 1"):
        client_settings()
    monkeypatch.setenv("EVALFLOW_JUDGE_CONCURRENCY", "4")
    monkeypatch.setenv("EVALFLOW_JUDGE_BASE_URL", "api.example.com")
    with pytest.raises(SettingError, match="EVALFLOW_JUDGE_BASE_URL must start with http"):
        client_settings()


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2026, 10, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Thu, 01 Oct 2026 12:00:07 GMT", now=now) == 7.0
    assert retry_after_seconds("Thu, 01 Oct 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


class FirstRequestSlow(SimulatedJudgeServer):
    """The simulated server, but its first request waits `first_delay_s` before it is answered."""

    def __init__(self, first_delay_s: float, **kwargs):
        super().__init__(**kwargs)
        self.first_delay_s = first_delay_s
        self._calls = 0
        self._calls_lock = threading.Lock()

    def answer(self, body, authorization):
        with self._calls_lock:
            self._calls += 1
            first = self._calls == 1
        if first:
            time.sleep(self.first_delay_s)
        return super().answer(body, authorization)


def test_a_request_slower_than_the_timeout_is_retried():
    sleeps = Sleeps()
    with FirstRequestSlow(first_delay_s=1.0, truth=TRUTH) as server:
        with JudgeClient(settings_for(server, timeout_s=0.2, concurrency=1), sleep=sleeps) as client:
            (result,) = client.judge_many([request("case-001")])
    assert result.verdict == server.expected_reply("case-001", DIMENSION).verdict is not None
    assert (client.stats.requests_sent, client.stats.retries) == (2, 1)  # timed out once, then answered
    assert len(sleeps) == 1
