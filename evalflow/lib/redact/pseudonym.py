"""Typed, consistent replacements for PII: the same value gives the same placeholder everywhere.

Presidio's `hash` operator salts every value at random, so "Jane Doe" hashes differently in
every trace and nothing can be joined or counted. We use HMAC-SHA256 with a secret key instead:
deterministic for a key, useless without it. The key comes from EVALFLOW_PSEUDONYM_KEY; the
demo creates a local one in a gitignored file (data/.pseudonym_key) and says so.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from evalflow.lib.common.settings import text_setting

KEY_ENV = "EVALFLOW_PSEUDONYM_KEY"
OPERATORS_ENV = "EVALFLOW_PII_OPERATORS"
KEY_FILE_NAME = ".pseudonym_key"
OPERATORS = ("pseudonym", "replace", "mask")
# 8 hex digits: about 4e9 values, so 100k distinct names collide about once.
DIGEST_CHARS = 8

PLACEHOLDER_PATTERN = re.compile(r"<[A-Z_]+(?:_[0-9a-f]{%d})?>" % DIGEST_CHARS)


class MissingKeyError(RuntimeError):
    """No pseudonym key is configured and creating one was not allowed."""


def load_key(data_dir: Path, create: bool = False) -> tuple[bytes, str]:
    """The HMAC key and where it came from ("env", "file" or "created")."""
    from_env = text_setting(KEY_ENV, strip=False)
    if from_env:
        return from_env.encode("utf-8"), "env"
    path = data_dir / KEY_FILE_NAME
    if path.exists():
        return path.read_text().strip().encode("utf-8"), "file"
    if not create:
        raise MissingKeyError(f"no pseudonym key: set {KEY_ENV} or create {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    # Written with owner-only permissions from the start, never world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key.encode("utf-8"), "created"


def parse_operators(spec: str | None) -> dict[str, str]:
    """`PERSON=mask,CREDIT_CARD=replace` -> {"PERSON": "mask", ...}; unknown operators raise."""
    operators: dict[str, str] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        entity, _, operator = part.partition("=")
        operator = operator.strip().lower()
        if operator not in OPERATORS:
            raise ValueError(f"{OPERATORS_ENV}: operator for {entity.strip()} must be one of {OPERATORS}")
        operators[entity.strip().upper()] = operator
    return operators


def normalize_value(entity_type: str, value: str) -> str:
    """The form two spellings of the same value share (so "JANE DOE" and "Jane  Doe" match)."""
    text = unicodedata.normalize("NFKC", value).strip()
    if entity_type in ("PHONE_NUMBER", "CREDIT_CARD", "US_SSN"):
        return re.sub(r"\D", "", text)
    if entity_type in ("IBAN_CODE", "ACCOUNT_ID", "ORDER_ID"):
        return re.sub(r"[^0-9A-Za-z]", "", text).upper()
    return " ".join(text.casefold().split())


@dataclass
class Pseudonymizer:
    key: bytes
    operators: dict[str, str] = field(default_factory=dict)  # entity type -> operator
    default_operator: str = "pseudonym"

    def digest(self, kind: str, value: str, chars: int = DIGEST_CHARS) -> str:
        message = f"{kind}\x1f{value}".encode("utf-8")
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()[:chars]

    def placeholder(self, entity_type: str, value: str) -> str:
        operator = self.operators.get(entity_type, self.default_operator)
        if operator == "replace":
            return f"<{entity_type}>"
        if operator == "mask":
            return "*" * len(value)
        return f"<{entity_type}_{self.digest(entity_type, normalize_value(entity_type, value))}>"

    def identifier(self, kind: str, value: str | None) -> str | None:
        """user_id / session_id: joinable pseudonyms, e.g. user_3f9a0c21d4e5b6a7."""
        if value is None or value == "":
            return value
        return f"{kind}_{self.digest(kind, value, 16)}"
