"""A SIMULATED LLM judge: a real HTTP server on 127.0.0.1 that speaks the chat-completions API.

Not a model. It grades nothing: it knows the true verdict of each case (`truth`) and answers
with it, except where its seeded behaviour says to be wrong, to send a malformed reply, or to
fail the first attempt with 429/503. Every reply says so: the model is "simulated-judge" (any
other model name is refused with 404, as a real server would), each response carries
"simulated": true, and so does every critique. Tests use it to check that the figures evalflow
reports equal what this server was made to do; the demo serves it as its judge endpoint.

    with SimulatedJudgeServer(truth={"case-1": {"accuracy": "Pass"}}, error_rates={"accuracy": 0.1},
                              malformed_rate=0.05, transient_error_rate=0.1, seed=7) as server:
        os.environ["EVALFLOW_JUDGE_BASE_URL"] = server.base_url   # http://127.0.0.1:<port>/v1
        os.environ["EVALFLOW_JUDGE_MODEL"] = SIMULATED_MODEL

Behaviour, all a deterministic function of (seed, case id, dimension, variant), exposed by
`expected_reply` and `expected_transient` so a test can compute the exact expected figures:

- The prompt names its case and dimension by the lines "Case id: ..." and "Dimension: ..."
  (every judge template has them). A case or dimension missing from `truth` gets a plain-text
  reply that cannot be read as a verdict.
- `error_rates[dimension]`: the share of cases where the verdict is flipped (Pass <-> Fail).
  It may be a {marker: rate} mapping instead of a number: the first marker (in the mapping's
  order) found in the prompt text names the prompt variant and gives its rate; the "" key is
  the rate of a prompt with no marker. This is how a test makes one prompt variant worse.
- `malformed_rate`: the share of replies that no reader should accept (prose with no verdict,
  a verdict outside Pass/Fail, truncated JSON, code fences that disagree).
- Well-formed replies come in the styles listed in `styles` (a JSON object, a JSON object in a
  ```json fence after a sentence, or prose ending in "Pass." / "Fail."), chosen per case.
- `transient_error_rate`: the share of (case, dimension, variant) whose FIRST request is
  answered 429 or 503 with a Retry-After header (`retry_after_s`); later requests succeed.
- Pairwise prompts ("Pair id: ...", answers between <answer_1>...</answer_1> and
  <answer_2>...</answer_2>) are answered by `pairwise`: "first" (always the first shown),
  "second", "longer", "shorter", "truth" (the answer whose text is `pair_truth[pair_id]`; a tie
  when neither is) or a callable (pair_id, dimension, first, second) -> first/second/tie.
- `reply_delay_s` makes each reply wait (a slow model); `max_in_flight` is the most requests it
  answered at once.
- With `api_key`, requests without "Authorization: Bearer <api_key>" get 401 (the message
  echoes the key that was sent, as some real servers do: the client must not pass it on).

It logs every request it receives (`requests`, `requests_for(case_id)`) and the token usage it
reported (`usage_totals`): prompt tokens = words of the prompt, completion tokens = words of the
reply.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping, Sequence

SIMULATED_MODEL = "simulated-judge"
STYLES = ("json", "fenced", "plain")
_CASE = re.compile(r"^Case id: *(.+?) *$", re.MULTILINE)
_PAIR = re.compile(r"^Pair id: *(.+?) *$", re.MULTILINE)
_DIMENSION = re.compile(r"^Dimension: *(.+?) *$", re.MULTILINE)
_ANSWER = {1: re.compile(r"<answer_1>\n?(.*?)\n?</answer_1>", re.DOTALL),
           2: re.compile(r"<answer_2>\n?(.*?)\n?</answer_2>", re.DOTALL)}
# Replies no reader may accept as a verdict (evalflow_tests check each one is unparseable).
MALFORMED_REPLIES = (
    "I would need to see more of the conversation before I can grade this answer.",
    '{"verdict": "Partially", "critique": "simulated: neither a clear pass nor a clear fail"}',
    '{"verdict": "Pass", "critique": "simulated: the reply was cut off here',
    '```json\n{"verdict": "Pass"}\n```\nOn second thought:\n```json\n{"verdict": "Fail"}\n```',
)
UNKNOWN_CASE_REPLY = "I have no record of this case, so I cannot grade it (simulated judge)."


@dataclass(frozen=True)
class SimulatedReply:
    case_id: str
    dimension: str
    variant: str
    truth: str | None  # what `truth` says (None: unknown case or dimension)
    verdict: str | None  # what the reply says (None: malformed or unknown)
    flipped: bool
    malformed: bool
    style: str  # json, fenced, plain, malformed, unknown
    content: str


def _flip(verdict: str) -> str:
    return "Fail" if verdict == "Pass" else "Pass"


class SimulatedJudgeServer:
    """See the module docstring. `base_url` is valid between start() and stop() (or inside `with`)."""

    def __init__(self, truth: Mapping[str, Mapping[str, str]] | None = None,
                 error_rates: Mapping[str, float | Mapping[str, float]] | None = None,
                 malformed_rate: float = 0.0, transient_error_rate: float = 0.0, seed: int = 0,
                 retry_after_s: float = 0.0, styles: Sequence[str] = STYLES, api_key: str | None = None,
                 pairwise: str | Callable[[str, str, str, str], str] = "truth",
                 pair_truth: Mapping[str, str] | None = None, reply_delay_s: float = 0.0):
        for name, rate in (("malformed_rate", malformed_rate), ("transient_error_rate", transient_error_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {rate}")
        if not styles or set(styles) - set(STYLES):
            raise ValueError(f"styles must be some of {STYLES}, got {styles}")
        self.truth = {str(k): dict(v) for k, v in (truth or {}).items()}
        self.error_rates = dict(error_rates or {})
        self.malformed_rate = malformed_rate
        self.transient_error_rate = transient_error_rate
        self.seed = seed
        self.retry_after_s = retry_after_s
        self.styles = tuple(styles)
        self.api_key = api_key
        self.pairwise = pairwise
        self.pair_truth = dict(pair_truth or {})
        self.reply_delay_s = reply_delay_s
        self._in_flight = self._max_in_flight = 0
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        self._attempts: dict[tuple, int] = {}
        self._usage = {"prompt_tokens": 0, "completion_tokens": 0}
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- the known behaviour ------------------------------------------------------------
    def _u(self, purpose: str, *parts: str) -> float:
        """A uniform number in [0, 1) fixed by the seed, the purpose and the parts."""
        text = "\x1f".join((str(self.seed), purpose, *parts))
        return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], 16) / 2 ** 64

    def variant_of(self, prompt: str, dimension: str) -> str:
        """The marker of `error_rates[dimension]` found first in the prompt ("" when none is)."""
        rates = self.error_rates.get(dimension)
        if isinstance(rates, Mapping):
            for marker in rates:
                if marker and marker in prompt:
                    return marker
        return ""

    def error_rate(self, dimension: str, variant: str = "") -> float:
        rates = self.error_rates.get(dimension, 0.0)
        if isinstance(rates, Mapping):
            return float(rates.get(variant, rates.get("", 0.0)))
        return float(rates)

    def expected_reply(self, case_id: str, dimension: str, variant: str = "") -> SimulatedReply:
        """The reply this server gives (once past any transient error) for the case and dimension
        with a prompt of this variant (a marker of error_rates, "" for none)."""
        truth = self.truth.get(case_id, {}).get(dimension)
        if truth not in ("Pass", "Fail"):
            return SimulatedReply(case_id, dimension, variant, None, None, False, False, "unknown",
                                  UNKNOWN_CASE_REPLY)
        parts = (case_id, dimension, variant)
        if self._u("malformed", *parts) < self.malformed_rate:
            content = MALFORMED_REPLIES[int(self._u("malformed_form", *parts) * len(MALFORMED_REPLIES))]
            return SimulatedReply(case_id, dimension, variant, truth, None, False, True, "malformed", content)
        flipped = self._u("flip", *parts) < self.error_rate(dimension, variant)
        verdict = _flip(truth) if flipped else truth
        style = self.styles[int(self._u("style", *parts) * len(self.styles))]
        critique = f"simulated: the {dimension} of case {case_id} was graded {verdict}"
        obj = json.dumps({"verdict": verdict, "critique": critique})
        content = {"json": obj,
                   "fenced": f"Here is my assessment.\n```json\n{obj}\n```",
                   "plain": f"{critique[0].upper()}{critique[1:]}. My verdict: {verdict}."}[style]
        return SimulatedReply(case_id, dimension, variant, truth, verdict, flipped, False, style, content)

    def expected_transient(self, case_id: str, dimension: str, variant: str = "") -> int | None:
        """429 or 503 when the first request for (case, dimension, variant) fails, else None."""
        parts = (case_id, dimension, variant)
        if self._u("transient", *parts) >= self.transient_error_rate:
            return None
        return 429 if self._u("transient_status", *parts) < 0.5 else 503

    def preferred(self, pair_id: str, dimension: str, first: str, second: str) -> str:
        """What the pairwise policy prefers: "first", "second" or "tie"."""
        policy = self.pairwise
        if callable(policy):
            return policy(pair_id, dimension, first, second)
        if policy in ("first", "second"):
            return policy
        if policy in ("longer", "shorter"):
            if len(first) == len(second):
                return "tie"
            return "first" if (len(first) > len(second)) == (policy == "longer") else "second"
        if policy == "truth":
            better = self.pair_truth.get(pair_id)
            return "first" if better == first else "second" if better == second else "tie"
        raise ValueError(f"unknown pairwise policy {policy!r}")

    # ---- what it received ---------------------------------------------------------------
    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request received: kind (single/pairwise/other), case_id or pair_id, dimension,
        variant, status."""
        with self._lock:
            return [dict(r) for r in self._log]

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._log)

    def requests_for(self, case_id: str) -> int:
        with self._lock:
            return sum(r.get("case_id") == case_id for r in self._log)

    @property
    def case_ids_seen(self) -> set[str]:
        with self._lock:
            return {r["case_id"] for r in self._log if r.get("case_id")}

    @property
    def max_in_flight(self) -> int:
        """The most requests it was answering at the same time."""
        with self._lock:
            return self._max_in_flight

    @contextmanager
    def _serving(self):
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            if self.reply_delay_s:
                time.sleep(self.reply_delay_s)  # a slow model: lets a test see concurrent requests
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    @property
    def usage_totals(self) -> dict[str, int]:
        with self._lock:
            return dict(self._usage)

    # ---- serving ------------------------------------------------------------------------
    def answer(self, body: Any, authorization: str | None) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(status, JSON body, extra headers) for one chat-completions request body."""
        if self.api_key is not None and authorization != f"Bearer {self.api_key}":
            sent = (authorization or "").removeprefix("Bearer ")
            self._record({"kind": "unauthorized", "status": 401})
            return 401, _error(f"Incorrect API key provided: {sent or '(none)'} (simulated judge)",
                               "invalid_api_key"), {}
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._record({"kind": "other", "status": 400})
            return 400, _error("the body must be a JSON object with messages", "invalid_request_error"), {}
        if body.get("model") != SIMULATED_MODEL:
            self._record({"kind": "other", "status": 404})
            return 404, _error(f"The model {body.get('model')!r} does not exist: this simulated server serves "
                               f"{SIMULATED_MODEL!r}", "model_not_found"), {}
        prompt = "\n".join(m.get("content") or "" for m in body["messages"]
                           if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str))
        dimension = _first(_DIMENSION, prompt) or ""
        pair_id = _first(_PAIR, prompt)
        if pair_id is not None:
            return self._answer_pairwise(prompt, pair_id, dimension)
        case_id = _first(_CASE, prompt)
        variant = self.variant_of(prompt, dimension)
        record = {"kind": "single", "case_id": case_id, "dimension": dimension, "variant": variant}
        if case_id is not None:
            key = ("single", case_id, dimension, variant)
            with self._lock:
                self._attempts[key] = attempt = self._attempts.get(key, 0) + 1
            status = self.expected_transient(case_id, dimension, variant) if attempt == 1 else None
            if status is not None:
                self._record(record | {"status": status})
                message = "rate limited (simulated)" if status == 429 else "overloaded (simulated)"
                return status, _error(message, "rate_limit" if status == 429 else "server_error"), {
                    "Retry-After": f"{self.retry_after_s:g}"}
            content = self.expected_reply(case_id, dimension, variant).content
        else:
            content = UNKNOWN_CASE_REPLY
        self._record(record | {"status": 200})
        return 200, self._completion(prompt, content), {}

    def _answer_pairwise(self, prompt: str, pair_id: str, dimension: str):
        first, second = (_first(_ANSWER[i], prompt) for i in (1, 2))
        self._record({"kind": "pairwise", "pair_id": pair_id, "dimension": dimension, "status": 200})
        if first is None or second is None:
            return 200, self._completion(prompt, UNKNOWN_CASE_REPLY), {}
        preferred = self.preferred(pair_id, dimension, first, second)
        content = json.dumps({"preferred": preferred, "critique": f"simulated: preferred {preferred}"})
        return 200, self._completion(prompt, content), {}

    def _completion(self, prompt: str, content: str) -> dict[str, Any]:
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(content.split())}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        with self._lock:
            for name in ("prompt_tokens", "completion_tokens"):
                self._usage[name] += usage[name]
            number = len(self._log)
        return {"id": f"simjudge-{number}", "object": "chat.completion", "created": 0, "model": SIMULATED_MODEL,
                "simulated": True,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "stop"}],
                "usage": usage}

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._log.append(entry)

    def start(self) -> SimulatedJudgeServer:
        if self._httpd is not None:
            return self
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.judge = self  # type: ignore[attr-defined]
        # A short poll interval: stop() returns within 0.05 s instead of serve_forever's default 0.5 s.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="simulated-judge", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
        self._httpd = self._thread = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the simulated judge is not running (call start() or use `with`)")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """What EVALFLOW_JUDGE_BASE_URL should be: http://127.0.0.1:<port>/v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> SimulatedJudgeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _first(pattern: re.Pattern, text: str) -> str | None:
    found = pattern.search(text)
    return found.group(1) if found else None


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": code, "code": code}, "simulated": True}


class _Server(ThreadingHTTPServer):
    """The HTTP server, quiet about clients that went away.

    A client that closes a kept-alive connection (its pool shut at the end of a run, or a request
    it gave up on after its timeout) makes the handler's next read or write raise a
    ConnectionError; socketserver would print that traceback to stderr, where it reads like a
    failure of the run and mixes into the CLI's own one-line errors. Any other error is printed
    as before."""

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connections
    server_version = "SimulatedJudge/1"
    # Headers and body go out in two writes; with Nagle's algorithm on, the client's delayed ACK
    # held each reply back ~40 ms.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._send(404, _error(f"no route {self.path} (simulated judge)", "not_found"))
            return
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        judge = self.server.judge
        with judge._serving():
            status, payload, headers = judge.answer(body, self.headers.get("Authorization"))
        self._send(status, payload, headers)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send(200, {"object": "list", "simulated": True,
                             "data": [{"id": SIMULATED_MODEL, "object": "model", "owned_by": "evalflow-simulator"}]})
        else:
            self._send(404, _error(f"no route {self.path} (simulated judge)", "not_found"))

    def _send(self, status: int, payload: dict[str, Any], headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        pass  # the server keeps its own request log; stderr stays quiet in tests and the demo
