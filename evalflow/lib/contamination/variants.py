"""Deterministic rewrites of a text, to plant known contamination and measure what is found
(benchmarks/contamination.py, the tests, the demo's corpus). No model and no network: every
rewrite is a rule, seeded, so the same text and seed give the same result.

Paraphrases keep the item's meaning and structure, the way a leaked benchmark item is usually
altered (the GSM-Symbolic kind of variant), by these rules:

- `names`: person names from a fixed list are swapped for other names of the list, consistently
  in the text (Janet -> Olivia everywhere).
- `numbers`: every whole number is replaced consistently (16 -> 18; the answer changes, the
  problem does not).
- `synonyms`: about 150 words and phrases are replaced by a synonym of the same part of speech
  and form (buys -> purchases, how many -> what number of, each -> every).
- `reorder`: the closing question moves to the front ("How many eggs does she sell? Janet's ducks
  ..."), a word-order change that keeps every fact.

`paraphrase` applies all four; `paraphrase(text, rules=("synonyms",))` one of them. For code
(HumanEval prompts), `paraphrase_code` renames the function and its parameters and applies the
synonyms to the docstring's prose (not its `>>>` examples).

`embed_in_prompt` puts an item among others in a longer few-shot prompt; `noisy_copy` changes
case, white space and quotes only (a verbatim copy after normalisation).
"""

from __future__ import annotations

import random
import re
from typing import Sequence

RULES = ("names", "numbers", "synonyms", "reorder")

NAMES = """Janet James John Mark Sam Sally Robert Peter Sarah Jason Mike Paul Billy David Martha Sharon Charlie
Amy Harry Fred Bobby Bill Joe Anne Ali Jim Jane Dora George Jack Samantha Raymond Ben Jean Cindy Julia Brian
Jordan Tim Jake Maria Jenny Madeline Tom Marcus Daniel Adam Jamal Lily Carl Kelly Sue Tony Joey Erin Richard Josh
Stanley Ashley Julie Susan Bob Jill Boris Igor Vanessa Aaron Stephen Gerald Joseph Jerry Naomi Brianna Chris Sean
Quinn Anna Betty Erica Timothy Oliver Bernadette Wayne Jana Andy Mitchell Liam Kate Max Gary Ava Olivia Emma Noah
Lucas Mia Ethan Grace Henry Chloe Leo Zoe Owen Ruby Isaac Nora Caleb Hazel Felix Iris""".split()

