"""The simulated judge server: a real chat-completions endpoint on 127.0.0.1 with seeded, known
behaviour, named as simulated in every answer."""

from __future__ import annotations

import httpx
import pytest

from evalflow.simulator.judge_server import SIMULATED_MODEL, UNKNOWN_CASE_REPLY, SimulatedJudgeServer

DIM = "policy"
TRUTH = {f"c{n}": {DIM: "Pass" if n % 2 else "Fail"} for n in range(2000)}


def chat(server, prompt: str, model: str = SIMULATED_MODEL, path: str = "/chat/completions") -> httpx.Response:
    return httpx.post(server.base_url + path, json={"model": model, "temperature": 0,
                                                    "messages": [{"role": "user", "content": prompt}]})


def prompt_for(case_id: str, extra: str = "") -> str:
    return f"Grade this.\nCase id: {case_id}\nDimension: {DIM}\n{extra}\nThe answer: ..."


def test_it_answers_in_the_openai_shape_and_says_it_is_simulated():
    with SimulatedJudgeServer(truth=TRUTH, styles=("json",)) as server:
        response = chat(server, prompt_for("c1"))
        models = httpx.get(server.base_url + "/models").json()
        root = httpx.post(f"http://127.0.0.1:{server.port}/chat/completions",
                          json={"model": SIMULATED_MODEL, "messages": [{"role": "user", "content": prompt_for("c2")}]})
    body = response.json()
    assert response.status_code == 200 and root.status_code == 200
    assert body["simulated"] is True and body["model"] == SIMULATED_MODEL and body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["message"]["content"] == server.expected_reply("c1", DIM).content
    assert '"verdict": "Pass"' in body["choices"][0]["message"]["content"]
    usage = body["usage"]
    assert usage["prompt_tokens"] == len(prompt_for("c1").split())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert [m["id"] for m in models["data"]] == [SIMULATED_MODEL] and models["simulated"] is True


@pytest.mark.parametrize(("kwargs", "status", "message"), [
    ({"model": "gpt-4o"}, 404, "does not exist"),
    ({"path": "/embeddings"}, 404, "no route"),
])
def test_it_refuses_what_it_does_not_serve(kwargs, status, message):
    with SimulatedJudgeServer(truth=TRUTH) as server:
        response = chat(server, prompt_for("c1"), **kwargs)
    assert response.status_code == status and message in response.json()["error"]["message"]


def test_a_body_without_messages_is_a_bad_request():
    with SimulatedJudgeServer(truth=TRUTH) as server:
        response = httpx.post(server.base_url + "/chat/completions", content=b"not json")
    assert response.status_code == 400


def test_an_unknown_case_gets_an_unreadable_plain_reply():
    with SimulatedJudgeServer(truth=TRUTH) as server:
        unknown = chat(server, prompt_for("nobody")).json()["choices"][0]["message"]["content"]
        no_id = chat(server, "Is this answer good?").json()["choices"][0]["message"]["content"]
    assert unknown == no_id == UNKNOWN_CASE_REPLY


def test_behaviour_is_a_function_of_seed_case_dimension_and_variant():
    a = SimulatedJudgeServer(truth=TRUTH, error_rates={DIM: 0.3}, malformed_rate=0.1, seed=1)
    same = SimulatedJudgeServer(truth=TRUTH, error_rates={DIM: 0.3}, malformed_rate=0.1, seed=1)
    other = SimulatedJudgeServer(truth=TRUTH, error_rates={DIM: 0.3}, malformed_rate=0.1, seed=2)
    cases = [f"c{n}" for n in range(200)]
    assert [a.expected_reply(c, DIM) for c in cases] == [same.expected_reply(c, DIM) for c in cases]
    assert [a.expected_reply(c, DIM) for c in cases] != [other.expected_reply(c, DIM) for c in cases]
    assert [a.expected_reply(c, DIM, "v2") for c in cases] != [a.expected_reply(c, DIM) for c in cases]


