"""An OpenAI-compatible chat-completions client for the judge, with a verdict cache.

POST {EVALFLOW_JUDGE_BASE_URL}/chat/completions with {"model", "messages": [one user message:
the rendered prompt], "temperature": 0}; the key, when set, goes in "Authorization: Bearer".
Any server that speaks this API works (OpenAI, vLLM, Ollama, llama.cpp, LiteLLM...).

- Bounded concurrency: a thread pool of EVALFLOW_JUDGE_CONCURRENCY workers over one httpx
  client (the judge is I/O-bound; threads keep the caller synchronous, as Dagster steps are).
- Retries: 429, any 5xx, timeouts and connection errors are retried up to
  EVALFLOW_JUDGE_MAX_RETRIES times. The wait is the server's Retry-After when it sends one
  (capped at MAX_RETRY_AFTER_S), else exponential backoff with jitter (0.5 s doubling, each
  wait drawn from [half, all] of it, capped at 30 s) so that parallel workers do not retry in
  step. Other 4xx (a bad key, an unknown model) fail at once: retrying cannot fix them.
- The verdict cache: keyed by (model, prompt sha256, case sha256). A request whose key is
  cached is never sent; what is sent is written to the cache as it comes back (in chunks, so a
  failure later in the run keeps what was already paid for). Unparseable replies are cached
  too, with their raw text, and counted in `stats.unparseable` whether they came from the
  cache or not. The cache keeps the raw reply and every read parses it again, so a fix to the
  parsing rules applies to cached replies as well.
- The key is never logged and never part of an exception: messages built from a server's
  answer have it masked, and ClientSettings hides it from its repr.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable, Protocol, Sequence

import httpx

from evalflow.lib.judge.config import ClientSettings, client_settings
from evalflow.lib.judge.parse import Reply, parse_reply

_log = logging.getLogger("evalflow.judge")
MAX_RETRY_AFTER_S = 120.0
# Replies written to the cache per transaction while a batch is in flight.
CACHE_WRITE_CHUNK = 32


@dataclass(frozen=True)
class JudgeRequest:
    case_id: str
    dimension: str
    prompt: str
    prompt_sha256: str
    case_sha256: str


@dataclass(frozen=True)
class JudgeResult:
    case_id: str
    dimension: str
    model: str
    prompt_sha256: str
    case_sha256: str
    verdict: str | None  # None: the reply could not be read (see raw_reply)
    critique: str | None
    raw_reply: str
    how: str  # how the reply was read (parse.Reply.how)
    cached: bool
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class CachedReply:
    raw_reply: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class VerdictCache(Protocol):
    """What the client needs of a cache (store.VerdictCacheStore is the warehouse one)."""

    def get_many(self, model: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], CachedReply]: ...

    def put_many(self, results: Sequence[JudgeResult]) -> None: ...


@dataclass
class JudgeStats:
    requests_sent: int = 0  # HTTP requests, retries included
    retries: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0  # as the responses' usage reports them (requests sent only)
    completion_tokens: int = 0
    unparseable: int = 0  # results without a verdict, cached or not
    judged: int = 0  # results returned
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


class JudgeRequestError(RuntimeError):
    """The endpoint refused a request (a 4xx other than 429), answered with something that is
    not a chat completion, or kept failing after every retry. The key never appears in it."""


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class JudgeClient:
    """`judge_many(requests)` -> one JudgeResult per request, in order; `stats` counts what it cost."""

    def __init__(self, settings: ClientSettings, cache: VerdictCache | None = None,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None):
        self.settings = settings
        self.cache = cache
        self.stats = JudgeStats()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._url = settings.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        if settings.api_key:
            headers["Authorization"] = f"Bearer {settings.api_key}"
        self._http = httpx.Client(
            headers=headers, timeout=httpx.Timeout(settings.timeout_s),
            limits=httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency))

    @classmethod
    def from_env(cls, cache: VerdictCache | None = None, **kwargs) -> JudgeClient:
        return cls(client_settings(), cache=cache, **kwargs)

    @property
    def model(self) -> str:
        return self.settings.model

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> JudgeClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- the batch --------------------------------------------------------------------
    def judge_many(self, requests: Sequence[JudgeRequest],
                   parse: Callable[[str | None], Reply] = parse_reply) -> list[JudgeResult]:
        by_key: dict[tuple[str, str], list[int]] = {}
        for index, request in enumerate(requests):
            by_key.setdefault((request.prompt_sha256, request.case_sha256), []).append(index)
        cached = self.cache.get_many(self.model, list(by_key)) if self.cache is not None and by_key else {}
        results: list[JudgeResult | None] = [None] * len(requests)
        for key, hit in cached.items():
            for index in by_key.get(key, ()):
                results[index] = self._result(requests[index], hit, parse, cached=True)
        self.stats.add(cache_hits=sum(len(by_key[key]) for key in cached if key in by_key))

        # One request per key not cached: the same prompt on the same case is never sent twice.
        to_send = [requests[indexes[0]] for key, indexes in by_key.items() if key not in cached]
        for result in self._send_all(to_send, parse):
            for index in by_key[(result.prompt_sha256, result.case_sha256)]:
                results[index] = result
        done = [r for r in results if r is not None]
        assert len(done) == len(requests)  # every request answered (or _send_all raised)
        self.stats.add(judged=len(done), unparseable=sum(r.verdict is None for r in done))
        return done

    def _send_all(self, requests: Sequence[JudgeRequest], parse) -> list[JudgeResult]:
        if not requests:
            return []
        out: list[JudgeResult] = []
        unsaved: list[JudgeResult] = []
        pool = ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="judge")
        try:
            futures = [pool.submit(self._judge_one, request, parse) for request in requests]
            for future in as_completed(futures):
                result = future.result()  # a request that failed for good stops the batch
                out.append(result)
                unsaved.append(result)
                if len(unsaved) >= CACHE_WRITE_CHUNK:
                    self._save(unsaved)
                    unsaved = []
        finally:
            # Queued requests are dropped; what came back is kept, even when the batch failed.
            pool.shutdown(wait=True, cancel_futures=True)
            self._save(unsaved)
        return out

    def _save(self, results: list[JudgeResult]) -> None:
        if self.cache is not None and results:
            self.cache.put_many(results)

    def _result(self, request: JudgeRequest, reply: CachedReply, parse, cached: bool) -> JudgeResult:
        read = parse(reply.raw_reply)
        return JudgeResult(case_id=request.case_id, dimension=request.dimension, model=self.model,
                           prompt_sha256=request.prompt_sha256, case_sha256=request.case_sha256,
                           verdict=read.verdict, critique=read.critique, raw_reply=reply.raw_reply, how=read.how,
                           cached=cached, prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens)

    # ---- one request ------------------------------------------------------------------
    def _judge_one(self, request: JudgeRequest, parse) -> JudgeResult:
        return self._result(request, self._post(request), parse, cached=False)

    def _post(self, request: JudgeRequest) -> CachedReply:
        body = {"model": self.model, "messages": [{"role": "user", "content": request.prompt}], "temperature": 0}
        attempts = self.settings.max_retries + 1
        for attempt in range(attempts):
            self.stats.add(requests_sent=1, retries=1 if attempt else 0)
            retry_after = None
            try:
                response = self._http.post(self._url, json=body)
            except httpx.TransportError as exc:  # connection refused/reset, timeouts
                problem = f"{type(exc).__name__}: {self._masked(str(exc))}"
            else:
                if response.status_code == 200:
                    return self._reply(response, request)
                problem = f"HTTP {response.status_code}: {self._excerpt(response)}"
                if response.status_code != 429 and response.status_code < 500:
                    raise JudgeRequestError(f"the judge endpoint {self._url} refused case {request.case_id} "
                                            f"({request.dimension}): {problem}")
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt + 1 == attempts:
                raise JudgeRequestError(f"the judge endpoint {self._url} failed case {request.case_id} "
                                        f"({request.dimension}) {attempts} times; last: {problem}")
            delay = self._delay(attempt, retry_after)
            _log.info("judge: %s for case %s (%s); retry %d of %d in %.2f s", problem, request.case_id,
                      request.dimension, attempt + 1, self.settings.max_retries, delay)
            self._sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S)
        ceiling = min(self.settings.backoff_max_s, self.settings.backoff_s * 2 ** attempt)
        with self._rng_lock:
            return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _reply(self, response: httpx.Response, request: JudgeRequest) -> CachedReply:
        try:
            body = response.json()
            message = body["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise JudgeRequestError(f"the judge endpoint {self._url} answered case {request.case_id} with "
                                    f"something that is not a chat completion: {self._excerpt(response)}") from None
        content = message.get("content") if isinstance(message, dict) else None
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        prompt_tokens, completion_tokens = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
        self.stats.add(prompt_tokens=prompt_tokens or 0, completion_tokens=completion_tokens or 0)
        return CachedReply(raw_reply=content if isinstance(content, str) else "",
                           prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    def _masked(self, text: str) -> str:
        key = self.settings.api_key
        return text.replace(key, "***") if key else text

    def _excerpt(self, response: httpx.Response) -> str:
        text = self._masked(" ".join(response.text.split()))  # masked before it is cut: no half key
        return (text[:300] + ("..." if len(text) > 300 else "")) or "(empty body)"


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