# word -> synonym (same part of speech and form); phrases first, longest first
SYNONYMS = {
    "how many": "what number of", "each other": "one another", "in total": "altogether", "every day": "daily",
    "each day": "per day",
    "at the end of": "by the end of", "a lot of": "many", "twice as many": "double the number of",
    "buys": "purchases", "buy": "purchase", "bought": "purchased", "buying": "purchasing",
    "sells": "vends", "sold": "vended", "wants": "would like", "needs": "requires", "need": "require",
    "gets": "receives", "got": "received", "gives": "hands", "gave": "handed", "starts": "begins",
    "started": "began", "start": "begin", "finishes": "completes", "finished": "completed",
    "makes": "earns", "made": "earned", "earns": "makes", "spends": "uses up", "spent": "used up",
    "each": "every", "total": "overall", "store": "shop", "stores": "shops", "car": "vehicle",
    "cars": "vehicles", "money": "cash", "children": "kids", "kids": "children", "large": "big",
    "big": "large", "small": "little", "house": "home", "friends": "pals",
    "friend": "pal", "job": "occupation", "jobs": "occupations", "price": "cost", "prices": "costs",
    "cost": "price", "hour": "60 minutes", "fast": "quickly", "quickly": "rapidly",
    "walks": "strolls", "walked": "strolled",
    "ran": "jogged", "runs": "jogs", "pieces": "portions", "piece": "portion", "boxes": "cartons",
    "box": "carton", "bags": "sacks", "bag": "sack", "students": "pupils", "student": "pupil",
    "class": "classroom", "teacher": "instructor", "baked": "made", "bakes": "makes", "cookies": "biscuits",
    "garden": "yard", "planted": "grew", "eats": "consumes", "ate": "consumed",
    "remaining": "leftover", "remainder": "rest", "rest": "remainder", "half": "one half", "twice": "two times",
    "thrice": "three times", "several": "a number of", "receives": "gets", "received": "got",
    "people": "persons", "find": "determine", "calculate": "work out", "amount": "quantity",
    "number": "count", "numbers": "values", "value": "amount", "values": "amounts", "list": "sequence",
    "given": "provided", "return": "give back", "returns": "gives back", "string": "text",
    "strings": "texts", "check": "determine", "whether": "if", "element": "item", "elements": "items",
    "longest": "largest", "shortest": "smallest", "write": "create", "function": "routine",
    "input": "argument", "output": "result", "contains": "holds", "contain": "hold", "empty": "blank",
    "integer": "whole number", "integers": "whole numbers", "positive": "greater than zero",
    "characters": "letters", "character": "letter", "words": "terms", "word": "term", "sum": "total",
    "product": "multiplication result", "count": "tally", "closest": "nearest", "close": "near",
    "than": "compared to", "sorted": "ordered", "sort": "order", "unique": "distinct", "first": "initial",
    "last": "final", "also": "as well", "only": "just", "always": "at all times", "usually": "typically",
    "trip": "journey", "trips": "journeys", "town": "city", "road": "street", "dollars": "bucks",
    "miles": "mi", "buses": "coaches", "bus": "coach", "ticket": "pass", "tickets": "passes",
}
CODE_NAMES = {"numbers": "values", "number": "value", "string": "text", "strings": "texts", "lst": "items",
              "arr": "array", "n": "count", "s": "text", "x": "value", "l": "seq", "a": "first", "b": "second",
              "text": "message", "threshold": "limit", "delimeter": "separator", "paren_string": "brackets",
              "operations": "steps", "word": "term", "words": "terms", "nums": "vals", "num": "val",
              "grid": "matrix", "k": "size", "c": "chars", "txt": "message", "array": "data", "q": "queue",
              "w": "weight", "m": "limit", "y": "other", "base": "radix", "value": "amount", "date": "day",
              "planet1": "first_planet", "planet2": "second_planet", "interval1": "span1", "interval2": "span2"}

_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(?!\w|[.,]\d)")
_SENTENCE = re.compile(r"(?<=[.?!])\s+(?=[A-Z\"'])")
_PHRASES = sorted(SYNONYMS, key=len, reverse=True)
_SYNONYM = re.compile(r"\b(" + "|".join(re.escape(p) for p in _PHRASES) + r")\b", re.IGNORECASE)
_NAME = re.compile(r"\b(" + "|".join(NAMES) + r")\b")


def _rng(text: str, seed: int, salt: str) -> random.Random:
    return random.Random(f"{seed}:{salt}:{text}")


def _match_case(original: str, replacement: str) -> str:
    if original.isupper() and len(original) > 1:
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def swap_names(text: str, seed: int = 0) -> str:
    rng = _rng(text, seed, "names")
    mapping: dict[str, str] = {}

    def pick(match: re.Match) -> str:
        name = match.group(1)
        if name not in mapping:
            others = [n for n in NAMES if n != name and n not in mapping.values()]
            mapping[name] = rng.choice(others)
        return mapping[name]

    return _NAME.sub(pick, text)


def change_numbers(text: str, seed: int = 0) -> str:
    rng = _rng(text, seed, "numbers")
    mapping: dict[str, str] = {}

    def pick(match: re.Match) -> str:
        digits = match.group(0)
        if digits not in mapping:
            value = int(digits.replace(",", ""))
            step = rng.choice((1, 2, 3)) if value < 20 else max(1, round(value * rng.choice((0.1, 0.2, 0.25))))
            mapping[digits] = f"{value + step:,}" if "," in digits else str(value + step)
        return mapping[digits]

    return _NUMBER.sub(pick, text)