def test_the_seeded_rates_are_the_rates_asked_for():
    server = SimulatedJudgeServer(truth=TRUTH, error_rates={DIM: 0.15}, malformed_rate=0.05,
                                  transient_error_rate=0.2, seed=3)
    replies = [server.expected_reply(c, DIM) for c in TRUTH]
    n = len(replies)
    readable = [r for r in replies if not r.malformed]
    flips = sum(r.flipped for r in readable) / len(readable)
    malformed = sum(r.malformed for r in replies) / n
    transient = sum(server.expected_transient(c, DIM) is not None for c in TRUTH) / n
    for measured, rate, count in ((flips, 0.15, len(readable)), (malformed, 0.05, n), (transient, 0.2, n)):
        assert abs(measured - rate) < 4 * (rate * (1 - rate) / count) ** 0.5
    assert all(r.verdict == (r.truth if not r.flipped else {"Pass": "Fail", "Fail": "Pass"}[r.truth])
               for r in readable)


def test_a_marker_in_the_prompt_selects_the_variants_rate():
    rates = {DIM: {"CAREFUL": 0.0, "SLOPPY": 1.0, "": 0.5}}
    with SimulatedJudgeServer(truth=TRUTH, error_rates=rates, styles=("json",)) as server:
        careful = chat(server, prompt_for("c1", "Be CAREFUL.")).json()["choices"][0]["message"]["content"]
        sloppy = chat(server, prompt_for("c1", "Be SLOPPY.")).json()["choices"][0]["message"]["content"]
        variants = [r["variant"] for r in server.requests]
    assert '"Pass"' in careful and '"Fail"' in sloppy  # c1's truth is Pass; the sloppy variant always flips
    assert variants == ["CAREFUL", "SLOPPY"]
    assert server.variant_of("no marker here", DIM) == "" and server.error_rate(DIM, "") == 0.5


def test_transient_errors_hit_only_the_first_attempt_with_retry_after():
    with SimulatedJudgeServer(truth=TRUTH, transient_error_rate=1.0, retry_after_s=2) as server:
        first = chat(server, prompt_for("c3"))
        second = chat(server, prompt_for("c3"))
        assert server.requests_for("c3") == 2
    assert first.status_code == server.expected_transient("c3", DIM) and first.headers["Retry-After"] == "2"
    assert second.status_code == 200


def test_a_key_is_required_when_set():
    with SimulatedJudgeServer(truth=TRUTH, api_key="sk-sim") as server:
        without = chat(server, prompt_for("c1"))
        with_key = httpx.post(server.base_url + "/chat/completions", headers={"Authorization": "Bearer sk-sim"},
                              json={"model": SIMULATED_MODEL, "messages": [{"role": "user", "content": "x"}]})
    assert (without.status_code, with_key.status_code) == (401, 200)


def test_it_stops_cleanly_and_frees_its_port():
    server = SimulatedJudgeServer(truth=TRUTH).start()
    base_url = server.base_url
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.post(base_url + "/chat/completions", json={})
    with pytest.raises(RuntimeError, match="not running"):
        server.base_url  # noqa: B018 - the property raises


def _reset_mid_request(port: int) -> None:
    """Open a connection, send half a request, and close it with a reset (SO_LINGER 0)."""
    import socket
    import struct

    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"mo")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_client_that_resets_its_connection_prints_nothing_and_the_server_keeps_answering(capsys):
    import time
    import urllib.request

    with SimulatedJudgeServer() as server:
        for _ in range(5):
            _reset_mid_request(server.port)
        time.sleep(0.3)  # the handler threads read the reset
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=10) as reply:
            assert reply.status == 200
    assert capsys.readouterr().err == ""


def test_a_handler_error_that_is_not_a_client_going_away_is_still_printed(capsys):
    import http.client

    with SimulatedJudgeServer() as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        # a Content-Length that is not a number: the handler's int() raises ValueError
        conn.putrequest("POST", "/v1/chat/completions")
        conn.putheader("Content-Length", "many")
        conn.endheaders()
        try:
            conn.getresponse()
        except (http.client.HTTPException, ConnectionError):
            pass
        conn.close()
    assert "ValueError" in capsys.readouterr().err
