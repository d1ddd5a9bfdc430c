"""Gateway API keys: random, shown once, stored only as sha256 per tenant.

Clients send a key as `Authorization: Bearer <key>` (OpenAI SDKs) or `x-api-key: <key>`
(Anthropic SDKs). Keys are 32 random bytes, so a plain sha256 is a safe at-rest form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

from tutela.runtime.gateway.profiles import KeyConfig

PREFIX = "tgw-"


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def presented_key(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return headers.get("x-api-key") or headers.get("api-key") or None


def lookup(key: str | None, keys: Mapping[str, KeyConfig]) -> KeyConfig | None:
    if not key or len(key) > 512:
        return None
    found = keys.get(key_hash(key))
    if found is not None and hmac.compare_digest(found.sha256, key_hash(key)):
        return found
    return None