def use_synonyms(text: str) -> str:
    return _SYNONYM.sub(lambda m: _match_case(m.group(1), SYNONYMS[m.group(1).lower()]), text)


def question_first(text: str) -> str:
    sentences = _SENTENCE.split(text.strip())
    if len(sentences) < 2 or not sentences[-1].rstrip().endswith("?"):
        return text
    return " ".join([sentences[-1], *sentences[:-1]])


def paraphrase(text: str, seed: int = 0, rules: Sequence[str] = RULES) -> str:
    """The text rewritten by `rules` (see the module docstring), in a fixed order."""
    unknown = set(rules) - set(RULES)
    if unknown:
        raise ValueError(f"unknown rules {sorted(unknown)}; known: {RULES}")
    out = text
    if "names" in rules:
        out = swap_names(out, seed)
    if "numbers" in rules:
        out = change_numbers(out, seed)
    if "synonyms" in rules:
        out = use_synonyms(out)
    if "reorder" in rules:
        out = question_first(out)
    return out


def _rename(name: str) -> str:
    parts = name.split("_")
    renamed = [CODE_NAMES.get(p, SYNONYMS.get(p, p)).replace(" ", "_") for p in parts]
    if renamed == parts:
        renamed = list(reversed(parts)) if len(parts) > 1 else [*parts, "fn"]
    return "_".join(renamed) if "_".join(renamed) != name else name + "_fn"


def paraphrase_code(prompt: str, entry_point: str) -> str:
    """A HumanEval-style prompt with the function and its parameters renamed, and the docstring's
    prose (not its `>>>` examples or their results) rewritten with synonyms."""
    mapping = {entry_point: _rename(entry_point)}
    signature = re.search(r"def\s+" + re.escape(entry_point) + r"\s*\(([^)]*)\)", prompt)
    if signature:
        for param in signature.group(1).split(","):
            name = param.split(":")[0].split("=")[0].strip().lstrip("*")
            if name and name != "self" and name not in mapping:
                mapping[name] = CODE_NAMES.get(name, name + "_in")
    out = re.sub(r"\b(" + "|".join(re.escape(k) for k in sorted(mapping, key=len, reverse=True)) + r")\b",
                 lambda m: mapping[m.group(1)], prompt)
    lines, inside, prose_next = [], False, True
    for line in out.split("\n"):
        stripped = line.strip()
        quotes = stripped.count('"""') + stripped.count("'''")
        if inside and stripped and not stripped.startswith(">>>") and prose_next:
            line = use_synonyms(line)
        prose_next = not stripped.startswith(">>>")
        if quotes % 2 == 1:
            inside = not inside
            if inside:  # the docstring's first line can hold prose too
                head, sep, tail = line.partition('"""') if '"""' in line else line.partition("'''")
                line = head + sep + use_synonyms(tail)
        lines.append(line)
    return "\n".join(lines)


def noisy_copy(text: str, seed: int = 0) -> str:
    """The same words with other case, white space and quotes: equal after normalisation."""
    rng = _rng(text, seed, "noise")
    out = text.replace("\u2019", "'").replace("  ", " ")
    out = out.upper() if rng.random() < 0.3 else out.lower() if rng.random() < 0.5 else out
    return "  " + re.sub(r" ", lambda _: "  " if rng.random() < 0.1 else " ", out) + "\n"


def embed_in_prompt(item: str, answer: str | None, others: Sequence[tuple[str, str | None]], seed: int = 0,
                    header: str = "You are a careful tutor. Solve each problem step by step, as in these "
                                  "examples.") -> str:
    """A few-shot prompt: `header`, then the item among `others` as Question/Answer pairs, the
    item at a seeded random place; paragraphs separated by blank lines."""
    rng = _rng(item, seed, "embed")
    blocks = [(q, a) for q, a in others]
    blocks.insert(rng.randrange(len(blocks) + 1), (item, answer))
    parts = [header]
    for question, reply in blocks:
        parts.append(f"Question: {question}\nAnswer: {reply}" if reply else f"Question: {question}")
    return "\n\n".join(parts) + "\n"
