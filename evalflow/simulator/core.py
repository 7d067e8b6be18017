"""simulate(): a month of Northwind Bank support traffic, with the answers kept apart.

The landing folder gets what production would send (raw, PII and all, in three dialects, with
a few broken lines); the ground-truth folder gets what a test needs to score the pipeline:
every PII occurrence with its offsets, each trace's intent and faults, each bad line with its
expected reason code, and the dates of the planted changes. The pipeline never reads it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

from evalflow.lib.ingest import reasons
from evalflow.lib.ingest.canonical import new_trace, stable_hash, tool_schema_hash
from evalflow.simulator import catalog, faults, kb, tools, writers
from evalflow.simulator import personal_data as pii
from evalflow.simulator.tracked import Pii, collect, join, render

DIALECTS = ("canonical", "otlp", "langfuse")
DIALECT_WEIGHTS = (0.8, 0.1, 0.1)
CHANNELS = ("web", "ios", "android")
RARE_SHARE = 0.005
# Zipf-Mandelbrot over the catalog rank: a head near 16%, and a tail where the last intents
# are damped further, so a month holds only a few dozen of each (about 0.13% of traffic).
ZIPF_EXPONENT = 1.3
ZIPF_OFFSET = 2
TAIL_INTENTS = 4
TAIL_DAMPING = 0.35
# UTC traffic by hour: the customers are mostly in Europe and the Americas.
HOUR_WEIGHTS = (2, 1.5, 1, 1, 1, 1.5, 2.5, 4, 5.5, 6.5, 7, 7, 7, 7.5, 8, 8, 7.5, 7, 6.5, 6, 5,
                4, 3, 2.5)
LATE_WINDOW_MS = 20 * 60_000  # traces this close to midnight may land in the next day's file
LATE_SHARE = 0.3
DAY_MS = 86_400_000


@dataclass
class SimulationSummary:
    traces: int
    files: list[str]  # landing files, relative to landing_dir (posix)
    malformed_lines: int
    by_dialect: dict[str, int]
    intents: int
    ground_truth_path: str  # the ground-truth folder: traces.jsonl, malformed.jsonl, events.json


def _ms(day: date) -> int:
    return int((datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
                - writers.EPOCH).total_seconds() * 1000)


def _day_of(ms: int) -> date:
    return (writers.EPOCH + timedelta(milliseconds=ms)).date()


def intent_shares(multipliers: dict[str, float] | None = None) -> dict[str, float]:
    """Zipf shares over the catalog order, optionally reweighted (the intent-mix shift)."""
    n = len(catalog.INTENTS)
    weights = {
        intent.name: (1.0 / (rank + 1 + ZIPF_OFFSET) ** ZIPF_EXPONENT)
        * (TAIL_DAMPING if rank >= n - TAIL_INTENTS else 1.0)
        * (multipliers or {}).get(intent.name, 1.0)
        for rank, intent in enumerate(catalog.INTENTS)
    }
    total = sum(weights.values())
    return {name: w / total for name, w in weights.items()}


def _cumulative(shares: dict[str, float]) -> list[float]:
    out, acc = [], 0.0
    for intent in catalog.INTENTS:
        acc += shares[intent.name]
        out.append(acc)
    return out


# The planted changes, their default day (a fraction of the month) and the hour they go live.
CHANGES = ("prompt_template_change", "kb_change", "intent_mix_shift")
DEFAULT_CHANGE_FRACTIONS = {"prompt_template_change": 0.4, "kb_change": 0.6, "intent_mix_shift": 0.75}
CHANGE_HOURS = {"prompt_template_change": 14, "kb_change": 6, "intent_mix_shift": 0}
# What `changes` maps a change to: a day, a day offset from start_date (0 = the first day), or
# None for a month without that change.
ChangeDay = date | int | None


def change_days(start_date: date, days: int,
                changes: Mapping[str, ChangeDay] | None = None) -> dict[str, date | None]:
    """The day each planted change goes live (None: not planted), defaults filled in.

    A change missing from `changes` keeps its default day (40%, 60% and 75% into the month, never
    the first or the last day); one mapped to None is not planted at all. A day must fall inside
    the simulated days.
    """
    changes = dict(changes or {})
    unknown = sorted(set(changes) - set(CHANGES))
    if unknown:
        raise ValueError(f"unknown planted change(s) {unknown}; expected some of {list(CHANGES)}")
    last = start_date + timedelta(days=days - 1)
    out: dict[str, date | None] = {}
    for name in CHANGES:
        if name not in changes:
            index = min(max(1, round(days * DEFAULT_CHANGE_FRACTIONS[name])), max(1, days - 1))
            out[name] = start_date + timedelta(days=index)
            continue
        value = changes[name]
        if value is None:
            out[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, (date, int)):
            raise ValueError(f"{name}: expected a date, a day offset or None, got {value!r}")
        if isinstance(value, datetime):
            value = value.date()
        day = value if isinstance(value, date) else start_date + timedelta(days=value)
        if not start_date <= day <= last:
            raise ValueError(f"{name}: {day.isoformat()} is outside the simulated days "
                             f"{start_date.isoformat()}..{last.isoformat()}")
        out[name] = day
    return out


@dataclass
class Plan:
    """The fixed story of the month: when each planted change happens (None: never)."""

    start_date: date
    days: int
    prompt_change_ms: int | None
    kb_change_ms: int | None
    shift_ms: int | None
    base_shares: dict[str, float]
    shifted_shares: dict[str, float]
    cum_before: list[float] = field(default_factory=list)
    cum_after: list[float] = field(default_factory=list)

    @classmethod
    def make(cls, start_date: date, days: int,
             changes: Mapping[str, ChangeDay] | None = None) -> "Plan":
        when = change_days(start_date, days, changes)

        def at(name: str) -> int | None:
            day = when[name]
            return None if day is None else _ms(day) + CHANGE_HOURS[name] * 3_600_000

        base = intent_shares()
        shifted = intent_shares(catalog.MIX_SHIFT_MULTIPLIERS)
        return cls(
            start_date=start_date,
            days=days,
            prompt_change_ms=at("prompt_template_change"),
            kb_change_ms=at("kb_change"),
            shift_ms=at("intent_mix_shift"),
            base_shares=base,
            shifted_shares=shifted,
            cum_before=_cumulative(base),
            cum_after=_cumulative(shifted),
        )

    @staticmethod
    def _after(ms: int, change_ms: int | None) -> bool:
        return change_ms is not None and ms >= change_ms

    def prompt_version(self, ms: int) -> str:
        return "support-v4" if self._after(ms, self.prompt_change_ms) else "support-v3"

    def kb_version(self, ms: int) -> str:
        return "kb-v2" if self._after(ms, self.kb_change_ms) else "kb-v1"

    def shifted(self, ms: int) -> bool:
        return self._after(ms, self.shift_ms)

    def app_version(self, ms: int, channel: str) -> str:
        prompt_changed = self._after(ms, self.prompt_change_ms)
        if channel == "web":
            return "web-2026.10.2" if prompt_changed else "web-2026.10.1"
        if self.shifted(ms):
            return "6.0.0"  # the release that broke login (the intent-mix shift)
        return "5.4.0" if prompt_changed else "5.3.2"


@dataclass
class Record:
    trace: dict[str, Any]
    truth: dict[str, Any]
    dialect: str
    file_day: date
    start_ms: int
    end_ms: int


class Simulator:
    def __init__(self, plan: Plan, seed: int, per_day: int):
        self.plan = plan
        self.seed = seed
        self.rng = random.Random(seed)
        # Abuse has its own stream: drawing it moves nothing in the main one, so the traces it
        # leaves alone are what they were before abuse was simulated.
        self.toxic_rng = random.Random(f"northwind-toxic-{seed}")
        self.n_users = max(20, plan.days * per_day // 5)
        self.personas: dict[int, pii.Persona] = {}
        self.system_hash = {v: stable_hash(p) for v, p in catalog.SYSTEM_PROMPTS.items()}
        # the same function every adapter uses, so each dialect's copy gets this very id
        self.tool_hash = {v: tool_schema_hash(t) for v, t in catalog.TOOLS.items()}
        self.end_ms = _ms(plan.start_date) + plan.days * DAY_MS

    # -- drawing ------------------------------------------------------------------------------
    def _hex(self, n: int) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def _persona(self) -> pii.Persona:
        rng = self.rng
        # A few heavy users write a large part of the traffic, as in every support queue.
        if rng.random() < 0.3:
            index = rng.randrange(max(1, self.n_users // 30))
        else:
            index = rng.randrange(self.n_users)
        if index not in self.personas:
            self.personas[index] = pii.make_persona(self.seed, index)
        return self.personas[index]

    def _intent(self, ms: int) -> catalog.Intent:
        cum = self.plan.cum_after if self.plan.shifted(ms) else self.plan.cum_before
        x = self.rng.random() * cum[-1]
        lo, hi = 0, len(cum) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if cum[mid] < x:
                lo = mid + 1
            else:
                hi = mid
        return catalog.INTENTS[lo]

    def _session_slots(self, persona: pii.Persona, intent: catalog.Intent) -> dict[str, Any]:
        rng = self.rng
        typed = pii.case_variant(rng, pii.full_name(persona.first, persona.last, persona.origin,
                                                    family_first=rng.random() < 0.3))
        o_first, o_last, o_origin = pii.person_name(rng)
        other = pii.case_variant(rng, pii.full_name(o_first, o_last, o_origin))
        amount_value = float(rng.choice((25, 40, 60, 75, 120, 250, 300, 480, 500, 750, 1200,
                                         2500, 9000)))
        currency = tools._HOME_CURRENCY[persona.country]
        digits = [c for c in persona.card if c.isdigit()]
        return {
            "name": Pii(typed, pii.PERSON),
            "first": Pii(persona.first, pii.PERSON),
            "holder": Pii(persona.name, pii.PERSON),
            "email": persona.pii("email"),
            "phone": persona.pii("phone"),
            "card": persona.pii("card"),
            "address": persona.pii("address"),
            "account": persona.pii("account"),
            "order": persona.pii("order"),
            "dob": persona.pii("dob"),
            "iban": Pii(pii.iban(rng, rng.choice(("GB", "DE", "ES", "FR"))), pii.IBAN_CODE),
            "new_address": Pii(pii.street_address(rng, persona.country), pii.STREET_ADDRESS),
            "new_phone": Pii(pii.phone_number(rng, persona.country), pii.PHONE_NUMBER),
            "new_email": Pii(pii.email_for(rng, persona.first, persona.last, persona.country),
                             pii.EMAIL_ADDRESS),
            "other_name": Pii(other, pii.PERSON),
            "other_account": Pii(pii.account_id(rng), pii.ACCOUNT_ID),
            "other_address": Pii(pii.street_address(rng, rng.choice(("US", "GB", "DE"))),
                                 pii.STREET_ADDRESS),
            "amount_value": amount_value,
            "amount": tools.money(amount_value, currency),
            "merchant": rng.choice(catalog.MERCHANTS),
            "city": rng.choice(catalog.CITIES),
            "currency": rng.choice(catalog.CURRENCIES),
            "last4": "".join(digits[-4:]),
            "item": rng.choice(catalog.STORE_ITEMS),
            "intent_label": intent.name.replace("_", " "),
            "contact_field": "address",
        }

    # -- one session --------------------------------------------------------------------------
    def session(self, start_ms: int, intent: catalog.Intent, n_turns: int,
                dialect: str) -> list[Record]:
        rng = self.rng
        persona = self._persona()
        slots = self._session_slots(persona, intent)
        session_id = f"sess-{self._hex(12)}"
        channel = rng.choice(CHANNELS)
        zulu = rng.random() < 0.2
        history: list[tuple[Any, Any]] = []
        follow_ups = list(catalog.FOLLOW_UPS)
        rng.shuffle(follow_ups)
        records: list[Record] = []
        ms = start_ms
        toxic = False  # an abusive turn stays in the context of the session's later turns
        for turn in range(n_turns):
            if ms >= self.end_ms:
                break
            if turn == 0:
                template = rng.choice(intent.queries)
                if intent.name == "update_phone_or_email":
                    slots["contact_field"] = "email" if "{new_email}" in template else "phone"
                query = render(template, slots)
                slots["summary"] = query
                answer_templates: tuple[str, ...] = intent.answers
                tool_names = list(intent.tools)
                if (intent.name == "fraud_alert_verification"
                        and self.plan.prompt_version(ms) == "support-v4"):
                    tool_names = ["check_fraud_alert"]
            else:
                q, a, tool = follow_ups[(turn - 1) % len(follow_ups)]
                query = render(q, slots)
                answer_templates = (a,)
                tool_names = [tool] if tool else []
            abusive = False
            if intent.attack is None and not toxic and self.toxic_rng.random() < faults.RATES[faults.TOXIC_REQUEST]:
                toxic = abusive = True
                line = self.toxic_rng.choice(catalog.ABUSIVE_LINES)
                query = join([line, " ", query] if self.toxic_rng.random() < 0.5 else [query, " ", line])
            record = self._turn(ms, intent, persona, slots, session_id, channel, zulu, turn,
                                history, query, answer_templates, tool_names, dialect,
                                toxic=toxic, abusive=abusive)
            records.append(record)
            history.append((query, record.truth.pop("_output")))
            ms = record.end_ms + rng.randint(15_000, 180_000)
        return records

    def _retrieve(self, intent: catalog.Intent, kb_version: str) -> list[tuple[kb.Chunk, float]]:
        rng = self.rng
        topic = rng.choice(intent.kb)
        chunks = kb.CHUNKS[topic]
        main = rng.choice(chunks)
        picked = [(main, rng.uniform(0.80, 0.93))]
        others = [c for c in chunks if c is not main]
        if others and rng.random() < 0.5:
            picked.append((rng.choice(others), rng.uniform(0.70, 0.80)))
        if rng.random() < 0.6:
            distractor_topic = rng.choice(kb.TOPICS)
            if distractor_topic != topic:
                picked.append((rng.choice(kb.CHUNKS[distractor_topic]), rng.uniform(0.35, 0.55)))
        return picked

    def _turn(self, ms, intent, persona, slots, session_id, channel, zulu, turn, history,
              query, answer_templates, tool_names, dialect, toxic=False, abusive=False) -> Record:
        rng = self.rng
        plan = self.plan
        version = plan.prompt_version(ms)
        kb_version = plan.kb_version(ms)
        routed = version == "support-v4" and intent.name in catalog.COMPLEX_INTENTS
        model = "gpt-4o" if routed else "gpt-4o-mini"
        codes = faults.draw_faults(rng, attack=intent.attack, prompt_version=version,
                                   # a contradiction needs an answer that states the fact
                                   has_kb=bool(intent.kb) and intent.attack is None
                                   and all("{fact}" in a for a in answer_templates),
                                   has_tools=bool(tool_names))
        slots.update(tools.DEFAULT_TOOL_SLOTS)

        retrieved = self._retrieve(intent, kb_version) if intent.kb else []
        if retrieved:
            chunk = retrieved[0][0]
            contradict = faults.CONTRADICTS_CONTEXT in codes
            stated = chunk.wrong if contradict else chunk.fact_for(kb_version)
            slots["fact"] = chunk.template.format(fact=stated).rstrip(".")
        else:
            slots["fact"] = "Let me know if there is anything else I can help with"

        error_type = None
        if faults.ERROR in codes:
            kinds = catalog.ERROR_TYPES
            error_type = rng.choices([k[0] for k in kinds], weights=[k[1] for k in kinds])[0]
            if error_type == "RateLimitError":
                tool_names = []  # the request failed before any tool ran

        tool_calls = []
        failing = rng.randrange(len(tool_names)) if faults.TOOL_ERROR in codes else None
        for i, name in enumerate(tool_names):
            args, result = tools.BUILDERS[name](rng, persona, slots)
            if i == failing or (error_type == "ToolExecutionError" and i == len(tool_names) - 1):
                result = dict(rng.choice(tools.TOOL_ERRORS))
            tool_calls.append({"name": name, "arguments": args, "result": result})

        output: Any
        if error_type:
            output = None
        elif intent.attack:
            output = self._attack_output(intent, codes, slots, version)
        elif faults.REFUSAL in codes:
            output = rng.choice(catalog.REFUSALS)
        elif faults.TOOL_ERROR in codes:
            output = rng.choice(catalog.TOOL_FAILURE_ANSWERS)
        else:
            output = render(rng.choice(answer_templates), slots)
            if version == "support-v4" and retrieved:
                output = join([output, f" [{retrieved[0][0].doc_id(kb_version)}]"])
            if faults.VERBOSE_ANSWER in codes:
                padding = " ".join(rng.choice(catalog.VERBOSE_PADDING)
                                   for _ in range(rng.randint(20, 60)))
                output = join([output, "\n\n", padding])
            if abusive and self.toxic_rng.random() < faults.RATES[faults.TOXIC_ANSWER]:
                codes.add(faults.TOXIC_ANSWER)
                output = join([self.toxic_rng.choice(catalog.ABUSIVE_ANSWER_OPENERS), " ", output])
        if toxic:
            codes.add(faults.TOXIC_REQUEST)

        metadata: dict[str, Any] = {
            "channel": channel,
            "locale": persona.locale,
            "app_version": plan.app_version(ms, channel),
            "request_id": f"req_{self._hex(16)}",
            "turn": turn + 1,
        }
        if rng.random() < 0.25:
            metadata["customer_email"] = persona.pii("email")
        if rng.random() < 0.15:
            metadata["client_ip"] = persona.pii("ip")
        if rng.random() < 0.08:
            metadata["customer_name"] = Pii(persona.name, pii.PERSON)
        if error_type:
            metadata["error_message"] = self._error_message(error_type, model, tool_calls, slots)

        messages: list[dict[str, Any]] = [
            {"role": "system", "content": catalog.SYSTEM_PROMPTS[version]}
        ]
        for past_query, past_answer in history:
            messages.append({"role": "user", "content": past_query})
            if past_answer is not None:
                messages.append({"role": "assistant", "content": past_answer})
        messages.append({"role": "user", "content": query})

        raw = {
            "messages": messages,
            "user_query": query,
            "retrieved_context": [
                {"doc_id": c.doc_id(kb_version), "text": c.text(kb_version), "score": round(s, 4)}
                for c, s in retrieved
            ],
            "tool_calls": tool_calls,
            "output": output,
            "metadata": metadata,
        }
        found: list[dict[str, Any]] = []
        plain = collect(raw, "", found)

        # Tokens follow the text actually sent and received (about 4 characters a token).
        prompt_chars = sum(len(m["content"]) for m in plain["messages"])
        prompt_chars += sum(len(d["text"]) + 40 for d in plain["retrieved_context"])
        prompt_chars += sum(len(writers.dump(c)) for c in plain["tool_calls"])
        input_tokens = prompt_chars // 4 + 4 * len(plain["messages"]) + 180  # + tool schemas
        output_text = plain["output"]
        output_tokens = 0 if output_text is None else len(output_text) // 4 + 1
        if faults.COST_OUTLIER in codes:
            input_tokens *= rng.randint(25, 60)  # a runaway context stuffed with history
        per_token_ms = 12 if model == "gpt-4o-mini" else 24
        latency = rng.lognormvariate(6.4, 0.35) + output_tokens * per_token_ms
        latency += 220 * len(tool_calls) + (90 if retrieved else 0)
        if error_type:
            typical = dict((k[0], k[2]) for k in catalog.ERROR_TYPES)[error_type]
            latency = typical * rng.uniform(0.8, 1.2)
        if faults.LATENCY_OUTLIER in codes:
            latency *= rng.uniform(8, 30)
        # whole milliseconds, so end_time - timestamp == latency_ms in every dialect
        end_ms = ms + max(1, round(latency))
        latency_ms = float(end_ms - ms)
        price_in, price_out = catalog.MODELS[model]
        cost = round((input_tokens * price_in + output_tokens * price_out) / 1e6, 8)

        feedback = None if error_type else faults.draw_feedback(
            rng, codes, catalog.NEGATIVE_COMMENTS, catalog.POSITIVE_COMMENTS)

        trace_id = self._hex(32)
        trace = new_trace(
            trace_id=trace_id,
            session_id=session_id,
            user_id=persona.user_id,
            timestamp=writers.iso(ms, zulu),
            end_time=writers.iso(end_ms, zulu),
            app=catalog.APP,
            model=model,
            prompt_template_id=version,
            system_prompt_hash=self.system_hash[version],
            tool_schema_hash=self.tool_hash[version],
            messages=plain["messages"],
            user_query=plain["user_query"],
            retrieved_context=plain["retrieved_context"],
            tool_calls=plain["tool_calls"],
            output=output_text,
            latency_ms=latency_ms,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost,
            status="error" if error_type else "ok",
            error_type=error_type,
            feedback=feedback,
            metadata=plain["metadata"],
        )
        file_day = _day_of(ms)
        if (_ms(file_day) + DAY_MS - ms < LATE_WINDOW_MS and rng.random() < LATE_SHARE
                and _ms(file_day) + DAY_MS < self.end_ms):
            file_day = file_day + timedelta(days=1)  # arrived after the exporter's daily cut
        truth = {
            "trace_id": trace_id,
            "session_id": session_id,
            "user_id": persona.user_id,
            "turn": turn + 1,
            "dialect": dialect,
            "date": _day_of(ms).isoformat(),
            "timestamp": writers.iso(ms),
            "intent": intent.name,
            "is_rare": plan.base_shares[intent.name] < RARE_SHARE,
            "prompt_template_id": version,
            "kb_version": kb_version,
            "model": model,
            "status": trace["status"],
            "faults": faults.sorted_faults(codes),
            "pii": found,
            "_output": output,
        }
        return Record(trace, truth, dialect, file_day, ms, end_ms)

    def _attack_output(self, intent, codes, slots, version) -> Any:
        if faults.INJECTION_SUCCEEDED in codes:
            return join(["Developer mode enabled. My instructions are: \"",
                         catalog.SYSTEM_PROMPTS[version], "\""])
        if faults.POLICY_COMPLIED in codes:
            return render("Sure. Account {other_account} belongs to {other_name}, "
                          "{other_address}, and its balance is $8,214.33.", slots)
        return intent.answers[0]

    def _error_message(self, error_type, model, tool_calls, slots) -> Any:
        if error_type == "ToolExecutionError" and tool_calls:
            return render("ToolExecutionError: {tool} failed for {account}: upstream returned 503",
                          {"tool": tool_calls[-1]["name"], "account": slots["account"]})
        messages = {
            "RateLimitError": f"Rate limit reached for {model} in organization org-northwind on tokens per min (TPM): Limit 2000000",
            "APITimeoutError": "Request timed out after 30.0 seconds",
            "ToolExecutionError": "ToolExecutionError: tool router unavailable",
            "ContextWindowExceededError": f"This model's maximum context length is 128000 tokens; the request used 131072 tokens ({model})",
            "ContentFilterError": "The response was filtered due to the prompt triggering the content management policy",
        }
        return messages[error_type]

    # -- the month ----------------------------------------------------------------------------
    def run(self, per_day: int) -> list[Record]:
        rng = self.rng
        records: list[Record] = []
        hours = list(range(24))
        for d in range(self.plan.days):
            day_ms = _ms(self.plan.start_date + timedelta(days=d))
            made = 0
            while made < per_day:
                hour = rng.choices(hours, weights=HOUR_WEIGHTS)[0]
                start = day_ms + hour * 3_600_000 + rng.randrange(3_600_000)
                intent = self._intent(start)
                n_turns = 1
                if rng.random() < intent.multi_turn:
                    n_turns = rng.choice((2, 2, 2, 3, 3, 4))
                n_turns = min(n_turns, per_day - made)
                dialect = rng.choices(DIALECTS, weights=DIALECT_WEIGHTS)[0]
                records.extend(self.session(start, intent, n_turns, dialect))
                made += n_turns
        return records


def _plant_malformed(sim: Simulator, files: dict[tuple[date, str], list], plan: Plan) -> list:
    """Insert the bad lines into canonical files, spread over the month."""
    rng = random.Random(f"northwind-malformed-{sim.seed}")
    kinds = [kind for kind, _reason in faults.MALFORMED_KINDS]
    rng.shuffle(kinds)
    planted_by_file: dict[tuple[date, str], list[faults.Planted]] = {}
    taken: dict[tuple[date, str], set[int]] = {}
    for i, kind in enumerate(kinds):
        day = plan.start_date + timedelta(days=(i * plan.days) // len(kinds))
        key = (day, "canonical")
        entries = files.setdefault(key, [])
        good_lines = [text for text, _truth in entries]
        copies = kind in ("exact_duplicate", "conflicting_duplicate")
        if copies and len(good_lines) <= len(taken.get(key, ())):
            continue  # nothing left to copy in a tiny file
        start = _ms(day) + rng.randrange(DAY_MS)
        fresh = sim.session(start, sim._intent(start), 1, "canonical")[0].trace
        planted = faults.make_malformed(kind, rng, good_lines, fresh, taken.setdefault(key, set()))
        planted_by_file.setdefault(key, []).append(planted)
    return [(key, p) for key, planted in planted_by_file.items() for p in planted]


def simulate(landing_dir: Path, ground_truth_dir: Path, *, days: int = 30, per_day: int = 1000,
             seed: int = 7, start_date: date = date(2026, 10, 1),
             changes: Mapping[str, ChangeDay] | None = None) -> SimulationSummary:
    """Write `days` days of traffic to landing_dir/<date>/{canonical,otlp,langfuse}.jsonl.

    The same arguments give byte-identical files. Ground truth goes to ground_truth_dir:
    traces.jsonl (one line per good trace), expected_canonical.jsonl (the canonical trace meant by
    each good trace, whatever dialect carried it), malformed.jsonl (one line per planted bad line)
    and events.json (the planted changes and the intent shares).

    `changes` moves or drops the planted changes: {"prompt_template_change": day,
    "kb_change": day, "intent_mix_shift": day}, each day a `date` or an offset in days from
    start_date, or None for a month without that change (see `change_days`); a change left out
    keeps its default day, so the same arguments without `changes` give the same files as ever.
    """
    if days < 1 or per_day < 1:
        raise ValueError(f"days and per_day must be at least 1, got days={days}, per_day={per_day}")
    landing_dir = Path(landing_dir)
    ground_truth_dir = Path(ground_truth_dir)
    plan = Plan.make(start_date, days, changes)
    sim = Simulator(plan, seed, per_day)
    records = sim.run(per_day)

    # Group into files; each file is in time order, as an exporter writes it.
    files: dict[tuple[date, str], list[tuple[str, dict | None]]] = {}
    # trace_id -> its canonical line: what every dialect's copy must fold back to
    expected_lines: dict[str, str] = {}
    by_file: dict[tuple[date, str], list[Record]] = {}
    for record in records:
        by_file.setdefault((record.file_day, record.dialect), []).append(record)
    for key, group in by_file.items():
        group.sort(key=lambda r: r.start_ms)
        dialect = key[1]
        lines = []
        for r in group:
            canonical_text = writers.canonical_line(r.trace)
            expected_lines[r.trace["trace_id"]] = canonical_text
            if dialect == "canonical":
                text = canonical_text
            elif dialect == "otlp":
                text = writers.otlp_line(r.trace, r.start_ms, r.end_ms)
            else:
                text = writers.langfuse_line(r.trace, r.start_ms, r.end_ms)
            lines.append((text, r.truth))
        files[key] = lines

    planted = _plant_malformed(sim, files, plan)
    inserts: dict[tuple[date, str], list[faults.Planted]] = {}
    for key, p in planted:
        inserts.setdefault(key, []).append(p)

    truths: list[dict[str, Any]] = []
    malformed: list[dict[str, Any]] = []
    written: list[str] = []
    by_dialect = {d: 0 for d in DIALECTS}
    for d in range(days):
        day = start_date + timedelta(days=d)
        folder = landing_dir / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        for dialect in DIALECTS:
            key = (day, dialect)
            rel = f"{day.isoformat()}/{dialect}.jsonl"
            entries = files.get(key, [])
            extra = sorted(inserts.get(key, []), key=lambda p: p.after)
            out_lines: list[str] = []
            j = 0
            for i in range(len(entries) + 1):
                while j < len(extra) and extra[j].after == i:
                    p = extra[j]
                    out_lines.append(p.text)
                    malformed.append({"file": rel, "line": len(out_lines), "kind": p.kind,
                                      "reason": p.reason, "trace_id": p.trace_id, "note": p.note})
                    j += 1
                if i < len(entries):
                    text, truth = entries[i]
                    out_lines.append(text)
                    truths.append({**truth, "file": rel, "line": len(out_lines)})
                    by_dialect[dialect] += 1
            data = "".join(line + "\n" for line in out_lines)
            (folder / f"{dialect}.jsonl").write_bytes(data.encode("utf-8"))
            written.append(rel)

    line_of = {(t["file"], t["trace_id"]): t["line"] for t in truths}
    for row in malformed:
        if row["reason"] in (reasons.DUPLICATE, reasons.CONFLICT):
            row["original_line"] = line_of[(row["file"], row["trace_id"])]

    ground_truth_dir.mkdir(parents=True, exist_ok=True)
    with open(ground_truth_dir / "traces.jsonl", "wb") as fh:
        for truth in truths:
            fh.write((writers.dump(truth) + "\n").encode("utf-8"))
    with open(ground_truth_dir / "expected_canonical.jsonl", "wb") as fh:
        for truth in truths:
            fh.write((expected_lines[truth["trace_id"]] + "\n").encode("utf-8"))
    with open(ground_truth_dir / "malformed.jsonl", "wb") as fh:
        for row in malformed:
            fh.write((writers.dump(row) + "\n").encode("utf-8"))
    events = _events(plan, seed, per_day, sim)
    (ground_truth_dir / "events.json").write_bytes(
        (json.dumps(events, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))

    return SimulationSummary(
        traces=len(truths),
        files=written,
        malformed_lines=len(malformed),
        by_dialect=by_dialect,
        intents=len(catalog.INTENTS),
        ground_truth_path=str(ground_truth_dir),
    )


def _events(plan: Plan, seed: int, per_day: int, sim: Simulator) -> dict[str, Any]:
    def at(ms: int) -> dict[str, str]:
        return {"at": writers.iso(ms), "date": _day_of(ms).isoformat()}

    return {
        "app": catalog.APP,
        "product": catalog.PRODUCT,
        "seed": seed,
        "start_date": plan.start_date.isoformat(),
        "days": plan.days,
        "per_day": per_day,
        "dialect_shares": dict(zip(DIALECTS, DIALECT_WEIGHTS)),
        # a change that was not planted (changes={...: None}) is null, its switch with it
        "prompt_template_change": None if plan.prompt_change_ms is None else {
            **at(plan.prompt_change_ms),
            "from": "support-v3", "to": "support-v4",
            "system_prompt_hash_from": sim.system_hash["support-v3"],
            "system_prompt_hash_to": sim.system_hash["support-v4"],
            "tool_schema_hash_from": sim.tool_hash["support-v3"],
            "tool_schema_hash_to": sim.tool_hash["support-v4"],
            "verbose_answer_rate_from": faults.RATES[faults.VERBOSE_ANSWER],
            "verbose_answer_rate_to": faults.RATES["verbose_answer_v4"],
        },
        "model_switch": None if plan.prompt_change_ms is None else {
            **at(plan.prompt_change_ms),
            "from": "gpt-4o-mini", "to": "gpt-4o", "intents": list(catalog.COMPLEX_INTENTS),
        },
        "kb_change": None if plan.kb_change_ms is None else {
            **at(plan.kb_change_ms),
            "from": "kb-v1", "to": "kb-v2", "changed_docs": list(kb.CHANGED_IN_V2),
        },
        "intent_mix_shift": None if plan.shift_ms is None else {
            **at(plan.shift_ms),
            "multipliers": dict(catalog.MIX_SHIFT_MULTIPLIERS),
        },
        "rare_share_threshold": RARE_SHARE,
        "intents": [
            {
                "name": intent.name,
                "category": intent.category,
                "base_share": round(plan.base_shares[intent.name], 6),
                "shifted_share": round(plan.shifted_shares[intent.name], 6),
                "is_rare": plan.base_shares[intent.name] < RARE_SHARE,
                "multi_turn": intent.multi_turn,
                "tools": list(intent.tools),
                "kb_topics": list(intent.kb),
            }
            for intent in catalog.INTENTS
        ],
        "fault_codes": list(faults.FAULT_CODES),
        "pii_types": list(pii.PII_TYPES),
    }
